"""What the best model in the checkpoint costs: the time and size of one checkpoint write.

    python benchmarks/checkpoint_write.py            # 784-8000-784 with the direct connection, AdaGrad

A checkpoint holds the best model too (resume.save_checkpoint) unless it is the current one. This
writes the same model's checkpoint both ways, three times each, into a temporary folder under
runs/, and prints the fastest write and the file's size.
"""
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import optim  # noqa: E402
import resume  # noqa: E402
from made import MADE  # noqa: E402


def history(epochs, best):
    return [{"epoch": e, "train_nll": 1.0, "valid_nll": 1.0 if e == best else 2.0, "seconds": 1.0,
             "examples_per_second": 1.0, "lr": 0.01} for e in range(1, epochs + 1)]


def main():
    model = MADE(784, [8000], direct=True, seed=0)
    optimizer = optim.AdaGrad(model, lr=0.01)
    best = resume.best_model_arrays(model, 2)
    os.makedirs(os.path.join(ROOT, "runs"), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.join(ROOT, "runs")) as folder:
        path = os.path.join(folder, "checkpoint.npz")
        for label, epoch in (("the best model is an earlier one (held too)", 3), ("the best model is the current one", 2)):
            state = resume.TrainingState(rng=np.random.default_rng(0), epoch=epoch, best_valid=1.0, best_epoch=2,
                                       epochs_without_improvement=epoch - 2, history=history(epoch, 2))
            times = []
            for _ in range(3):
                started = time.perf_counter()
                resume.save_checkpoint(path, model, optimizer, state, {}, best=best)
                times.append(time.perf_counter() - started)
            print(f"784-8000-784 +direct, AdaGrad, {label}: {min(times):.2f} s, {os.path.getsize(path) / 2 ** 20:.0f} MiB")


if __name__ == "__main__":
    main()
