"""The optimizers' step alone: each rule as written (optim.py) against its fast form (fast_updates.py),
and, given an earlier checkout, against that checkout's rules, in alternating subprocesses.

    python benchmarks/optimizer_step.py                      # this checkout: equations and fast forms
    git worktree add /tmp/before ce04c39
    python benchmarks/optimizer_step.py --before /tmp/before --rounds 3

A step of 784-500-784 (one mask, and a cycle of 32), on the gradients of one minibatch of random
0/1 data; milliseconds per step, the fewest of 200 steps timed three times. One BLAS thread.
"""
import argparse
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MEASURE = r'''
import sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import optim
from made import MADE
rule, masks, form = sys.argv[2], int(sys.argv[3]), sys.argv[4]
model = MADE(784, [500], n_masks=masks, seed=0)
weights = (model.layout_params if hasattr(type(model), "layout_params")  # (the versions of 2026-12-06)
           else model.params if isinstance(model.params, dict) else model)  # (earlier ones; today the model)
options = {} if form == "before" else {"fast": form == "fast"}
optimizer = optim.make_optimizer(rule, weights, **options)
x = (np.random.default_rng(0).random((100, 784)) < 0.3).astype(np.float32)
loss, grads = model.loss_and_grads(x)
optimizer.step(grads)
times = []
for _ in range(3):
    started = time.perf_counter()
    for _ in range(200):
        optimizer.step(grads)
    times.append((time.perf_counter() - started) / 200 * 1000)
print(min(times))
'''


def measure(tree, rule, masks, form):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", MEASURE, tree, rule, str(masks), form], capture_output=True,
                            text=True, env=env, check=True)
    return float(result.stdout)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Time the optimizers' step: equations, fast forms, an earlier checkout.")
    parser.add_argument("--before", default=None, help="a checkout of earlier code (git worktree add DIR COMMIT)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every case (default: %(default)s)")
    args = parser.parse_args(argv)
    sides = [("fast", ROOT, "fast"), ("equations", ROOT, "plain")] + ([("before", args.before, "before")]
                                                                      if args.before else [])
    for masks in (1, 32):
        for rule in ("sgd", "adagrad", "adadelta", "adam"):
            found = {name: [] for name, _, _ in sides}
            for _ in range(args.rounds):
                for name, tree, form in sides:
                    found[name].append(measure(tree, rule, masks, form))
            medians = {name: statistics.median(values) for name, values in found.items()}
            print(f"{rule:9s} {masks:2d} mask(s): " + "  ".join(f"{name} {value:.3f}" for name, value in medians.items())
                  + " ms/step (medians of " + ", ".join(f"{name} {' '.join(f'{v:.3f}' for v in values)}"
                                                        for name, values in found.items()) + ")", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
