"""This project against PyTorch, one training epoch each in turn, on a machine whose speed drifts.

    MADE_DATA_DIR=../shared/data python benchmarks/interleaved.py [--rounds 5]
    MADE_DATA_DIR=../shared/data python benchmarks/interleaved.py --hidden 8000 --direct --batches 40
    MADE_DATA_DIR=../shared/data python benchmarks/interleaved.py --gpu     # CuPy against PyTorch CUDA

Sequential benchmarks on a shared machine compare its good minutes with its bad ones. Here every
round times, back to back, one epoch (batch 100, AdaGrad 0.01) of: this project through train.py's
loop (optim.train_epoch) and through the plain loop a user writes (loss_and_grads, step,
next_mask); PyTorch with its default and its fused AdaGrad (the CPU only: PyTorch has no fused
AdaGrad for CUDA); and the bare floors, dense (GEMM) and staircase. The summary gives each one's
best and median epoch and its ratio to PyTorch's fused AdaGrad (on a GPU: its default AdaGrad) in
the same round. --batches times that many minibatches and scales them to an epoch (for the big
models). With --gpu both run on the CUDA GPU (this project through CuPy: its fused engine,
kernels.py, and the unfused one, MADE_GPU_UNFUSED=1, in the same rounds), and every timing waits
for the device; CUPY_TF32=1 in the environment turns TF32 matrix products on for both.
Needs PyTorch (skipped without it); imported by nothing.
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
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every run (default: %(default)s)")
    parser.add_argument("--hidden", type=int, default=500, help="hidden units, one layer (default: %(default)s)")
    parser.add_argument("--direct", action="store_true", help="add the direct input-output connection")
    parser.add_argument("--masks", type=int, default=1, help="this project's masks, resampled every minibatch "
                        "(PyTorch keeps one; default: %(default)s)")
    parser.add_argument("--batches", type=int, default=None, help="minibatches per timing, scaled to an epoch "
                        "(default: the whole epoch)")
    parser.add_argument("--gpu", action="store_true", help="both on the CUDA GPU: CuPy against PyTorch CUDA")
    parser.add_argument("--evaluation-only", action="store_true", help="time only the evaluation rows")
    args = parser.parse_args(argv)
    if torch is None:
        print("benchmarks/interleaved.py: skipped: PyTorch is not installed")
        return 0
    gpu = args.gpu
    device = torch.device("cuda" if gpu else "cpu")
    tf32 = backend.tf32_requested()  # CuPy reads CUPY_TF32 itself; PyTorch is told the same
    torch.backends.cuda.matmul.allow_tf32 = tf32
    x, source = bench.load_inputs(quick=False, gpu=gpu)
    n_batches = args.batches or x.shape[0] // 100
    scale = x.shape[0] / (n_batches * 100)
    hidden = [args.hidden]
    ours = MADE(784, hidden, direct=args.direct, n_masks=args.masks, seed=0, gpu=gpu)
    ours_optimizer = optim.AdaGrad(ours, lr=0.01)
    plain = MADE(784, hidden, direct=args.direct, n_masks=args.masks, seed=0, gpu=gpu)
    plain_optimizer = optim.AdaGrad(plain, lr=0.01)
    if gpu:  # the unfused GPU path too (engine.Engine on CuPy), chosen when the model is made
        saved = os.environ.get("MADE_GPU_UNFUSED")
        os.environ["MADE_GPU_UNFUSED"] = "1"
        unfused = MADE(784, hidden, direct=args.direct, n_masks=args.masks, seed=0, gpu=gpu)
        if saved is None:
            del os.environ["MADE_GPU_UNFUSED"]
        else:
            os.environ["MADE_GPU_UNFUSED"] = saved
        unfused_optimizer = optim.AdaGrad(unfused, lr=0.01)
    rng = backend.random_generator(0)
    x_torch = torch.from_numpy(backend.to_host(x)).to(device)
    theirs = {}
    # PyTorch's fused AdaGrad runs on the CPU only; on a GPU its default (foreach) one is the reference
    fused_options = (False,) if gpu else (False, True)
    reference = "PyTorch AdaGrad" if gpu else "PyTorch fused AdaGrad"
    for fused in fused_options:
        model = TorchMADE(784, hidden, device, direct=args.direct)
        theirs[fused] = (model, torch.optim.Adagrad(model.parameters(), lr=0.01, fused=fused))

    def torch_epoch(fused):
        model, optimizer = theirs[fused]
        order = torch.randperm(x_torch.shape[0], device=device)
        for start in range(0, n_batches * 100, 100):
            loss = model.nll(x_torch[order[start:start + 100]]).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    def train_loop(model, optimizer):
        subset = x[:n_batches * 100]  # the first minibatches' worth of examples, in a random order
        optim.train_epoch(model, optimizer, subset, backend.to_device(rng.permutation(subset.shape[0]), gpu), 100)

    def plain_loop():
        order = backend.to_device(rng.permutation(x.shape[0]), gpu)
        for start in range(0, n_batches * 100, 100):
            loss, grads = plain.loss_and_grads(x[order[start:start + 100]])
            plain_optimizer.step(grads)
            plain.next_mask()

    def synchronize():
        backend.synchronize(gpu)
        if gpu:
            torch.cuda.synchronize()

    def wall(function):
        def run():
            synchronize()
            started = time.perf_counter()
            function()
            synchronize()
            return time.perf_counter() - started
        return run

    evaluation = x[:10000]
    evaluation_torch = x_torch[:10000]

    def torch_evaluation():
        with torch.no_grad():
            for start in range(0, 10000, 1000):
                theirs[False][0].nll(evaluation_torch[start:start + 1000])

    runs = {"this project, train.py's loop": wall(lambda: train_loop(ours, ours_optimizer)),
            "this project, plain loop": wall(plain_loop),
            **({"this project unfused, train.py's": wall(lambda: train_loop(unfused, unfused_optimizer))}
               if gpu else {}),
            "PyTorch AdaGrad": wall(lambda: torch_epoch(False)),
            **({"PyTorch fused AdaGrad": wall(lambda: torch_epoch(True))} if not gpu else {}),
            # the floors time their own products, leaving out the setting up of their arrays
            "dense GEMM floor": lambda: bench.gemm_floor(784, hidden, n_batches * 100, 100, gpu, repeat=1),
            **({} if gpu else {"staircase floor": lambda: bench.staircase_floor(x, hidden, args.direct, n_batches, gpu,
                                                                              repeat=1)})}
    evaluations = {"this project": wall(lambda: ours.log_prob(evaluation, batch_size=1000)),
                   **({"this project unfused": wall(lambda: unfused.log_prob(evaluation, batch_size=1000))}
                      if gpu else {}),
                   "PyTorch (no_grad)": wall(torch_evaluation)}
    rates = {name: [] for name in evaluations}
    if args.evaluation_only:
        runs = {}
    times = {name: [] for name in runs}
    for function in runs.values():  # warm-up
        function()
    for _ in range(args.rounds):
        for name, function in runs.items():
            times[name].append(function() * scale)
        for name, function in evaluations.items():
            rates[name].append(10000 / function())
    name = f"784-{args.hidden}-784{' +direct' if args.direct else ''}"
    print(f"{args.rounds} interleaved rounds, {name}, {args.masks} mask(s), batch 100, {source}, "
          f"{n_batches} minibatches per timing scaled to an epoch, PyTorch {torch.__version__} "
          f"({torch.get_num_threads()} threads), NumPy {np.__version__}, {time.strftime('%Y-%m-%d %H:%M')}")
    if gpu:
        print(f"  on {torch.cuda.get_device_name()}: CuPy {backend.array_module(True).__version__}, "
              f"TF32 matrix products {'on' if tf32 else 'off'} (CUPY_TF32)")
    for name, values in times.items():
        ratios = [v / r for v, r in zip(values, times[reference])]
        print(f"  {name:<32} best {min(values):7.3f} s   median {statistics.median(values):7.3f} s   "
              f"× {'PyTorch' if gpu else 'fused'}: median {statistics.median(ratios):.2f}   "
              f"all {' '.join(f'{v:.2f}' for v in values)}")
    print(f"  evaluation, batch 1000, one mask (examples/s; {ours.n_masks} mask(s) trained, mask 0 used):")
    for name, values in rates.items():
        ratios = [v / r for v, r in zip(values, rates["PyTorch (no_grad)"])]
        print(f"  {name:<32} best {max(values):9,.0f}   median {statistics.median(values):9,.0f}   "
              f"× PyTorch: median {statistics.median(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
