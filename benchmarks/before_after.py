"""This checkout against an earlier one, in alternating subprocesses, on the same machine minutes.

    git worktree add /tmp/before 892a7a5          # the last commit before the staircase engine
    MADE_DATA_DIR=../shared/data python benchmarks/before_after.py /tmp/before --rounds 3

Each round runs, for the earlier code and then this one (a fresh process each, so neither inherits
the other's memory): the plain training loop a user writes (loss_and_grads, AdaGrad step,
next_mask) on 784-500-784 and 784-8000-784 with the direct connection, one mask and 32 masks
resampled every minibatch, and 784-8000-784 with one mask; train.py's own epoch (optim.train_epoch)
at 784-500-784 with one mask and 32, and 784-8000-784 with one; all as seconds per epoch (from a
few hundred or a few dozen minibatches);
evaluation of 10 000 examples at batch 1000 (one mask, and the 32-mask ensemble of a 32-mask
model); 100 fast samples; and the peak resident memory of 200 training steps and one evaluation
(784-500-784 with one mask, 784-8000-784 with 32).
Only this checkout's files are imported from here; the earlier one is imported by path.
"""
import argparse
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MEASURE = r'''
import os, resource, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
import data, made, optim
from ancestral import sample
what, hidden, direct, masks = sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", int(sys.argv[5])
x = data.load("binarized_mnist")["train"].astype(np.float32) if os.environ.get("MADE_DATA_DIR") else \
    (np.random.default_rng(0).random((50000, 784)) < 0.13).astype(np.float32)

def best(function, repeat=3):
    function()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)

model = made.MADE(784, [hidden], direct=direct, n_masks=masks, seed=0)
weights = (model.layout_params if hasattr(type(model), "layout_params")  # (the versions of 2026-12-06)
           else model.params if isinstance(model.params, dict) else model)  # (earlier ones; today the model)
if what == "train":
    optimizer = optim.AdaGrad(weights, lr=0.01)
    steps = 200 if hidden <= 1000 else 30
    def loop():
        for i in range(steps):
            loss, grads = model.loss_and_grads(x[i * 100:(i + 1) * 100])
            optimizer.step(grads)
            model.next_mask()
    print(best(loop, 1) * 500 / steps)
elif what == "epoch":  # optim.train_epoch, what train.py runs for an epoch (from `steps` minibatches)
    optimizer = optim.AdaGrad(weights, lr=0.01)
    steps = 200 if hidden <= 1000 else 30
    order = np.random.default_rng(0).permutation(steps * 100)
    print(best(lambda: optim.train_epoch(model, optimizer, x[:steps * 100], order, 100), 1) * 500 / steps)
elif what == "evaluate":
    print(10000 / best(lambda: model.log_prob(x[:10000], n_masks=None if masks == 1 else masks, batch_size=1000), 1))
elif what == "sample":
    print(best(lambda: sample(model, 100, seed=0)) * 1000)
elif what == "memory":
    optimizer = optim.AdaGrad(weights, lr=0.01)
    for i in range(200):
        loss, grads = model.loss_and_grads(x[i * 100:(i + 1) * 100])
        optimizer.step(grads)
    model.log_prob(x[:10000], batch_size=1000)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
'''

CASES = [("train", 500, 0, 1, "s/epoch"), ("train", 500, 0, 32, "s/epoch"),
         ("train", 8000, 1, 1, "s/epoch"), ("train", 8000, 1, 32, "s/epoch"), ("train", 8000, 0, 1, "s/epoch"),
         ("epoch", 500, 0, 1, "s/epoch"), ("epoch", 500, 0, 32, "s/epoch"), ("epoch", 8000, 0, 1, "s/epoch"),
         ("evaluate", 500, 0, 1, "examples/s"), ("evaluate", 500, 0, 32, "examples/s"),
         ("sample", 500, 0, 1, "ms per 100"), ("memory", 500, 0, 1, "MiB peak"), ("memory", 8000, 1, 32, "MiB peak")]


def main(argv=None):
    parser = argparse.ArgumentParser(description="Alternate an earlier checkout and this one on the same work.")
    parser.add_argument("before", help="a checkout of the earlier code (git worktree add DIR COMMIT)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every case (default: %(default)s)")
    parser.add_argument("--hidden", type=int, default=None, help="only the cases of this hidden size (500 or 8000)")
    args = parser.parse_args(argv)
    cases = [case for case in CASES if args.hidden in (None, case[1])]
    results = {}
    for _ in range(args.rounds):
        for case in cases:
            for label, path in (("before", args.before), ("after", ROOT)):
                command = [sys.executable, "-c", MEASURE, path] + [str(value) for value in case[:4]]
                output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
                results.setdefault(case, {}).setdefault(label, []).append(float(output))
    for (what, hidden, direct, masks, unit), values in results.items():
        ratios = [a / b for a, b in zip(values["after"], values["before"])]
        name = f"{what} 784-{hidden}-784{' +direct' if direct else ''}, {masks} mask(s)"
        print(f"{name:<42} before {statistics.median(values['before']):9.1f}  after "
              f"{statistics.median(values['after']):9.1f} {unit:<12} after/before: "
              f"{' '.join(f'{r:.2f}' for r in ratios)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
