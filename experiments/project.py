"""Where an unfinished run is heading: a power law fitted to its validation curve, for planning.

    python experiments/project.py runs/mnist_8000_32masks/train.log --from 50 --at 300 600 1000

A long run's validation NLL falls ever more slowly; over the epochs from --from on it is fitted by
    valid(t) ≈ a + b t^(−c)
(c by a grid search, a and b by least squares for each c), and the fit is read off at the --at
epochs. This is a projection, not a result: it says whether a run is worth its remaining hours,
never what the run will reach. The last lines give the curve's recent slope, per epoch.
"""
import argparse
import os
import re
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cli  # noqa: E402

EPOCH_LINE = re.compile(r"epoch\s+(\d+)\s+train\s+\S+\s+valid\s+([-+\d.eE]+)")


def validation_curve(log_path):
    """(epochs, valid NLLs) from a train.log; an epoch logged twice (trained again after a resume
    from an earlier checkpoint) keeps its last line."""
    curve = {}
    with open(log_path, encoding="utf-8") as file:
        for line in file:
            match = EPOCH_LINE.match(line)
            if match:
                curve[int(match[1])] = float(match[2])
    epochs = sorted(curve)
    return np.array(epochs, dtype=np.float64), np.array([curve[epoch] for epoch in epochs])


def fit_power_law(epochs, valid):
    """(a, b, c, rms) of valid ≈ a + b epochs^(−c): the c in (0, 3] whose least-squares a, b fit best."""
    best = None
    for c in np.linspace(0.01, 3, 300):
        design = np.stack([np.ones_like(epochs), epochs ** -c], axis=1)
        (a, b), *_ = np.linalg.lstsq(design, valid, rcond=None)
        rms = float(np.sqrt(np.mean((design @ (a, b) - valid) ** 2)))
        if best is None or rms < best[3]:
            best = (float(a), float(b), float(c), rms)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description="Project a run's validation NLL with a power-law fit.")
    parser.add_argument("log", help="the run's train.log")
    parser.add_argument("--from", dest="first", type=cli.positive_int, default=40,
                        help="fit the epochs from this one on (default: %(default)s)")
    parser.add_argument("--at", type=cli.positive_int, nargs="+", default=[300, 1000],
                        help="epochs to read the fit at (default: 300 1000)")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.log):
        parser.error(f"{args.log} is not a file")
    epochs, valid = validation_curve(args.log)
    chosen = epochs >= args.first
    if chosen.sum() < 10:
        parser.error(f"{args.log} has {int(chosen.sum())} epochs from {args.first} on; a fit needs 10")
    a, b, c, rms = fit_power_law(epochs[chosen], valid[chosen])
    print(f"epochs {int(epochs[chosen][0])}-{int(epochs[-1])}: valid ≈ {a:.2f} + {b:.2f} t^-{c:.2f} "
          f"(rms {rms:.3f}); last epoch {int(epochs[-1])}: {valid[-1]:.4f}")
    for epoch in args.at:
        print(f"  projected valid NLL at epoch {epoch}: {a + b * epoch ** -c:.2f}")
    for window in (20, 50):
        if len(epochs) >= window:
            slope = np.polyfit(epochs[-window:], valid[-window:], 1)[0]
            print(f"  slope over the last {window} epochs: {slope:+.4f} per epoch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
