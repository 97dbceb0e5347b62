"""A small hyperparameter search for one row, chosen on the validation NLL only (as the paper did).

    python experiments/search.py dna_1mask        # every configuration of the row's grid
    python experiments/search.py --list           # the rows and their grids

Each configuration is a full train.py run (early stopping and all) in runs/search/ROW/NAME. The
summary (every configuration's validation NLL, and its test NLL for the record; the choice never
looks at it) goes to results/search/ROW.json and the screen. The chosen configuration is then what
the row's script in experiments/ runs.
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

import backend  # noqa: E402
import train  # noqa: E402

COMMON = ["--hidden", "500", "--init", "orthogonal"]
OPTIMIZERS = {
    "adadelta": ["--optimizer", "adadelta", "--rho", "0.95", "--eps", "1e-5"],  # the authors' DNA recipe
    "adagrad": ["--optimizer", "adagrad", "--lr", "0.01"],
    "adam3": ["--optimizer", "adam", "--lr", "1e-3"],
    "adam4": ["--optimizer", "adam", "--lr", "1e-4"],
}
ONE_MASK = {"optimizer": list(OPTIMIZERS), "hidden": ["500", "100"], "direct": [True, False]}
MASK_SAMPLING = {"optimizer": ["adadelta", "adagrad", "adam3"], "masks": ["0", "32"], "direct": [True]}
ROWS = {f"{data}_{kind}": (data, ONE_MASK if kind == "1mask" else MASK_SAMPLING)
        for data in ("dna", "mushrooms", "nips") for kind in ("1mask", "masks")}


def flags_of(data, choice):
    """train.py flags for one point of a grid."""
    flags = ["--dataset", data] + COMMON + OPTIMIZERS[choice["optimizer"]]
    flags[flags.index("--hidden") + 1] = choice.get("hidden", "500")
    if choice.get("direct"):
        flags.append("--direct")
    masks = choice.get("masks", "1")
    flags += ["--masks", masks]
    if masks == "0":
        flags += ["--valid-masks", "32", "--test-masks", "1000"]
    return flags


def search(row):
    data, grid = ROWS[row]
    keys = sorted(grid)
    results = []
    for values in itertools.product(*(grid[key] for key in keys)):
        choice = dict(zip(keys, values))
        name = "-".join(f"{key}={value}" for key, value in choice.items())
        out = os.path.join(ROOT, "runs", "search", row, name)
        with contextlib.redirect_stdout(io.StringIO()):
            code = train.main(flags_of(data, choice) + ["--out", out, "--force"])
        if code != 0:
            results.append({"name": name, "flags": flags_of(data, choice), "error": code})
            continue
        with open(os.path.join(out, "metrics.json")) as file:
            metrics = json.load(file)
        results.append({"name": name, "flags": flags_of(data, choice), "valid_nll": metrics["valid_nll"],
                        "test_nll": metrics["test_nll"], "best_epoch": metrics["best_epoch"]})
        print(f"{row}: {name:45s} valid {metrics['valid_nll']:9.4f}   (test {metrics['test_nll']:.4f}, "
              f"best epoch {metrics['best_epoch']})", flush=True)
    best = min((r for r in results if "valid_nll" in r), key=lambda r: r["valid_nll"])
    print(f"{row}: chosen on validation: {best['name']}")
    os.makedirs(os.path.join(ROOT, "results", "search"), exist_ok=True)
    with backend.atomic_write(os.path.join(ROOT, "results", "search", row + ".json"), "w") as file:
        json.dump({"row": row, "chosen": best["name"], "chosen_by": "lowest validation NLL",
                   "configurations": results}, file, indent=2)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Search a row's hyperparameters on the validation set.")
    parser.add_argument("rows", nargs="*", help="rows to search: " + ", ".join(ROWS))
    parser.add_argument("--list", action="store_true", help="show the rows and their grids")
    args = parser.parse_args(argv)
    if args.list or not args.rows:
        for row, (data, grid) in ROWS.items():
            print(f"{row}: {grid}")
        return 0
    for row in args.rows:
        if row not in ROWS:
            parser.error(f"unknown row {row!r}")
        search(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
