"""The negative log-likelihood of binary data under a trained MADE.

    python evaluate.py RUN_DIR                              # test NLL of the run's data set
    python evaluate.py RUN_DIR --dataset other.npz --split valid --test-masks 32   # a model of 32 masks or more
    python evaluate.py RUN_DIR --per-example                # log p(x) of every example: RUN_DIR/log_p_test.csv
    python evaluate.py RUN_DIR --observe top                # −log p(x_O) of the observed part alone
    python evaluate.py RUN_DIR --observe top --complete     # −log p(x_U | x_O): how well it completes

log p(x) is exact under each mask; with --test-masks K it is the ensemble
log (1/K) Σ_k p(x | mask k), computed one mask at a time. The standard error is over examples.
"""
if __name__ == "__main__":  # before the imports: closed streams and an early Ctrl-C (startup.py)
    import startup
    startup.begin("evaluate.py")

import argparse
import os
import sys

import numpy as np

import backend
import cli
import data
import files
import runs
from ancestral import completes_in_own_ordering, log_prob_observed, log_prob_unobserved


def build_parser():
    parser = argparse.ArgumentParser(description="NLL of binary data under a trained MADE (nats, lower is better).")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="a run folder written by train.py (holds model.npz); several: their mixture, "
                             "log p(x) = log (1/R) Σ_r p_r(x), each run's p_r its own ensemble (runs of one data set)")
    parser.add_argument("--dataset", default=None, help="a named data set or a file path (default: the run's data set)")
    parser.add_argument("--data-dir", type=cli.path, default=None, help="folder of the named data sets")
    parser.add_argument("--split", choices=data.SPLITS, default="test", help="which split (default: %(default)s)")
    parser.add_argument("--test-masks", type=cli.ensemble_size, default=None,
                        help="masks in the ensemble of each run trained on masks, at most the masks it was trained "
                             "on; a run of one mask uses it (default: what each run tested with)")
    parser.add_argument("--per-example", metavar="FILE.csv", type=cli.path, nargs="?", const=True, default=None,
                        help="also write index,log_prob of every example (low log p: likely outliers), to FILE.csv "
                             "or, without one, to RUN_DIR/log_p_SPLIT.csv (a mixture: the first run's "
                             "log_p_SPLIT_mixture.csv)")
    parser.add_argument("--observe", default=None,
                        help="score only the observed values, log p(x_O), under an ordering with them first: "
                             "top, bottom, left, right, random:F or FILE.npy (as in sample.py)")
    parser.add_argument("--complete", action="store_true",
                        help="with --observe, score the rest given the observed values, log p(x_U | x_O) "
                             "(the completion log-likelihood), instead of log p(x_O)")
    parser.add_argument("--seed", type=cli.non_negative_int, default=0,
                        help="seed of --observe random:F and its orderings (default: 0)")
    parser.add_argument("--batch-size", type=cli.positive_int, default=1000, help="examples per batch (default: %(default)s)")
    parser.add_argument("--gpu", action="store_true", help="run on a CUDA GPU through CuPy")
    return parser


def main(argv=None):
    cli.prepare_streams()
    parser = build_parser()
    args = parser.parse_args(argv)
    args.given = cli.given_flags(parser, argv)
    return cli.run_command("evaluate.py", args.gpu, lambda: report(args), user_errors=(runs.RunError,),
                           memory_advice="try a smaller --batch-size")


def report(args):
    """Print the NLL ± standard error (or log p(x_O)); write the per-example scores when asked."""
    if args.complete and not args.observe:
        raise data.DataError("--complete scores the unobserved values given the observed ones: it needs --observe")
    if "seed" in args.given and not args.observe:
        raise data.DataError("--seed draws --observe random:F and the observed-first orderings; without --observe "
                             "nothing is drawn: leave it out")
    if args.observe and args.test_masks:
        raise data.DataError("--test-masks sets the ensemble of whole examples; --observe scores under one "
                             "ordering per observation pattern with the observed values first (--seed), not an "
                             "ensemble: leave one out")
    if args.observe and len(args.run_dirs) > 1:
        raise data.DataError("--observe scores one run under orderings with the observed values first; give one run")
    first = args.run_dirs[0]
    if args.per_example is True:  # the flag alone: into the (first) run's folder
        name = f"log_p_{args.split}{'_mixture' if len(args.run_dirs) > 1 else ''}.csv"
        args.per_example = os.path.join(first, name)
    if args.per_example is not None:
        runs.check_outputs({"--per-example": args.per_example},
                           runs.run_inputs(args.run_dirs, args.dataset, args.data_dir, args.observe))
    models, splits, settings = runs.load_runs(args.run_dirs, args.gpu, args.dataset, args.data_dir,
                                              program="evaluate.py")
    model = models[0]
    x = backend.to_device(splits[args.split], args.gpu, model.dtype)
    if args.observe:
        observed = data.observed_mask(args.observe, x.shape, backend.random_generator(args.seed, "observed"))
        if not completes_in_own_ordering(model, observed):
            print("evaluate.py: warning: the model was trained on one ordering, which does not put the "
                  "observed values first; the orderings that do are outside what it learned", file=sys.stderr)
        score = log_prob_unobserved if args.complete else log_prob_observed
        progress = runs.Progress("one ordering per observation pattern", "examples")
        log_p = score(model, x, observed, seed=args.seed, batch_size=args.batch_size, progress=progress)
        runs.Progress.clear()
        what = (f"{'−log p(x_U | x_O)' if args.complete else '−log p(x_O)'} with --observe {args.observe} "
                f"({int(observed.sum(1).mean())} observed values on average)")
        nll = -backend.to_host(log_p).astype(np.float64)
    else:
        mixture = len(models) > 1
        if mixture and args.test_masks and all(m.n_distinct_masks == 1 for m in models):
            raise data.DataError("--test-masks sets the ensembles of the runs trained on masks; these runs have "
                                 "one mask each: leave it out")
        counts, label = runs.ensembles_of(args.run_dirs, models, settings, args.test_masks)
        what = f"NLL, {label}" if len(models) == 1 else f"NLL, mixture of {len(models)} runs: {label}"
        progress = runs.Progress(label if len(models) == 1 else f"mixture of {len(models)} runs, each", "batches")
        nll = runs.nll_per_example(models, x, counts, args.batch_size, progress)
        runs.Progress.clear()
    log_p = -nll
    error = runs.standard_error(nll)
    spread = f" ± {error:.4f}" if error is not None else ""
    print(f"{args.split}: {nll.mean():.4f}{spread} nats ({what}; {len(nll)} example{'s' if len(nll) > 1 else ''})")
    if args.per_example:
        with files.atomic_write(args.per_example, "w") as file:
            file.write("index,log_prob\n")
            file.writelines(f"{i},{value:.6f}\n" for i, value in enumerate(log_p))
        print(f"wrote {args.per_example}")


if __name__ == "__main__":
    sys.exit(main())
