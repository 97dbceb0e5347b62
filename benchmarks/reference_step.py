"""How much slower training through the reference is: a training step (loss_and_grads, then the
optimizer's step) of the reference engine with the rules as written, against the fast engine with
their fast forms, on the same minibatches.

    MADE_DATA_DIR=../shared/data python benchmarks/reference_step.py

784-500-784 and 784-8000-784, AdaGrad, one mask and a cycle of 32; milliseconds a step, the fewest
of three timings of 100 steps (20 at 8000 units). MNIST when $MADE_DATA_DIR has it, else random 0/1
data of its shape.
"""
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import data  # noqa: E402
import optim  # noqa: E402
from made import MADE  # noqa: E402


def step_time(x, hidden, masks, reference):
    model = MADE(784, [hidden], n_masks=masks, seed=0, reference=reference)
    optimizer = optim.AdaGrad(model, lr=0.01, fast=not reference)
    count = 100 if hidden <= 1000 else 20

    def steps():
        for i in range(count):
            loss, grads = model.loss_and_grads(x[i * 100:(i + 1) * 100])
            optimizer.step(grads)
            model.next_mask()
    steps()
    times = []
    for _ in range(3):
        started = time.perf_counter()
        steps()
        times.append(time.perf_counter() - started)
    return min(times) / count * 1000  # ms a step


def main():
    x = data.load("binarized_mnist")["train"][:10000] if os.environ.get("MADE_DATA_DIR") else \
        (np.random.default_rng(0).random((10000, 784)) < 0.13).astype(np.float32)
    for hidden in (500, 8000):
        for masks in (1, 32):
            fast, reference = step_time(x, hidden, masks, False), step_time(x, hidden, masks, True)
            print(f"784-{hidden}-784, {masks} mask(s): fast {fast:.1f} ms a step, reference {reference:.1f} ms "
                  f"({reference / fast:.1f} times)", flush=True)


if __name__ == "__main__":
    main()
