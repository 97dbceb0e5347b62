"""Completions of test digits from an observed part, the top half unless --observe says
otherwise: MADEs side by side, with the completion log-likelihood as a number beside the picture.

    python experiments/completions.py runs/mnist_8000_32masks runs/mnist_500_32masks_direct_adam \
        runs/mnist_500_infinite_masks_adam runs/mnist_500_1mask_natural_direct_adam \
        --out results/mnist_8000_32masks/completions_top.png
    # the same runs, a fixed random half of the pixels observed:
    #   --observe results/mnist_8000_32masks/observed_random_half.npy \
    #   --out results/mnist_8000_32masks/completions_random_half.png

For every run, over the whole test set: log p(x_U | x_O), the unobserved values given the
observed ones, under an ordering that puts the observed values first (ancestral.log_prob_unobserved;
the same ordering and connectivity seed for every run), and under an ensemble of --orderings such
orderings. An order-agnostic model never trained on such orderings (no mask of a training cycle
puts a whole image half first), so for it this measures how well it generalises over orderings,
which is what completion asks of it; a model of one ordering that puts the observed values first
(--ordering natural, observing the top half) is scored under its own ordering
(ancestral.use_observed_first). Each mean ± standard error, and the paired difference to the first
run, example by example (as in paired.py: a digit that is hard to complete is hard for every
model, so the difference is known far better than either mean), go to OUT.json. Beside them, what
the whole digits cost, −log p(x) over the test set, under each of --orderings masks the model
trained on and under as many random orderings it never trained on: the gap between the two is how
much of what the model learned is tied to its training orderings; and under the observed-first
orderings themselves (log p(x_O) + log p(x_U | x_O), one at a time).
The picture OUT: one test digit per row, the original, its observed part (the rest gray), then
--completions completions from each run in turn, in the order given.
"""
import argparse
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import backend  # noqa: E402
import cli  # noqa: E402
import data  # noqa: E402
import files  # noqa: E402
import runs  # noqa: E402
from ancestral import complete  # noqa: E402
from autograd import log_mean_exp  # noqa: E402
from ancestral import completes_in_own_ordering, log_prob_observed, log_prob_unobserved, trained_on_one_ordering  # noqa: E402
from made import sample_ordering  # noqa: E402
from sample import image_side, save_grid  # noqa: E402


def completion_nll(model, x, observed, seeds):
    """−log p(x_U | x_O) of every example, float64 (N,), under the ensemble of the observed-first
    orderings drawn from `seeds`: −log (1/K) Σ_k p_k(x_U | x_O). Each p_k is a distribution over
    x_U, so their average is one too (the paper's ensembles, section 4.3, for a conditional)."""
    x = backend.to_device(x, False, model.dtype)
    log_p = np.stack([backend.to_host(log_prob_unobserved(model, x, observed, seed=seed)).astype(np.float64)
                      for seed in seeds])
    return -log_mean_exp(log_p, axis=0)


def nll_per_ordering(model, x, observed, n_orderings, seed):
    """Mean −log p(x) over the rows of x, one ordering at a time, (K,) each (fewer where noted), under
    "trained": masks 0…K−1 of the model's training cycle (all of them when it has fewer than K; its
               first K masks when it drew a fresh one every minibatch);
    "new": K random orderings no training mask had (stream "new_orderings");
    "observed_first": the K observed-first orderings of the completions, log p(x_O) + log p(x_U | x_O)."""
    x = backend.to_device(x, False, model.dtype)

    def mean_nll(log_p):
        return -backend.to_host(log_p).astype(np.float64).mean()

    nll = {"trained": [], "new": [], "observed_first": []}
    distinct = model.n_distinct_masks  # (None: a fresh mask every minibatch, no end to them)
    with model.keeping_mask():
        for k in range(n_orderings if distinct is None else min(n_orderings, distinct)):
            model.use_mask(k)
            nll["trained"].append(mean_nll(model.log_prob(x)))
        for k in range(n_orderings):
            new_ordering = sample_ordering(model.n_in, backend.random_generator(seed, "new_orderings", k))
            model.use_ordering(new_ordering, seed=k)
            nll["new"].append(mean_nll(model.log_prob(x)))
            nll["observed_first"].append(mean_nll(log_prob_observed(model, x, observed, seed=seed + k) +
                                                  log_prob_unobserved(model, x, observed, seed=seed + k)))
    return {name: np.array(values) for name, values in nll.items()}


def build_parser():
    parser = argparse.ArgumentParser(description="Completions from an observed part (the top half unless --observe "
                                                 "says otherwise): runs side by side, with log p(x_U | x_O).")
    parser.add_argument("run_dirs", nargs="+", help="run folders of models on the same data set: order-agnostic "
                        "ones, or of one ordering that puts the observed values first")
    parser.add_argument("--out", type=cli.path, required=True, help="the PNG to write; the numbers go beside it as .json")
    parser.add_argument("--observe", default="top", help="what is observed (as in sample.py; default: %(default)s)")
    parser.add_argument("--examples", type=cli.positive_int, default=10, help="test digits in the picture (default: %(default)s)")
    parser.add_argument("--completions", type=cli.positive_int, default=4, help="completions per digit and run (default: %(default)s)")
    parser.add_argument("--orderings", type=cli.ensemble_size, default=8,
                        help="observed-first orderings in the ensemble, seeds SEED … SEED+K−1, and as many masks "
                             "trained on and orderings never trained on for the whole digits (default: %(default)s)")
    parser.add_argument("--seed", type=cli.non_negative_int, default=0, help="seed of the orderings, digits and samples (default: 0)")
    return parser


def training_progress(run_dir):
    """{"finished", "epochs_run", "best_epoch"} of a run: from its metrics.json once finished, else
    from its checkpoint (whose best epoch is that of the model.npz written with it)."""
    metrics_path = os.path.join(run_dir, "metrics.json")
    if os.path.exists(metrics_path):
        with open(metrics_path) as file:
            metrics = json.load(file)
        return {"finished": True, "epochs_run": metrics.get("epochs_run"), "best_epoch": metrics.get("best_epoch")}
    checkpoint = os.path.join(run_dir, "checkpoint.npz")
    saved = files.read_json_array(files.read_npz(checkpoint, ["train_state"])["train_state"], checkpoint)
    status = saved.get("status", {}) if isinstance(saved, dict) else {}
    return {"finished": False, "epochs_run": status.get("epoch"), "best_epoch": status.get("best_epoch")}


def ensemble_label(model, observed, n_orderings):
    """What the --orderings ensemble is for this model, in words: observed-first orderings, or,
    for a model whose one ordering already puts the observed first, masks of that ordering."""
    if not (trained_on_one_ordering(model) and completes_in_own_ordering(model, observed)):
        return f"{n_orderings} orderings"
    if model.n_distinct_masks == 1:
        return "its own ordering and mask"
    return f"{min(n_orderings, model.n_distinct_masks)} masks of its own ordering"


def plural(count, noun):
    return f"{count} {noun}" + ("" if count == 1 else "s")


def score_run(run_dir, model, test, observed, args, first):
    """The run's entry of OUT.json, printed as it goes: its completion scores (one ordering, and the
    ensemble of --orderings), each paired with the first run's (`first`, None for the first run
    itself), and its whole-digit NLL under orderings trained on and not. Returns (entry, scores)."""
    ensemble = ensemble_label(model, observed, args.orderings)
    entry = {"run": run_dir, "hidden_sizes": list(model.config.hidden_sizes), "masks": model.n_masks,
             "ensemble": ensemble, **training_progress(run_dir)}
    print(f"{run_dir}: the model of epoch {entry['best_epoch']} of {entry['epochs_run']}"
          f"{'' if entry['finished'] else ' (an unfinished run)'}")
    scores = {"one_ordering": completion_nll(model, test, observed, [args.seed]),
              f"{args.orderings}_orderings": completion_nll(model, test, observed,
                                                            range(args.seed, args.seed + args.orderings))}
    for name, nll in scores.items():
        difference = nll - (scores if first is None else first)[name]
        score = entry[name] = {"completion_nll": nll.mean(), "stderr": runs.standard_error(nll),
                               "minus_first_run": difference.mean(),
                               "minus_first_run_stderr": runs.standard_error(difference)}
        label = "one ordering" if name == "one_ordering" else ensemble
        print(f"{run_dir}, {label}: −log p(x_U | x_O) = {score['completion_nll']:.2f} ± "
              f"{score['stderr']:.2f} nats" + ("" if first is None else
              f"; {score['minus_first_run']:+.2f} ± {score['minus_first_run_stderr']:.2f} against the first run"))
    per_ordering = nll_per_ordering(model, test, observed, args.orderings, args.seed)
    for name, nll in per_ordering.items():
        entry[f"whole_digit_nll_{name}_orderings"] = {"mean": float(nll.mean()), "per_ordering": nll.tolist()}
    print(f"{run_dir}: −log p(x), mean over orderings: {per_ordering['trained'].mean():.2f} under "
          f"{plural(len(per_ordering['trained']), 'mask')} it trained on, {per_ordering['new'].mean():.2f} under "
          f"{args.orderings} random orderings it never trained on "
          f"(range {per_ordering['new'].min():.2f}–{per_ordering['new'].max():.2f}), "
          f"{per_ordering['observed_first'].mean():.2f} under {ensemble} with the observed first")
    return entry, scores


def compare(args):
    json_path = os.path.splitext(args.out)[0] + ".json"
    runs.check_outputs({"--out": args.out, "--out (its numbers)": json_path},
                       runs.run_inputs(args.run_dirs))  # before the minutes of work
    loaded = [runs.load_run(run_dir, False) for run_dir in args.run_dirs]
    test = loaded[0][1]["test"]
    if any(splits["test"].shape != test.shape or not np.array_equal(splits["test"], test) for _, splits, _ in loaded):
        raise data.DataError("the runs were trained on different data sets")
    observed = data.observed_mask(args.observe, test.shape, backend.random_generator(args.seed, "observed"))
    rows = np.sort(backend.random_generator(args.seed, "examples").permutation(len(test))[: args.examples])

    results, tiles = [], [test[rows][:, None], np.where(observed[rows], test[rows], 0.5)[:, None]]
    first = None  # the first run's scores, which the others are compared with
    for run_dir, (model, _, _) in zip(args.run_dirs, loaded):
        entry, scores = score_run(run_dir, model, test, observed, args, first)
        if first is None:
            first = scores
        results.append(entry)
        tiles.append(complete(model, test[rows], observed[rows], n=args.completions, seed=args.seed))

    save_grid(args.out, np.concatenate(tiles, axis=1), image_side(test.shape[1]))
    summary = {"observe": args.observe, "test_examples": len(test), "orderings": args.orderings,
               "observed_values_per_example": float(observed.sum(1).mean()), "seed": args.seed,
               "picture": "each row: original, observed part (rest gray), then "
                          f"{args.completions} completions from each run in the order of runs",
               "runs": results}
    files.write_json(json_path, summary)
    print(f"wrote {args.out} and {json_path}")


def main(argv=None):
    cli.prepare_streams()
    args = build_parser().parse_args(argv)
    return cli.run_command("completions.py", False, lambda: compare(args), user_errors=(runs.RunError,))


if __name__ == "__main__":
    sys.exit(main())
