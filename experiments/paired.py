"""Paired comparison of trained runs on the same test examples.

    python experiments/paired.py runs/A runs/B [runs/C ...]    # NLL(A) − NLL(B), NLL(A) − NLL(C), …

Each run is scored with the ensemble it was tested with. The difference is taken example by
example, so its standard error is far smaller than either run's own (a digit that is hard for one
model is hard for the other): this is how RESULTS.md tells two models 0.1 nat apart.
"""
import argparse
import math
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import backend  # noqa: E402
from runs import load_run  # noqa: E402


def test_nll(run_dir):
    """Per-example test NLL (float64, shape (N,)) under the run's test ensemble, and its size."""
    model, splits, config = load_run(run_dir, False, None, None)
    masks = config.get("test_masks", 1)
    x = backend.to_device(splits["test"], False, model.dtype)
    return -backend.to_host(model.log_prob(x, n_masks=masks)).astype(np.float64), masks


def main(argv=None):
    parser = argparse.ArgumentParser(description="Paired test-NLL differences between trained runs.")
    parser.add_argument("first", help="run folder A")
    parser.add_argument("others", nargs="+", help="run folders to compare A with")
    args = parser.parse_args(argv)
    first, first_masks = test_nll(args.first)
    print(f"{args.first}: {first.mean():.4f} nats ({first_masks}-mask ensemble)")
    for other_dir in args.others:
        other, other_masks = test_nll(other_dir)
        if other.shape != first.shape:
            sys.exit(f"paired.py: {other_dir} was tested on {len(other)} examples, {args.first} on {len(first)}")
        difference = first - other
        stderr = difference.std(ddof=1) / math.sqrt(len(difference))
        print(f"  minus {other_dir} ({other.mean():.4f}, {other_masks}-mask ensemble): "
              f"{difference.mean():+.4f} ± {stderr:.4f} nats (paired over {len(difference)} test examples)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
