"""Sample from a trained MADE, or complete partly observed data: pictures and a command line over
the samplers of ancestral.py (whose sample and complete are importable from here too).

    samples = sample(model, 100, seed=0)                   # (100, D) array of 0/1
    filled = complete(model, x, observed, n=5, seed=0)      # (N, 5, D): observed values kept

    python sample.py RUN_DIR --n 100                 # RUN_DIR/samples.png and samples.npy
    python sample.py RUN_DIR --complete --observe top  # RUN_DIR/completions.png and completions.npy

How the samplers work, and why the fast one is exact: ancestral.py.
"""
if __name__ == "__main__":  # before the imports: closed streams and an early Ctrl-C (startup.py)
    import startup
    startup.begin("sample.py")

import argparse
import os
import sys

import numpy as np

import backend
import cli
import data
import files
import runs
from ancestral import complete, completes_in_own_ordering, sample, sample_mixture  # noqa: F401 (public API)


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


FRAME = (0.95, 0.55, 0.1)  # the colour around the images the model drew


def save_grid(path, tiles, side, framed=None, scale=3):
    """tiles: (rows, columns, D) values in [0, 1] → one PNG, each pixel drawn as a scale × scale
    block, written atomically; framed: (rows, columns) booleans, the tiles to draw a coloured frame
    around (the model's own images, told apart from the data beside them)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, columns = tiles.shape[:2]
    grid = np.full((rows * (side + 2) + 2, columns * (side + 2) + 2, 3), 0.3)
    for r in range(rows):
        for c in range(columns):
            top, left = 2 + r * (side + 2), 2 + c * (side + 2)
            if framed is not None and framed[r, c]:
                grid[top - 1:top + side + 1, left - 1:left + side + 1] = FRAME
            grid[top:top + side, left:left + side] = tiles[r, c].reshape(side, side, 1)
    grid = np.kron(grid, np.ones((scale, scale, 1)))
    with files.atomic_write(path) as file:
        plt.imsave(file, grid, format="png")


def arrange(tiles, per_row, framed):
    """(count, D) tiles and (count,) booleans → (rows, per_row, D) and (rows, per_row), as save_grid
    takes them: the last row padded with gray tiles, not framed."""
    missing = -len(tiles) % per_row
    padded = np.concatenate([tiles, np.full((missing, tiles.shape[1]), 0.3)])
    flags = np.concatenate([framed, np.zeros(missing, dtype=bool)])
    return padded.reshape(-1, per_row, tiles.shape[1]), flags.reshape(-1, per_row)


# ----------------------------------------------------------------------------------------------
# Command line


def build_parser():
    parser = argparse.ArgumentParser(description="Sample from a trained MADE, or complete partly observed data.")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="a run folder written by train.py (holds model.npz); several: samples of their "
                             "mixture, as evaluate.py scores it (runs of one data set)")
    parser.add_argument("--n", type=cli.positive_int, default=100, help="samples to draw (default: %(default)s)")
    parser.add_argument("--out", type=cli.path, default=None,
                        help="the picture to write, a .png (default: RUN_DIR/samples.png, RUN_DIR/completions.png "
                             "with --complete, the first run's samples_mixture.png for several runs); the 0/1 "
                             "array goes beside it, the same name ending in .npy")
    parser.add_argument("--test-masks", type=cli.ensemble_size, default=None,
                        help="draw from the ensemble of this many masks of each run trained on masks: each sample's "
                             "mask chosen uniformly among them, as evaluate.py --test-masks scores it (default: what "
                             "each run tested with, so the samples are of the density its test NLL measures)")
    parser.add_argument("--mask", type=cli.non_negative_int, default=None,
                        help="instead, draw every sample under this one mask of the training cycle, 0 … masks−1; "
                             "completion chooses its own (orderings with the observed values first)")
    parser.add_argument("--seed", type=cli.non_negative_int, default=0, help="seed of the uniforms (default: %(default)s)")
    parser.add_argument("--naive", action="store_true", help="use the reference sampler (D forward passes)")
    parser.add_argument("--dataset", default=None, help="data for nearest neighbours and completion (default: the run's)")
    parser.add_argument("--data-dir", type=cli.path, default=None, help="folder of the named data sets")
    parser.add_argument("--no-nearest", action="store_true", help="do not show the nearest training example of each sample")
    parser.add_argument("--complete", action="store_true", help="complete partly observed examples instead of sampling")
    parser.add_argument("--from", dest="split", choices=data.SPLITS, default="test", help="split to complete (default: test)")
    parser.add_argument("--observe", default="top",
                        help="what is observed: top, bottom, left, right (image halves), random:F (each value "
                             "with probability F), or FILE.npy of booleans, (D,) or one row per example of the "
                             "split, row i for example i as in evaluate.py (default: top)")
    parser.add_argument("--examples", type=cli.positive_int, default=10,
                        help="examples to complete, drawn at random from the split with --seed (default: %(default)s)")
    parser.add_argument("--completions", type=cli.positive_int, default=5,
                        help="completions per example (default: %(default)s)")
    parser.add_argument("--gpu", action="store_true", help="run on a CUDA GPU through CuPy")
    return parser


def main(argv=None):
    cli.prepare_streams()
    parser = build_parser()
    args = parser.parse_args(argv)
    given = cli.given_flags(parser, argv)

    def body():
        refuse_ignored_flags(args, given)
        several = len(args.run_dirs) > 1
        default = "completions.png" if args.complete else "samples_mixture.png" if several else "samples.png"
        out = args.out or os.path.join(args.run_dirs[0], default)
        if not out.lower().endswith(".png"):
            raise files.FileWriteError(f"--out {out}: must name a .png file (the array goes beside it as .npy)")
        array_path = out[:-len(".png")] + ".npy"
        inputs = runs.run_inputs(args.run_dirs, args.dataset, args.data_dir, args.complete and args.observe)
        runs.check_outputs({"--out": out, "--out (its array)": array_path}, inputs)
        models, splits, settings = runs.load_runs(args.run_dirs, args.gpu, args.dataset, args.data_dir,
                                                  need_data=args.complete or not args.no_nearest, program="sample.py")
        if args.complete:
            run_completion(args, models[0], splits, out, array_path)
        else:
            run_sampling(args, models, settings, splits, out, array_path)
    return cli.run_command("sample.py", args.gpu, body, user_errors=(runs.RunError,),
                           memory_advice="try a smaller --n, or fewer --examples or --completions")


def refuse_ignored_flags(args, given):
    """A DataError for flags the mode asked for would ignore (given: the flags the command line gave):
    sampling from scratch and completion each have their own, and --complete and --mask take one run."""
    def listed(flags):
        return f"{', '.join(flags)} belong{'s' if len(flags) == 1 else ''} to"
    if len(args.run_dirs) > 1 and (args.complete or args.mask is not None):
        raise data.DataError(f"{'--complete' if args.complete else '--mask'} works on one run; give one RUN_DIR")
    if args.mask is not None and (args.test_masks is not None or args.complete):
        other = ("--complete under orderings with the observed values first" if args.complete
                 else "--test-masks from an ensemble of masks")
        raise data.DataError(f"--mask draws under one mask, {other}: leave one out")
    if args.complete and args.test_masks is not None:
        raise data.DataError("--test-masks sets the ensemble samples are drawn from; --complete draws under one "
                             "ordering per observation pattern, with the observed values first: leave it out")
    completion_only = [f"--{flag}" for flag in ("from", "observe", "examples", "completions")
                       if ("split" if flag == "from" else flag) in given]
    if completion_only and not args.complete:
        raise data.DataError(f"{listed(completion_only)} --complete; sampling from scratch does not use them")
    sampling_only = [f"--{flag.replace('_', '-')}" for flag in ("n", "no_nearest") if flag in given]
    if sampling_only and args.complete:
        raise data.DataError(f"{listed(sampling_only)} sampling from scratch; --complete draws --completions for "
                             f"each of --examples")


def write_outputs(out, array_path, array, picture, what):
    """array (0/1) at array_path, and when the data are square images the picture() (tiles, framed)
    at out."""
    files.save_npy(array_path, array.astype(np.uint8))
    side = image_side(array.shape[-1])
    if side is None:
        print(f"wrote {array_path}, shape {array.shape}: {what.split(' (framed)')[0]} (no picture: {array.shape[-1]} "
              f"variables are not a square image)")
        return
    tiles, framed = picture()
    save_grid(out, tiles, side, framed)
    print(f"wrote {out} and {array_path}: {what}")


def run_sampling(args, models, settings, splits, out, array_path):
    """--n samples of the density evaluate.py reports for the same runs and --test-masks (ancestral.
    sample_mixture), or under one --mask; each beside its nearest training example."""
    if args.mask is not None:
        model = models[0]
        if model.n_masks > 0 and args.mask >= model.n_masks:
            raise data.DataError(f"--mask {args.mask}: the model's cycle has {model.n_masks} mask"
                                 f"{'s' if model.n_masks > 1 else ''} (0 … {model.n_masks - 1}); others were never trained")
        model.use_mask(args.mask)
        counts, what = [None], f"under mask {args.mask}"
    else:
        counts, label = runs.ensembles_of(args.run_dirs, models, settings, args.test_masks)
        what = f"of the {label}" if len(models) == 1 else f"of the mixture of {len(models)} runs ({label})"
    samples = sample_mixture(models, args.n, counts, seed=args.seed, method="naive" if args.naive else "fast")
    if splits is None:
        write_outputs(out, array_path, samples, lambda: arrange(samples, 10, np.ones(args.n, bool)),
                      f"{args.n} samples {what} (framed)")
        return

    def beside_nearest():
        nearest = splits["train"][nearest_rows(samples, splits["train"])]
        pairs = np.stack([samples, nearest], axis=1).reshape(-1, models[0].n_in)
        return arrange(pairs, 20, np.tile([True, False], args.n))
    write_outputs(out, array_path, samples, beside_nearest,
                  f"{args.n} samples {what} (framed), each beside its nearest training example")


def run_completion(args, model, splits, out, array_path):
    split = splits[args.split]
    observed = data.observed_mask(args.observe, split.shape, backend.random_generator(args.seed, "observed"))
    rows = np.sort(backend.random_generator(args.seed, "examples").permutation(len(split))[: args.examples])
    x, observed = split[rows], observed[rows]  # spread over the split: its first rows can be one class
    if not completes_in_own_ordering(model, observed):
        print("sample.py: warning: this model was trained on one ordering, which does not put the observed "
              "values first; completion uses orderings that do, which it never trained on: expect poor "
              "completions (train with --masks 32 or --masks 0 and --shuffle full or ordering)", file=sys.stderr)
    filled = complete(model, x, observed, n=args.completions, seed=args.seed, method="naive" if args.naive else "fast")
    shown_observed = np.where(observed, x, 0.5)  # unobserved pixels gray

    def picture():
        tiles = np.concatenate([x[:, None], shown_observed[:, None], filled], axis=1)
        framed = np.zeros(tiles.shape[:2], dtype=bool)
        framed[:, 2:] = True
        return tiles, framed
    write_outputs(out, array_path, filled, picture, f"each row is the original, the observed part (unobserved in "
                                                    f"gray), then {args.completions} completions (framed)")


if __name__ == "__main__":
    sys.exit(main())
