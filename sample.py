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
import json
import os
import sys

import numpy as np

import backend
import data
from autograd import ACTIVATIONS, mask_conditioning
from made import MADE, CheckpointError, group_by_pattern, observed_first_ordering


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

    Sort the inputs by position and each hidden layer's units by connectivity m, and every mask
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
    """The model's weights with inputs in sampling order and hidden units sorted by connectivity.

    Returns weights[l] (H_l, fan_in) and biases[l] (mask-conditioning included) per hidden layer,
    output (D, H_L), direct (D, D), output_bias (D,), all in the sorted order, and per layer
    upto[l][p] / below[l][p]: how many of its units have degree ≤ p / < p.
    """
    xp = model.xp
    by_degree = [np.argsort(backend.to_host(degrees), kind="stable") for degrees in model.connectivity]
    positions = np.arange(model.n_in + 1)
    net = {"weights": [], "biases": [], "upto": [], "below": []}
    previous = model.ordering
    for layer, order in enumerate(by_degree):
        name = f"W{layer}"
        net["weights"].append(model.params[name][xp.asarray(order)][:, xp.asarray(previous)])
        net["biases"].append(model.bias_of(name)[xp.asarray(order)])
        sorted_degrees = backend.to_host(model.connectivity[layer])[order]
        net["upto"].append(np.searchsorted(sorted_degrees, positions, side="right").tolist())
        net["below"].append(np.searchsorted(sorted_degrees, positions, side="left").tolist())
        previous = order
    rows = xp.asarray(model.ordering)
    if model.hidden_sizes:
        output = f"W{len(model.hidden_sizes)}"
        net["output"] = model.params[output][rows][:, xp.asarray(previous)]
        net["output_bias"] = model.bias_of(output)[rows]
    else:
        net["output_bias"] = model.params["b0"][rows]
    if model.direct:
        net["direct"] = model.params["W_direct"][rows][:, rows]
        if model.cond_mask:
            net["output_bias"] = net["output_bias"] + mask_conditioning(model.params["U_direct"], model.masks["W_direct"])[rows]
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
    with its observed variables first (connectivity drawn as usual), so their conditionals need
    nothing unobserved and the rest is ordinary ancestral sampling. Exact under that ordering's
    model, which is only a good model when it was trained with ordering sampling (--masks ≠ 1).
    Returns (N, n, D); the current mask is restored afterwards.
    """
    x_host = np.asarray(backend.to_host(x), dtype=np.float64)
    observed = np.broadcast_to(np.asarray(backend.to_host(observed), dtype=bool), x_host.shape)
    sampler = sample_fast if method == "fast" else sample_naive
    rng = backend.random_generator(seed)
    result = np.empty((x_host.shape[0], n, x_host.shape[1]), dtype=np.float32)
    current = model.mask_index
    try:
        for group, (pattern, rows) in enumerate(group_by_pattern(observed)):
            model.use_ordering(observed_first_ordering(pattern, backend.random_generator([seed, group])), seed)
            given = np.repeat(x_host[rows], n, axis=0)
            uniforms = backend.to_device(rng.random(given.shape), model.gpu, model.dtype)
            filled = sampler(model, uniforms, backend.to_device(given, model.gpu), int(pattern.sum()))
            result[rows] = backend.to_host(filled).reshape(len(rows), n, -1)
    finally:
        model.use_mask(current if current is not None else 0)
    return result


def trained_on_one_ordering(model):
    """True when completion under a new ordering is outside what the model learned."""
    return model.n_masks == 1 or model.shuffle in ("connectivity", "once")


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
    with backend.atomic_write(path) as file:
        plt.imsave(file, grid, cmap="gray", vmin=0, vmax=1, format="png")


def save_array(path, array):
    with backend.atomic_write(path) as file:
        np.save(file, array)


# ----------------------------------------------------------------------------------------------
# Command line


def build_parser():
    parser = argparse.ArgumentParser(description="Sample from a trained MADE, or complete partly observed data.")
    parser.add_argument("run_dir", help="a run folder written by train.py (holds model.npz)")
    parser.add_argument("--n", type=_positive_int, default=100, help="samples to draw (default: %(default)s)")
    parser.add_argument("--out", default=None,
                        help="PNG to write (default: RUN_DIR/samples.png or completions.png); the arrays go beside it as .npy")
    parser.add_argument("--mask", type=_non_negative_int, default=0, help="mask of the training cycle to sample under (default: 0)")
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the uniforms (default: %(default)s)")
    parser.add_argument("--naive", action="store_true", help="use the reference sampler (D forward passes)")
    parser.add_argument("--dataset", default=None, help="data for nearest neighbours and completion (default: the run's)")
    parser.add_argument("--data-dir", default=None, help="folder of the named data sets")
    parser.add_argument("--no-nearest", action="store_true", help="do not show the nearest training example of each sample")
    parser.add_argument("--complete", action="store_true", help="complete partly observed examples instead of sampling")
    parser.add_argument("--from", dest="split", choices=data.SPLITS, default="test", help="split to complete (default: test)")
    parser.add_argument("--observe", default="top",
                        help="what is observed: top, bottom, left, right (image halves), random:F (each value "
                             "with probability F), or FILE.npy of booleans, (D,) or (examples, D) (default: top)")
    parser.add_argument("--examples", type=_positive_int, default=10,
                        help="examples to complete, drawn at random from the split with --seed (default: %(default)s)")
    parser.add_argument("--completions", type=_positive_int, default=5, help="completions per example (default: %(default)s)")
    parser.add_argument("--gpu", action="store_true", help="run on a CUDA GPU through CuPy")
    return parser


def _positive_int(text):
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0, not {text}")
    return value


def load_run(run_dir, gpu, dataset=None, data_dir=None, need_data=True):
    """(model, splits or None, the run's config) from a train.py run folder."""
    model = MADE.load(os.path.join(run_dir, "model.npz"), gpu=gpu)
    config = run_config_of(run_dir)
    splits = None
    if need_data:
        dataset = dataset or config.get("dataset")
        if dataset is None:
            raise data.DataError(f"{run_dir} does not name its data set: pass --dataset")
        splits = data.load(dataset, data_dir or config.get("data_dir"))
        if splits["train"].shape[1] != model.n_in:
            raise data.DataError(f"{dataset} has {splits['train'].shape[1]} variables, the model {model.n_in}")
    return model, splits, config


def run_config_of(run_dir):
    """The flags a run was trained with: from metrics.json once it finished, else (while it runs,
    or after an interruption) from its checkpoint; {} when neither can be read."""
    try:
        with open(os.path.join(run_dir, "metrics.json")) as file:
            return json.load(file).get("config", {})
    except (OSError, ValueError, AttributeError):
        pass
    try:
        path = os.path.join(run_dir, "checkpoint.npz")
        state = backend.read_json_array(backend.read_npz(path, names={"train_state"})["train_state"], path)
        return dict(state["run_config"])
    except (backend.FileFormatError, KeyError, TypeError, ValueError):
        return {}


def main(argv=None):
    args = build_parser().parse_args(argv)

    def body():
        model, splits, _ = load_run(args.run_dir, args.gpu, args.dataset, args.data_dir,
                                    need_data=args.complete or not args.no_nearest)
        (run_completion if args.complete else run_sampling)(args, model, splits)
    return backend.run_command("sample.py", args.gpu, body, (data.DataError, CheckpointError, ValueError))


def write_outputs(out, array, tiles, what):
    """array (0/1) as OUT.npy, and when the data are square images the grid tiles() as the PNG OUT."""
    array_path = os.path.splitext(out)[0] + ".npy"
    save_array(array_path, array.astype(np.uint8))
    side = image_side(array.shape[-1])
    if side is None:
        print(f"wrote {array_path}, shape {array.shape} (no picture: {array.shape[-1]} variables are not a square image)")
        return
    save_grid(out, tiles(), side)
    print(f"wrote {out} and {array_path}: {what}")


def run_sampling(args, model, splits):
    model.use_mask(args.mask)
    samples = backend.to_host(sample(model, args.n, seed=args.seed, method="naive" if args.naive else "fast"))
    out = args.out or os.path.join(args.run_dir, "samples.png")
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


def run_completion(args, model, splits):
    rows = backend.random_generator([args.seed, 4]).permutation(len(splits[args.split]))[: args.examples]
    x = splits[args.split][np.sort(rows)]  # spread over the split: its first rows can be one class
    observed = data.observed_mask(args.observe, x.shape, backend.random_generator([args.seed, 3]))
    if trained_on_one_ordering(model):
        print("sample.py: warning: this model was trained on one ordering; completion uses orderings with "
              "the observed values first, which it never trained on: expect poor completions "
              "(train with --masks 32 or --masks 0 and --shuffle full or ordering)", file=sys.stderr)
    filled = complete(model, x, observed, n=args.completions, seed=args.seed, method="naive" if args.naive else "fast")
    out = args.out or os.path.join(args.run_dir, "completions.png")
    shown_observed = np.where(observed, x, 0.5)  # unobserved pixels gray
    write_outputs(out, filled, lambda: np.concatenate([x[:, None], shown_observed[:, None], filled], axis=1),
                  f"each row is the original, the observed part (unobserved in gray), "
                  f"then {args.completions} completions")


if __name__ == "__main__":
    sys.exit(main())
