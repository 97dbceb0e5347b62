"""The negative log-likelihood of binary data under a trained MADE.

    python evaluate.py RUN_DIR                              # test NLL of the run's data set
    python evaluate.py RUN_DIR --dataset other.npz --split valid --test-masks 100
    python evaluate.py RUN_DIR --per-example scores.csv     # log p(x) of every example (outlier scores)
    python evaluate.py RUN_DIR --observe top                # log p(x_O) of the observed part alone

log p(x) is exact under each mask; with --test-masks K it is the ensemble
log (1/K) Σ_k p(x | mask k). The standard error is over examples.
"""
import argparse
import math
import os
import sys

import numpy as np

import backend
import data
from made import CheckpointError
from sample import load_run, trained_on_one_ordering


def build_parser():
    parser = argparse.ArgumentParser(description="NLL of binary data under a trained MADE (nats, lower is better).")
    parser.add_argument("run_dir", help="a run folder written by train.py (holds model.npz)")
    parser.add_argument("--dataset", default=None, help="a named data set or a file path (default: the run's data set)")
    parser.add_argument("--data-dir", default=None, help="folder of the named data sets")
    parser.add_argument("--split", choices=data.SPLITS, default="test", help="which split (default: %(default)s)")
    parser.add_argument("--test-masks", type=int, default=None,
                        help="masks in the ensemble (default: what the run tested with, else 1)")
    parser.add_argument("--per-example", metavar="FILE.csv", default=None,
                        help="also write index,log_prob of every example (low log p: likely outliers)")
    parser.add_argument("--observe", default=None,
                        help="score only the observed values, log p(x_O), under an ordering with them first: "
                             "top, bottom, left, right, random:F or FILE.npy (as in sample.py)")
    parser.add_argument("--seed", type=int, default=0, help="seed of --observe random:F and its orderings (default: 0)")
    parser.add_argument("--batch-size", type=int, default=1000, help="examples per batch (default: %(default)s)")
    parser.add_argument("--gpu", action="store_true", help="run on a CUDA GPU through CuPy")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.test_masks is not None and args.test_masks < 1:
        parser.error("--test-masks must be at least 1")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    return backend.run_command("evaluate.py", args.gpu, lambda: report(args), (data.DataError, CheckpointError))


def report(args):
    """Print the NLL ± standard error (or log p(x_O)); write the per-example scores when asked."""
    model, splits, config = load_run(args.run_dir, args.gpu, args.dataset, args.data_dir)
    x = backend.to_device(splits[args.split], args.gpu, model.dtype)
    if args.observe:
        observed = data.observed_mask(args.observe, x.shape, backend.random_generator([args.seed, 3]))
        if trained_on_one_ordering(model):
            print("evaluate.py: warning: the model was trained on one ordering; log p(x_O) under an "
                  "ordering with the observed values first is outside what it learned", file=sys.stderr)
        log_p = model.log_prob_observed(x, observed, seed=args.seed, batch_size=args.batch_size)
        what = f"log p(x_O) with --observe {args.observe} ({int(observed.sum(1).mean())} observed values on average)"
    else:
        masks = args.test_masks or config.get("test_masks", 1)
        log_p = model.log_prob(x, n_masks=masks, batch_size=args.batch_size)
        what = f"NLL, {masks}-mask ensemble"
    log_p = backend.to_host(log_p).astype(np.float64)
    nll = -log_p
    stderr = nll.std(ddof=1) / math.sqrt(len(nll)) if len(nll) > 1 else float("nan")
    print(f"{args.split}: {nll.mean():.4f} ± {stderr:.4f} nats ({what}; {len(nll)} examples)")
    if args.per_example:
        with backend.atomic_write(args.per_example, "w") as file:
            file.write("index,log_prob\n")
            file.writelines(f"{i},{value:.6f}\n" for i, value in enumerate(log_p))
        print(f"wrote {args.per_example}")


if __name__ == "__main__":
    sys.exit(main())
