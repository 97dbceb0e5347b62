"""Print the results tables from results/ROW/metrics.json, so no figure is copied by hand.

    python experiments/table.py             # RESULTS.md's table: every row, its script, epochs, time, machine
    python experiments/table.py --compact   # README.md's: the paper against this project, one line a row
    python experiments/table.py --best      # RESULTS.md's "beyond the paper": each UCI column's best here
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cli  # noqa: E402  (its reader_gone: `table.py | head` ends quietly)

# row → (data set and setting, the paper's figure, whether the row needs a GPU)
ROWS = {
    "mnist_500_1mask": ("binarized MNIST, 784-500-784, 1 mask", "≈ 94.5", False),
    "mnist_500_32masks": ("binarized MNIST, 784-500-784, 32 masks", "below the 1-mask row", False),
    "mnist_500_1mask_adam": ("binarized MNIST, 784-500-784, 1 mask, Adam", "≈ 94.5", False),
    "mnist_500_32masks_adam": ("binarized MNIST, 784-500-784, 32 masks, Adam", "below the 1-mask row", False),
    "mnist_500_1mask_direct_adam": ("binarized MNIST, 784-500-784, 1 mask, direct connection, orthogonal init, Adam", "≈ 94.5", False),
    "mnist_500_32masks_direct_adam": ("binarized MNIST, 784-500-784, 32 masks, direct connection, orthogonal init, Adam", "below the 1-mask row", False),
    "mnist_500_32masks_connectivity_adam": ("binarized MNIST, 784-500-784, 32 connectivities of one ordering, Adam", "below the 1-mask row", False),
    "mnist_500_32masks_connectivity_direct_adam": ("binarized MNIST, 784-500-784, 32 connectivities of one ordering, direct connection, orthogonal init, Adam", "below the 1-mask row", False),
    "mnist_500_infinite_masks_adam": ("binarized MNIST, 784-500-784, a fresh mask every minibatch, Adam", "(not in the paper)", False),
    "mnist_500_1mask_natural_direct_adam": ("binarized MNIST, 784-500-784, 1 mask in the raster ordering, direct connection, orthogonal init, Adam", "(not in the paper)", False),
    "mnist_8000_1mask": ("binarized MNIST, 1 hidden layer of 8000, 1 mask", "88.40", False),
    "mnist_8000_32masks": ("binarized MNIST, 1 hidden layer of 8000, 32 masks", "88.04", False),
    "mnist_8000_32masks_adam": ("binarized MNIST, 1 hidden layer of 8000, 32 masks, Adam", "88.04", False),
    "mnist_8000x2_1mask": ("binarized MNIST, 2 hidden layers of 8000, 1 mask", "89.59", False),
    "mnist_8000x2_32masks": ("binarized MNIST, 2 hidden layers of 8000, 32 masks", "86.64", True),
    "dna_1mask": ("DNA, 1 mask", "83.63", False),
    "dna_masks": ("DNA, mask sampling", "79.66", False),
    "mushrooms_1mask": ("Mushrooms, 1 mask", "9.68", False),
    "mushrooms_masks": ("Mushrooms, mask sampling", "9.69", False),
    "nips_1mask": ("NIPS-0-12, 1 mask", "280.25", False),
    "nips_masks": ("NIPS-0-12, mask sampling", "277.28", False),
    "adult_1mask": ("Adult, 1 mask", "13.12", False),
    "adult_masks": ("Adult, mask sampling", "13.13", False),
    "connect4_1mask": ("Connect4, 1 mask", "11.90", False),
    "connect4_masks": ("Connect4, mask sampling", "11.90", False),
    "connect4_masks_connectivity_natural": ("Connect4, 32 connectivities of the data's ordering", "11.90", False),
    "ocr_letters_1mask": ("OCR-letters, 1 mask", "28.34", False),
    "ocr_letters_masks": ("OCR-letters, mask sampling", "30.04", False),
}


def describe(machine):
    """The CPU's cores, or the GPU's name (runs.machine_info), and TF32 where CuPy was told to use it."""
    if machine.get("device", "cpu") == "cpu":
        return f"CPU, {machine.get('cpu_count', '?')} cores"
    return machine["device"] + (", TF32" if machine.get("cupy_tf32", "0") not in ("", "0") else "")


def figure_to_meet(paper):
    """The paper's figure as a number; "below the 1-mask row" means below its ≈ 94.5; None if none."""
    if paper == "below the 1-mask row":
        return 94.5
    return None if paper.startswith("(") else float(paper.lstrip("≈ "))


def plus_minus(nll, stderr):
    """The figure ± its standard error, the error to two decimals, or three when smaller than 0.01."""
    return f"{nll:.2f} ± {stderr:.2f}" if stderr >= 0.01 else f"{nll:.2f} ± {stderr:.3f}"


def verdict(nll, stderr, target):
    """Met when the paper's figure is inside this run's 95 % interval (± 1.96 s.e.) or above it."""
    if target is None:
        return "—"
    if nll <= target:
        return "yes, better"
    if nll - target <= 1.96 * stderr:
        return f"yes, within 1.96 s.e. (+{nll - target:.2f})"
    return f"**no**, +{nll - target:.2f} ({(nll - target) / stderr:.1f} s.e.)"


class DamagedRecord(ValueError):
    """A record in results/ that is not what this script reads; the message names it."""


ROW_KEYS = ("test_nll", "test_nll_stderr", "config", "epochs_run", "best_epoch", "train_seconds", "machine")
BEST_KEYS = ("gap", "test_nll", "test_nll_stderr", "paper_best", "paper_best_model", "members", "train_seconds",
             "valid_nll", "test_reads")


def read_record(path, keys):
    """A metrics.json of results/ as a dict holding `keys`; DamagedRecord naming it otherwise."""
    try:
        with open(path, encoding="utf-8") as file:
            record = json.load(file)
        missing = [key for key in keys if key not in record]
    except (OSError, ValueError, TypeError) as error:
        raise DamagedRecord(f"{path}: not a readable record ({type(error).__name__}: {error}); restore it with "
                            f"git checkout") from None
    if missing:
        raise DamagedRecord(f"{path}: lacks {', '.join(missing)}; restore it with git checkout")
    return record


def rows():
    """(row, what, paper, metrics or None, status when unfinished) for every row, in the tables' order."""
    for row, (what, paper, needs_gpu) in ROWS.items():
        path = os.path.join(ROOT, "results", row, "metrics.json")
        if os.path.exists(path):
            yield row, what, paper, read_record(path, ROW_KEYS), None
            continue
        status = "not yet run (needs a GPU)" if needs_gpu else "not yet run"
        log = os.path.join(ROOT, "results", row, "train.log")
        if os.path.exists(log):  # started, then stopped before its end
            with open(log) as file:
                epochs = [line.split()[1] for line in file if line.startswith("epoch ")]
            status = f"unfinished: stopped after epoch {epochs[-1] if epochs else 0} (see its train.log)"
        yield row, what, paper, None, status


# Rows that run a row of the paper in another way than its own (beside the MNIST ones above).
VARIANTS = {"connect4_masks": ["connect4_masks_connectivity_natural"]}
# The README's compact table: one line per row of the paper, showing the run of this project that
# comes closest to it (the lowest test NLL among the rows that reproduce it, variants included).
PAPER_ROWS = [
    ("binarized MNIST, 784-500-784, 1 mask", ["mnist_500_1mask", "mnist_500_1mask_adam", "mnist_500_1mask_direct_adam"]),
    ("binarized MNIST, 784-500-784, 32 masks", ["mnist_500_32masks", "mnist_500_32masks_adam",
                                                "mnist_500_32masks_direct_adam", "mnist_500_32masks_connectivity_adam",
                                                "mnist_500_32masks_connectivity_direct_adam"]),
    ("binarized MNIST, 1 hidden layer of 8000, 1 mask", ["mnist_8000_1mask"]),
    ("binarized MNIST, 1 hidden layer of 8000, 32 masks", ["mnist_8000_32masks", "mnist_8000_32masks_adam"]),
    ("binarized MNIST, 2 hidden layers of 8000, 1 mask", ["mnist_8000x2_1mask"]),
    ("binarized MNIST, 2 hidden layers of 8000, 32 masks", ["mnist_8000x2_32masks"]),
] + [(ROWS[row][0], [row] + VARIANTS.get(row, [])) for row in ROWS
      if not row.startswith("mnist") and not any(row in variants for variants in VARIANTS.values())]


def print_compact(found):
    """One line per row of the paper (PAPER_ROWS): its closest run here, and the variant it is."""
    print("| data, setting | paper | this project: test NLL ± s.e. (the closest run, if a variant) | met? |")
    print("| --- | --- | --- | --- |")
    for label, members in PAPER_ROWS:
        finished = [(row, found[row]) for row in members if found[row][2] is not None]
        paper = found[members[0]][1]
        if not finished:
            print(f"| {label} | {paper} | {found[members[0]][3]} | |")
            continue
        _, (what, _, metrics, _) = min(finished, key=lambda item: item[1][2]["test_nll"])
        shared = os.path.commonprefix([label, what])
        shared = shared if shared == label else shared[:shared.rfind(", ") + 2]  # whole phrases only
        variant = what[len(shared):].lstrip(", ")
        masks = metrics["config"].get("test_masks", 1)
        variant = ", ".join(filter(None, [variant, f"{masks}-mask ensemble" if masks > 1 else ""]))
        nll, stderr = metrics["test_nll"], metrics["test_nll_stderr"]
        print(f"| {label} | {paper} | **{plus_minus(nll, stderr)}**{f' ({variant})' if variant else ''} | "
              f"{verdict(nll, stderr, figure_to_meet(paper))} |")


# The UCI columns of the paper's Table 2 that have data here, in its order, and their names there.
BEST_COLUMNS = {"adult": "Adult", "connect4": "Connect4", "dna": "DNA", "mushrooms": "Mushrooms",
                "nips": "NIPS-0-12", "ocr_letters": "OCR-letters"}
# The best figure of any model in the paper's Table 2, per column (test NLL, nats), and whose it is.
PAPER_BEST = {"adult": (13.12, "MADE, 1 mask"), "connect4": (11.90, "MADE"), "dna": (79.66, "MADE, mask sampling"),
              "mushrooms": (9.55, "DARN"), "nips": (272.39, "EoNADE"), "ocr_letters": (27.22, "NADE")}


def print_best():
    """Each column's entry in results/best_SET/metrics.json (experiments/best.py) against the best
    figure of any model in the paper's table."""
    print("| column | best in the paper | this project: test NLL ± s.e. | gap | mixture of | training, all members "
          "| validation NLL | test reads |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, column in BEST_COLUMNS.items():
        path = os.path.join(ROOT, "results", f"best_{name}", "metrics.json")
        figure, model = PAPER_BEST[name]
        if not os.path.exists(path):
            print(f"| {column} | {figure:.2f} ({model}) | not yet built (`python experiments/best.py {name}`) | | | | | |")
            continue
        best = read_record(path, BEST_KEYS)
        gap = best["gap"]
        digits = 2 if abs(gap) >= 0.01 else 3
        if gap < 0:
            standing = f"**{gap:+.{digits}f}**, better"
        else:  # not below it: level when within the 95 % interval, else short
            level = "level (within 1.96 s.e.), not below" if gap <= 1.96 * best["test_nll_stderr"] else "short"
            standing = f"+{gap:.{digits}f} ({gap / best['test_nll_stderr']:.1f} s.e.), {level}"
        print(f"| {column} | {best['paper_best']:.2f} ({best['paper_best_model']}) | "
              f"**{plus_minus(best['test_nll'], best['test_nll_stderr'])}** | {standing} | {len(best['members'])} run{'s' if len(best['members']) > 1 else ''} "
              f"| {best['train_seconds'] / 60:.0f} min | {best['valid_nll']:.2f} | {len(best['test_reads'])} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Print the results table from results/ROW/metrics.json.")
    parser.add_argument("--compact", action="store_true", help="the README's table: paper, this project, met?")
    parser.add_argument("--best", action="store_true", help="RESULTS.md's table of each UCI column's best here")
    parsed = parser.parse_args(argv)
    try:
        print_tables(parsed)
    except DamagedRecord as error:
        print(f"table.py: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader has gone (`table.py | head`): it has what it wanted
        cli.reader_gone(sys.stdout)
    return 0


def print_tables(parsed):
    if parsed.best:
        print_best()
        return
    if parsed.compact:
        print_compact({row: (what, paper, metrics, status) for row, what, paper, metrics, status in rows()})
        return
    print("| data, setting | paper | this project: test NLL ± s.e. | met? | best / run epochs | wall time | machine | script |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row, what, paper, metrics, status in rows():
        script = f"`experiments/{row}.sh`"
        if metrics is None:
            print(f"| {what} | {paper} | {status} | | | | | {script} |")
            continue
        masks = metrics["config"].get("test_masks", 1)
        what += f" ({masks}-mask ensemble)" if masks > 1 else ""
        nll, stderr = metrics["test_nll"], metrics["test_nll_stderr"]
        result = f"| {what} | {paper} | **{plus_minus(nll, stderr)}** | {verdict(nll, stderr, figure_to_meet(paper))} |"
        # The look-ahead ends a run --patience epochs after its best; anything sooner was the --epochs cap.
        capped = metrics["epochs_run"] - metrics["best_epoch"] < metrics["config"].get("patience", 30)
        epochs = f"{metrics['best_epoch']} / {metrics['epochs_run']}" + (" (cap)" if capped else "")
        print(f"{result} {epochs} | {metrics['train_seconds'] / 60:.0f} min | {describe(metrics['machine'])} | {script} |")


if __name__ == "__main__":
    sys.exit(main())
