"""Sample from a trained MADE, or complete partly observed data: pictures and a command line over
the samplers of ancestral.py (whose sample and complete are importable from here too).

    samples = sample(model, 100, seed=0)                   # (100, D) array of 0/1
    filled = complete(model, x, observed, n=5, seed=0)      # (N, 5, D): observed values kept

    python sample.py RUN_DIR --n 100 --out samples.png
    python sample.py RUN_DIR --complete --from test --observe top --out completions.png

How the samplers work, and why the fast one is exact: ancestral.py.
"""
import argparse
import os
import sys

import numpy as np

import backend
import cli
import data
import files
import runs
from ancestral import complete, completes_in_own_ordering, sample  # noqa: F401  (also the public API: from sample import sample)


# ----------------------------------------------------------------------------------------------
# Pictures


def nearest_rows(queries, reference, batch_size=5000):
    """Index of the nearest reference row (Hamming distance) for each query row.

    ‖q − r‖₁ for 0/1 vectors = Σq + Σr − 2 q·r: one matrix product per batch of the reference.
    """
    queries = np.asarray(queries, dtype=np.float32)
    best_distance = np.full(len(queries), np.inf)
    best_index = np.zeros(len(queries), dtype=np.int64)
    for start in range(0, len(reference), batch_size):
        chunk = np.asarray(reference[start:start + batch_size], dtype=np.float32)
        distance = queries.sum(1)[:, None] + chunk.sum(1)[None, :] - 2 * queries @ chunk.T
        index = distance.argmin(axis=1)
        closer = distance[np.arange(len(queries)), index] < best_distance
        best_distance[closer] = distance[np.arange(len(queries)), index][closer]
        best_index[closer] = start + index[closer]
    return best_index


def image_side(n_in):
    """The side of a square image of n_in pixels, or None."""
    side = int(round(n_in ** 0.5))
    return side if side * side == n_in else None


def save_grid(path, tiles, side, scale=3):
    """tiles: (rows, columns, D) values in [0, 1] → one grayscale PNG, 1-pixel gaps, each pixel
    drawn as a scale × scale block, written atomically."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, columns = tiles.shape[:2]
    grid = np.full((rows * (side + 1) + 1, columns * (side + 1) + 1), 0.3)
    for r in range(rows):
        for c in range(columns):
            top, left = 1 + r * (side + 1), 1 + c * (side + 1)
            grid[top:top + side, left:left + side] = tiles[r, c].reshape(side, side)
    grid = np.kron(grid, np.ones((scale, scale)))
    with files.atomic_write(path) as file:
        plt.imsave(file, grid, cmap="gray", vmin=0, vmax=1, format="png")


# ----------------------------------------------------------------------------------------------
# Command line


def build_parser():
    parser = argparse.ArgumentParser(description="Sample from a trained MADE, or complete partly observed data.")
    parser.add_argument("run_dir", help="a run folder written by train.py (holds model.npz)")
    parser.add_argument("--n", type=cli.positive_int, default=100, help="samples to draw (default: %(default)s)")
    parser.add_argument("--out", type=cli.path, default=None,
                        help="PNG to write (default: RUN_DIR/samples.png or completions.png); the arrays go beside it as .npy")
    parser.add_argument("--mask", type=cli.non_negative_int, default=0,
                        help="mask of the training cycle to sample under, 0 … masks−1 (default: 0)")
    parser.add_argument("--seed", type=cli.non_negative_int, default=0, help="seed of the uniforms (default: %(default)s)")
    parser.add_argument("--naive", action="store_true", help="use the reference sampler (D forward passes)")
    parser.add_argument("--dataset", default=None, help="data for nearest neighbours and completion (default: the run's)")
    parser.add_argument("--data-dir", type=cli.path, default=None, help="folder of the named data sets")
    parser.add_argument("--no-nearest", action="store_true", help="do not show the nearest training example of each sample")
    parser.add_argument("--complete", action="store_true", help="complete partly observed examples instead of sampling")
    parser.add_argument("--from", dest="split", choices=data.SPLITS, default="test", help="split to complete (default: test)")
    parser.add_argument("--observe", default="top",
                        help="what is observed: top, bottom, left, right (image halves), random:F (each value "
                             "with probability F), or FILE.npy of booleans, (D,) or (examples, D) (default: top)")
    parser.add_argument("--examples", type=cli.positive_int, default=10,
                        help="examples to complete, drawn at random from the split with --seed (default: %(default)s)")
    parser.add_argument("--completions", type=cli.positive_int, default=5,
                        help="completions per example (default: %(default)s)")
    parser.add_argument("--gpu", action="store_true", help="run on a CUDA GPU through CuPy")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)

    def body():
        out = args.out or os.path.join(args.run_dir, "completions.png" if args.complete else "samples.png")
        cli.check_output(out, "--out")
        model, splits, _ = runs.load_run(args.run_dir, args.gpu, args.dataset, args.data_dir,
                                         need_data=args.complete or not args.no_nearest)
        (run_completion if args.complete else run_sampling)(args, model, splits, out)
    return cli.run_command("sample.py", args.gpu, body, user_errors=(runs.RunError,),
                           memory_advice="try a smaller --n, or fewer --examples or --completions")


def write_outputs(out, array, tiles, what):
    """array (0/1) as OUT.npy, and when the data are square images the grid tiles() as the PNG OUT."""
    array_path = os.path.splitext(out)[0] + ".npy"
    files.save_npy(array_path, array.astype(np.uint8))
    side = image_side(array.shape[-1])
    if side is None:
        print(f"wrote {array_path}, shape {array.shape} (no picture: {array.shape[-1]} variables are not a square image)")
        return
    save_grid(out, tiles(), side)
    print(f"wrote {out} and {array_path}: {what}")


def run_sampling(args, model, splits, out):
    if model.n_masks > 0 and args.mask >= model.n_masks:
        raise data.DataError(f"--mask {args.mask}: the model's cycle has {model.n_masks} mask"
                             f"{'s' if model.n_masks > 1 else ''} (0 … {model.n_masks - 1}); others were never trained")
    model.use_mask(args.mask)
    samples = backend.to_host(sample(model, args.n, seed=args.seed, method="naive" if args.naive else "fast"))
    if splits is None:
        write_outputs(out, samples, lambda: arrange(samples, per_row=10), f"{args.n} samples")
        return

    def beside_nearest():
        nearest = splits["train"][nearest_rows(samples, splits["train"])]
        return arrange(np.stack([samples, nearest], axis=1).reshape(-1, model.n_in), per_row=20)
    write_outputs(out, samples, beside_nearest, f"{args.n} samples, each beside its nearest training example")


def arrange(tiles, per_row):
    """(count, D) → (rows, per_row, D), padding the last row with gray tiles."""
    missing = -len(tiles) % per_row
    padded = np.concatenate([tiles, np.full((missing, tiles.shape[1]), 0.3)])
    return padded.reshape(-1, per_row, tiles.shape[1])


def run_completion(args, model, splits, out):
    rows = backend.random_generator(args.seed, "examples").permutation(len(splits[args.split]))[: args.examples]
    x = splits[args.split][np.sort(rows)]  # spread over the split: its first rows can be one class
    observed = data.observed_mask(args.observe, x.shape, backend.random_generator(args.seed, "observed"))
    if not completes_in_own_ordering(model, observed):
        print("sample.py: warning: this model was trained on one ordering, which does not put the observed "
              "values first; completion uses orderings that do, which it never trained on: expect poor "
              "completions (train with --masks 32 or --masks 0 and --shuffle full or ordering)", file=sys.stderr)
    filled = complete(model, x, observed, n=args.completions, seed=args.seed, method="naive" if args.naive else "fast")
    shown_observed = np.where(observed, x, 0.5)  # unobserved pixels gray
    write_outputs(out, filled, lambda: np.concatenate([x[:, None], shown_observed[:, None], filled], axis=1),
                  f"each row is the original, the observed part (unobserved in gray), "
                  f"then {args.completions} completions")


if __name__ == "__main__":
    sys.exit(main())
