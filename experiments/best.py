"""Each UCI column's best: a mixture of trained runs, its members chosen on the validation split only.

    python experiments/best.py adult        # choose on validation, then test once: results/best_adult/
    python experiments/best.py --list       # the sets, and the paper's best figure in each column

The candidates are the finished runs of the set's searches (experiments/search.py: the paper's
rows' grids, and the SET_best rounds of further seeds), found in runs/search/ROW/NAME with their
commands in results/search/ROW.json. Each is scored on the validation split as its run would be
tested (its own test ensemble). Greedy forward selection (Caruana et al. 2004): start from the
candidate with the lowest validation NLL, then add, one at a time, the one whose joining lowers the
mixture's validation NLL most, until none lowers it. The mixture, log p(x) = log (1/R) Σ_r p_r(x),
is exact and normalised (made.mixture_log_prob, what evaluate.py RUN … reports). Only then is the
test split read, once, for the chosen mixture. results/best_SET/metrics.json holds its test NLL ±
standard error, its validation NLL, every member's command, the training time of all members
together, every candidate's validation NLL, and every reading of the test split this column has
had (test_reads: one per build).
"""
import argparse
import glob
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "experiments"))

import cli  # noqa: E402
import files  # noqa: E402
import runs  # noqa: E402
from table import PAPER_BEST  # noqa: E402


def candidates(data_set):
    """(run folder, its search row, its command's flags) of every finished run of the set's searches."""
    found = []
    for summary in sorted(glob.glob(os.path.join(ROOT, "results", "search", f"{data_set}_*.json"))):
        try:
            with open(summary) as file:
                row = json.load(file)
            entries = [(entry["name"], entry["flags"]) for entry in row["configurations"]]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise runs.RunError(f"{summary}: damaged ({type(error).__name__}: {error}); restore it or run "
                                f"experiments/search.py again") from None
        for name, flags in entries:
            folder = os.path.join(ROOT, "runs", "search", row["row"], name)
            if os.path.exists(os.path.join(folder, "metrics.json")):
                found.append((folder, row["row"], flags))
    return found


def scored(folder, split, splits):
    """−log p of every example of `split` under the run's own test ensemble (host float64)."""
    model, _, settings = runs.load_run(folder, False, need_data=False, program="best.py")
    masks = runs.tested_with(settings, model)
    return runs.nll_per_example(model, splits[split], masks, 1000), masks


def mixture_nll(members):
    """Per example −log (1/R) Σ_r p_r(x), from the members' per-example NLLs (R, N)."""
    members = np.asarray(members)
    peak = (-members).max(axis=0)
    return -(peak + np.log(np.exp(-members - peak).mean(axis=0)))


def choose(valid):
    """Greedy forward selection on validation: indices into `valid` (a list of per-example NLLs)."""
    chosen = [int(np.argmin([nll.mean() for nll in valid]))]
    best = valid[chosen[0]].mean()
    while True:
        trials = {i: mixture_nll([valid[j] for j in chosen + [i]]).mean() for i in range(len(valid)) if i not in chosen}
        if not trials:
            return chosen, best
        i, nll = min(trials.items(), key=lambda item: item[1])
        if nll >= best:
            return chosen, best
        chosen.append(i)
        best = nll


def published(path):
    """The column's record as it stands (None before the first build), checked before anything is
    scored: a build replaces it, keeping its test_reads, so a damaged one must be mended first."""
    if not os.path.exists(path):
        return None
    try:
        with open(path) as file:
            record = json.load(file)
        if not (isinstance(record["test_reads"], list) and isinstance(record["members"], list)
                and all(isinstance(member["run"], str) for member in record["members"])
                and isinstance(record["valid_nll"], (int, float))):
            raise TypeError("test_reads, members or valid_nll of the wrong kind")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise runs.RunError(f"{path}: damaged or of an older form ({type(error).__name__}: {error}); restore it "
                            f"(git checkout {os.path.relpath(path, ROOT)}) before building again") from None
    return record


def check_against_published(record, pool, valid_nll):
    """Refuse, before the test split is read, a build that would replace the published mixture with
    one it cannot compare to: a member of it whose run is not among the candidates here (runs/ is
    not in git), or a choice worse on validation than it."""
    if record is None:
        return
    here = {os.path.relpath(folder, ROOT) for folder, _, _ in pool}
    missing = [member["run"] for member in record["members"] if member["run"] not in here]
    if missing:
        raise runs.RunError(f"the published mixture's member {missing[0]} is not here ({len(missing)} of "
                            f"{len(record['members'])} missing): train them again (their commands are in the "
                            f"record) before building; the record is left as it is")
    if valid_nll > record["valid_nll"]:
        raise runs.RunError(f"this build's validation NLL {valid_nll:.4f} is above the published mixture's "
                            f"{record['valid_nll']:.4f}: the record is left as it is, and the test split unread")


def command_of(flags):
    return "python train.py " + " ".join(flags)


def build(data_set):
    """Choose, score and record the column's best (module docstring), with the column locked: two
    builds at once would each keep their own test reading and lose the other's."""
    lock = os.path.join(ROOT, "runs", "search", f"best_{data_set}.lock")
    with files.exclusive(lock, f"{data_set}: another best.py is building this column now ({lock}); wait for it"):
        build_locked(data_set)


def build_locked(data_set):
    out = os.path.join(ROOT, "results", f"best_{data_set}", "metrics.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    runs.check_outputs({"metrics.json": out}, own_run=True)  # (the folder is this script's own)
    record = published(out)
    pool = candidates(data_set)
    if not pool:
        raise runs.RunError(f"{data_set}: no finished runs in runs/search/{data_set}_*/: run experiments/search.py first")
    _, splits, _ = runs.load_run(pool[0][0], False, program="best.py")
    started = time.perf_counter()
    valid, masks = zip(*(scored(folder, "valid", splits) for folder, _, _ in pool))
    chosen, valid_nll = choose(list(valid))
    check_against_published(record, pool, valid_nll)
    print(f"{data_set}: {len(pool)} candidates scored on validation; chose {len(chosen)} "
          f"(mixture valid {valid_nll:.4f}, best alone {min(v.mean() for v in valid):.4f})")
    test = mixture_nll([scored(pool[i][0], "test", splits)[0] for i in chosen])  # the test split, read once
    members = []
    for i in chosen:
        folder, row, flags = pool[i]
        with open(os.path.join(folder, "metrics.json")) as file:
            own = json.load(file)
        members.append({"run": os.path.relpath(folder, ROOT), "search_row": row, "command": command_of(flags),
                        "valid_nll": float(valid[i].mean()), "test_masks": masks[i],
                        "train_seconds": own["train_seconds"], "its_own_test_nll": own["test_nll"]})
    figure, model = PAPER_BEST[data_set]
    stderr = runs.standard_error(test)
    reads = (record["test_reads"] if record else []) + [{"test_nll": float(test.mean()), "test_nll_stderr": stderr,
                                        "valid_nll": float(valid_nll), "runs": len(members),
                                        "candidates": len(pool), "date": time.strftime("%Y-%m-%d %H:%M")}]
    result = {
        "data_set": data_set, "test_nll": float(test.mean()), "test_nll_stderr": stderr, "valid_nll": float(valid_nll),
        "paper_best": figure, "paper_best_model": model, "gap": float(test.mean()) - figure,
        "beats_paper_best": bool(test.mean() < figure),
        "mixture": "log p(x) = log (1/R) Σ_r p_r(x), p_r: member r's own test ensemble",
        "selection": "greedy forward selection on the validation NLL (experiments/best.py), test read once",
        "members": members, "train_seconds": float(sum(m["train_seconds"] for m in members)),
        "evaluate_command": "python evaluate.py " + " ".join(m["run"] for m in members),
        "candidates": [{"run": os.path.relpath(folder, ROOT), "valid_nll": float(v.mean())}
                       for (folder, _, _), v in zip(pool, valid)],
        "machine": runs.machine_info(False), "scoring_seconds": time.perf_counter() - started,
        "test_reads": reads,
    }
    files.write_json(out, result)
    print(f"{data_set}: test {result['test_nll']:.4f} ± {stderr:.4f} with {len(members)} runs "
          f"(paper's best {figure}, {model}: {result['gap']:+.2f}); wrote {os.path.relpath(out, ROOT)}")


def main(argv=None):
    parser = argparse.ArgumentParser(description="A UCI column's best: a mixture of runs chosen on validation.")
    parser.add_argument("sets", nargs="*", help="data sets: " + ", ".join(PAPER_BEST))
    parser.add_argument("--list", action="store_true", help="the sets and the paper's best figure of each")
    args = parser.parse_args(argv)
    if args.list or not args.sets:
        for name, (figure, model) in PAPER_BEST.items():
            print(f"{name}: paper's best {figure} ({model}); {len(candidates(name))} finished candidates")
        return 0
    for name in args.sets:
        if name not in PAPER_BEST:
            parser.error(f"unknown set {name!r}")
    return cli.run_command("best.py", False, lambda: [build(name) for name in args.sets], user_errors=(runs.RunError,))


if __name__ == "__main__":
    sys.exit(main())
