"""This project against PyTorch, one training epoch each in turn, on a machine whose speed drifts.

    MADE_DATA_DIR=../shared/data python benchmarks/interleaved.py [--rounds 5]

Sequential benchmarks on a shared machine compare its good minutes with its bad ones. Here every
round times one epoch of 784-500-784 (batch 100, AdaGrad 0.01) for this project, for PyTorch's
AdaGrad and for PyTorch's fused AdaGrad, back to back, so all three see the same machine; the
summary gives each one's best and median epoch, and the bare GEMM floor measured in the same
rounds. Needs PyTorch (skipped without it); imported by nothing.
"""
import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

import backend  # noqa: E402
import bench  # noqa: E402
import optim  # noqa: E402
from made import MADE  # noqa: E402

try:
    import torch
    from torch_made import TorchMADE
except ImportError:
    torch = None


def main(argv=None):
    parser = argparse.ArgumentParser(description="Interleaved epochs: this project and PyTorch in turn.")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of three epochs (default: %(default)s)")
    args = parser.parse_args(argv)
    if torch is None:
        print("benchmarks/interleaved.py: skipped: PyTorch is not installed")
        return 0
    x, source = bench.load_inputs(quick=False, gpu=False)
    ours = MADE(784, [500], seed=0)
    ours_optimizer = optim.AdaGrad(ours.params, lr=0.01)
    rng = backend.random_generator(0)
    x_torch = torch.from_numpy(np.asarray(x))
    theirs = {}
    for fused in (False, True):
        model = TorchMADE(784, [500], torch.device("cpu"))
        theirs[fused] = (model, torch.optim.Adagrad(model.parameters(), lr=0.01, fused=fused))

    def torch_epoch(fused):
        model, optimizer = theirs[fused]
        order = torch.randperm(x_torch.shape[0])
        for start in range(0, x_torch.shape[0], 100):
            loss = model.nll(x_torch[order[start:start + 100]]).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    runs = {"this project": lambda: optim.train_epoch(ours, ours_optimizer, x, backend.to_device(rng.permutation(x.shape[0])), 100),
            "PyTorch AdaGrad": lambda: torch_epoch(False),
            "PyTorch fused AdaGrad": lambda: torch_epoch(True)}
    times = {name: [] for name in list(runs) + ["GEMM floor"]}
    for function in runs.values():  # warm-up
        function()
    for _ in range(args.rounds):
        for name, function in runs.items():
            started = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - started)
        times["GEMM floor"].append(bench.gemm_floor(784, [500], x.shape[0], 100, False, repeat=1))
    print(f"{args.rounds} interleaved rounds, 784-500-784, batch 100, {source}, PyTorch {torch.__version__} "
          f"({torch.get_num_threads()} threads), NumPy {np.__version__}")
    for name, values in times.items():
        print(f"  {name:<24} best {min(values):6.3f} s   median {statistics.median(values):6.3f} s   "
              f"all {' '.join(f'{v:.2f}' for v in values)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
