"""Ancestral sampling from a MADE, and completion of partly observed data.

    samples = sample(model, 100, seed=0)                   # (100, D) array of 0/1
    filled = complete(model, x, observed, n=5, seed=0)      # (N, 5, D): observed values kept

    python sample.py RUN_DIR --n 100 --out samples.png
    python sample.py RUN_DIR --complete --from test --observe top --out completions.png

Ancestral sampling draws x_o(1), x_o(2), … in the model's ordering o, each from p(x_d | x_<d).
The obvious way runs one full forward pass per variable: D passes per sample (sample_naive, kept as
the reference). But hidden unit k depends only on the inputs at positions ≤ m(k): it can be
computed once, as soon as those inputs are drawn, and output d needs only the units with
m(k) < position of d. sample_fast does exactly that, so a whole sample costs at most one forward
pass plus D small steps, for any depth and with every option.

Both samplers turn the same uniforms u into the same samples: x_o(p) = 1 when a_o(p) > logit(u_p),
which is u_p < σ(a_o(p)), with the logit of the uniforms computed once for all positions.
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
from autograd import ACTIVATIONS
from made import group_by_pattern, observed_first_ordering, trained_on_one_ordering


def sample_naive(model, uniforms, given=None, n_given=0):
    """Reference sampler: a full forward pass for each position p ≥ n_given (O(D · parameters)).

    uniforms: (N, D), uniforms[:, p] decides the variable at position p of model.ordering.
    given: (N, D) values for the first n_given positions (completion), or None.
    """
    thresholds = _logit(uniforms)
    x = model.xp.zeros(uniforms.shape, dtype=model.dtype)
    if n_given:
        first = model.xp.asarray(model.ordering[:n_given])
        x[:, first] = model.xp.asarray(given, dtype=model.dtype)[:, first]
    masked = model.masked_weights()
    for position in range(n_given, model.n_in):
        d = int(model.ordering[position])
        x[:, d] = model.forward(x, masked)[:, d] > thresholds[:, position]
    return x


def sample_fast(model, uniforms, given=None, n_given=0):
    """Exact ancestral sampling in at most one forward pass (same arguments as sample_naive).

    Sort the inputs by position and each hidden layer's units by degree m, and every mask
    becomes a staircase: a unit of degree m sees exactly a prefix of the layer below (the units of
    degree ≤ m; for an output at position p, those of degree < p). So no mask is needed: at
    position p, draw x_p from the prefix sums, then compute the units of degree p, layer by layer,
    from their prefixes. Each unit is computed once, when its last input is known.
    """
    xp, n_layers, n_in = model.xp, len(model.hidden_sizes), model.n_in
    activate = ACTIVATIONS[model.activation][0]
    net = _staircase(model)
    thresholds = _logit(uniforms)
    x = xp.zeros(uniforms.shape, dtype=model.dtype)  # columns in sampling order: x[:, p] = x_o(p)
    if n_given:
        x[:, :n_given] = xp.asarray(given, dtype=model.dtype)[:, xp.asarray(model.ordering[:n_given])]
    hidden = [xp.zeros((x.shape[0], size), dtype=model.dtype) for size in model.hidden_sizes]
    for p in range(n_in):
        if p >= n_given:
            logit = net["output_bias"][p]
            if n_layers:
                seen = net["below"][-1][p]  # last-layer units of degree < p
                logit = logit + hidden[-1][:, :seen] @ net["output"][p, :seen]
            if model.direct:
                logit = logit + x[:, :p] @ net["direct"][p, :p]
            x[:, p] = logit > thresholds[:, p]
        for layer in range(n_layers):
            first, end = net["below"][layer][p], net["upto"][layer][p]  # the units of degree p
            if first == end:
                continue
            fan_in = p + 1 if layer == 0 else net["upto"][layer - 1][p]
            below = x if layer == 0 else hidden[layer - 1]
            z = below[:, :fan_in] @ net["weights"][layer][first:end, :fan_in].T + net["biases"][layer][first:end]
            hidden[layer][:, first:end] = activate(z)
    samples = xp.empty_like(x)
    samples[:, xp.asarray(model.ordering)] = x
    return samples


def _staircase(model):
    """The model's weights with inputs in sampling order and hidden units sorted by degree.

    Returns weights[l] (H_l, fan_in) and biases[l] (mask-conditioning included) per hidden layer,
    output (D, H_L) and direct (D, D) for the output layer's incoming weights, output_bias (D,), all
    in the sorted order, and per hidden layer upto[l][p] / below[l][p]: how many of its units have
    degree ≤ p / < p.
    """
    xp = model.xp
    by_degree = [np.argsort(backend.to_host(degrees), kind="stable") for degrees in model.hidden_degrees]
    sorted_order = [model.ordering] + by_degree  # of each source: the inputs by position, units by degree
    positions = np.arange(model.n_in + 1)
    net = {"weights": [], "biases": [], "upto": [], "below": []}
    for layer, (order, spec) in enumerate(zip(by_degree, model.layers)):
        name, source = spec.inputs[0]
        rows = xp.asarray(order)
        net["weights"].append(model.params[name][rows][:, xp.asarray(sorted_order[source])])
        net["biases"].append(model.layer_bias(spec)[rows])
        sorted_degrees = backend.to_host(model.hidden_degrees[layer])[order]
        net["upto"].append(np.searchsorted(sorted_degrees, positions, side="right").tolist())
        net["below"].append(np.searchsorted(sorted_degrees, positions, side="left").tolist())
    output, rows = model.layers[-1], xp.asarray(model.ordering)
    net["output_bias"] = model.layer_bias(output)[rows]
    for name, source in output.inputs:
        net["direct" if source == 0 else "output"] = model.params[name][rows][:, xp.asarray(sorted_order[source])]
    return net


def _logit(uniforms):
    """log(u / (1 − u)): x = 1[a > logit(u)] is x = 1[u < σ(a)], a Bernoulli(σ(a)) draw."""
    xp = backend.module_of(uniforms)
    with np.errstate(divide="ignore"):  # u = 0 gives −inf: a sure 1, as u < σ(a) would
        return xp.log(uniforms) - xp.log1p(-uniforms)


def sample(model, n, seed=0, method="fast"):
    """n exact samples (n, D) of 0/1 from the model under its current mask, reproducible from seed."""
    uniforms = backend.to_device(backend.random_generator(seed).random((n, model.n_in)), model.gpu, model.dtype)
    return (sample_fast if method == "fast" else sample_naive)(model, uniforms)


def complete(model, x, observed, n=1, seed=0, method="fast"):
    """n completions of each row of x: observed values kept, the rest drawn from p(x_U | x_O).

    x: (N, D) 0/1; observed: (N, D) or (D,) booleans. Each observation pattern gets an ordering
    with its observed variables first (hidden degrees drawn as usual), so their conditionals need
    nothing unobserved and the rest is ordinary ancestral sampling. Exact under that ordering's
    model, which is only a good model when it was trained with ordering sampling (--masks ≠ 1).
    Returns (N, n, D); the current mask is restored afterwards.
    """
    x_host = np.asarray(backend.to_host(x), dtype=np.float64)
    observed = np.broadcast_to(np.asarray(backend.to_host(observed), dtype=bool), x_host.shape)
    sampler = sample_fast if method == "fast" else sample_naive
    rng = backend.random_generator(seed)
    result = np.empty((x_host.shape[0], n, x_host.shape[1]), dtype=np.float32)
    with model.keeping_mask():
        for group, (pattern, rows) in enumerate(group_by_pattern(observed)):
            ordering = observed_first_ordering(pattern, backend.random_generator(seed, "pattern_orderings", group))
            model.use_ordering(ordering, seed)
            given = np.repeat(x_host[rows], n, axis=0)
            uniforms = backend.to_device(rng.random(given.shape), model.gpu, model.dtype)
            filled = sampler(model, uniforms, backend.to_device(given, model.gpu), int(pattern.sum()))
            result[rows] = backend.to_host(filled).reshape(len(rows), n, -1)
    return result


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
    if trained_on_one_ordering(model):
        print("sample.py: warning: this model was trained on one ordering; completion uses orderings with "
              "the observed values first, which it never trained on: expect poor completions "
              "(train with --masks 32 or --masks 0 and --shuffle full or ordering)", file=sys.stderr)
    filled = complete(model, x, observed, n=args.completions, seed=args.seed, method="naive" if args.naive else "fast")
    shown_observed = np.where(observed, x, 0.5)  # unobserved pixels gray
    write_outputs(out, filled, lambda: np.concatenate([x[:, None], shown_observed[:, None], filled], axis=1),
                  f"each row is the original, the observed part (unobserved in gray), "
                  f"then {args.completions} completions")


if __name__ == "__main__":
    sys.exit(main())
