"""A small MADE drawn from its own masks, as the paper's Figure 1 draws one, beside its masks.

    python experiments/draw_masks.py                      # writes results/masks/figure1.png
    python experiments/draw_masks.py --inputs 6 --hidden 8,8 --seed 5 --out my.png

Left: the network, inputs at the bottom and the conditionals p(x_d | x_<d) at the top, every unit
labelled with its degree m(·) (numbered from 0, as the code numbers them; the paper counts from 1),
and a line for every weight its masks keep. Middle: the masks as matrices in the data's numbering
(model.masks(): row k, column j is 1 when unit j feeds unit k). Right: the same masks with
every layer's units sorted by degree, as engine.py keeps the weights for its own speed: each mask
becomes a staircase, whose blocks staircase.py multiplies.
"""
import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cli  # noqa: E402
import files  # noqa: E402
import runs  # noqa: E402
from made import MADE  # noqa: E402


def unit_names(model):
    """Per source, the label of each unit in the data's numbering: x_d for the inputs, h^l_k for hidden ones."""
    return [[f"x{d + 1}" for d in range(model.n_in)]] + \
        [[f"h{l + 1}.{k + 1}" for k in range(size)] for l, size in enumerate(model.hidden_sizes)]


def draw_network(axes, model):
    """Units as circles labelled with their degree, in rows from the inputs up; a line per kept weight."""
    degrees, masks = model.degrees(), model.masks()
    sizes = [model.n_in] + model.hidden_sizes + [model.n_in]
    width = max(sizes)
    places = [[((width - size) / 2 + i, row) for i in range(size)] for row, size in enumerate(sizes)]
    for layer_index, layer in enumerate(model.layers):
        for name, source in layer.inputs:
            mask = masks[name]
            for k, j in zip(*np.nonzero(mask)):
                (x0, y0), (x1, y1) = places[source][j], places[layer_index + 1][k]
                axes.plot([x0, x1], [y0, y1], color="tab:blue" if source == layer_index else "tab:orange",
                          linewidth=0.8, alpha=0.6, zorder=1)
    names = unit_names(model)
    for row, units in enumerate(places):
        output = row == len(places) - 1
        for i, (x, y) in enumerate(units):
            degree = degrees[0][i] if output or row == 0 else degrees[row][i]
            axes.scatter([x], [y], s=520, color="white", edgecolor="black", zorder=2)
            axes.text(x, y, str(degree), ha="center", va="center", fontsize=9, zorder=3)
            label = f"p(x{i + 1}|·)" if output else names[row][i]
            axes.text(x, y + (0.32 if output else -0.32), label, ha="center", va="center", fontsize=7, color="dimgray")
    axes.set_xlim(-0.7, width - 0.3)
    axes.set_ylim(-0.7, len(sizes) - 0.3)
    axes.axis("off")
    ordering = ", ".join(f"x{int(d) + 1}" for d in model.ordering)
    axes.set_title(f"the network: degree m(·) in each unit\n(ordering, first to last: {ordering})", fontsize=9)


def draw_mask(axes, mask, row_labels, column_labels, title):
    """A 0/1 matrix as dark (kept) and light (removed) squares, rows and columns labelled."""
    axes.imshow(mask, cmap="Greys", vmin=-0.15, vmax=1.15)
    axes.set_xticks(range(mask.shape[1]), column_labels, rotation=90, fontsize=6)
    axes.set_yticks(range(mask.shape[0]), row_labels, fontsize=6)
    axes.tick_params(length=0)
    axes.set_title(title, fontsize=8)


def draw(model, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = model.layers
    figure = plt.figure(figsize=(12, 2.3 * len(layers) + 0.5))
    grid = figure.add_gridspec(len(layers), 3, width_ratios=[1.6, 1, 1])
    draw_network(figure.add_subplot(grid[:, 0]), model)
    degrees, names = model.degrees(), unit_names(model)
    natural = model.masks()
    order = [np.argsort(d, kind="stable") for d in degrees]  # every layer's units sorted by degree

    def labels(source, order=None):
        order = range(len(degrees[source])) if order is None else order
        return [f"{names[source][u]} m={degrees[source][u]}" for u in order]
    for index, layer in enumerate(layers):
        name, source = layer.inputs[0]
        rows = index + 1 if layer.hidden else 0
        what = f"{name}: {'hidden layer ' + str(index + 1) if layer.hidden else 'outputs'} ← " \
               f"{'inputs' if source == 0 else 'hidden layer ' + str(source)}"
        draw_mask(figure.add_subplot(grid[index, 1]), np.asarray(natural[name]), labels(rows), labels(source),
                  f"{what}\n(data's numbering)")
        staircase = np.asarray(natural[name])[order[rows]][:, order[source]]
        draw_mask(figure.add_subplot(grid[index, 2]), staircase, labels(rows, order[rows]), labels(source, order[source]),
                  f"{what}\n(sorted by degree: a staircase)")
    figure.suptitle(f"MADE {'-'.join(map(str, [model.n_in] + model.hidden_sizes + [model.n_in]))}: "
                    "hidden mask 1[m_l(k) ≥ m_{l-1}(j)] (eq. 12), output mask 1[m(d) > m_L(k)] (eq. 13)", fontsize=10)
    figure.tight_layout()
    try:
        files.save_figure(path, figure, dpi=110)
    finally:
        plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Draw a small MADE from its masks, as the paper's Figure 1, "
                                                 "beside its masks in the data's numbering and sorted by degree.")
    parser.add_argument("--inputs", type=cli.positive_int, default=5, help="D, the inputs (default: %(default)s)")
    parser.add_argument("--hidden", type=cli.hidden_sizes, default=[6, 6],
                        help="hidden layer sizes, comma-separated (default: 6,6)")
    parser.add_argument("--seed", type=cli.non_negative_int, default=3, help="the model's seed: its ordering and degrees "
                                                                             "(default: %(default)s)")
    parser.add_argument("--out", type=cli.path, default=os.path.join(ROOT, "results", "masks", "figure1.png"),
                        help="the PNG to write (default: results/masks/figure1.png)")
    args = parser.parse_args(argv)
    if args.inputs > 12 or not args.hidden or max(args.hidden) > 12:
        parser.error("a picture is legible up to 12 inputs and 12 units a layer, with at least one hidden layer")

    def body():
        runs.check_outputs({"--out": args.out})
        draw(MADE(args.inputs, args.hidden, seed=args.seed), args.out)
        print(f"wrote {args.out}")
    return cli.run_command("draw_masks.py", False, body)


if __name__ == "__main__":
    sys.exit(main())
