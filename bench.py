"""Speed of this MADE, measured: training, evaluation, sampling, memory, and the GEMM floor.

    python bench.py                 # the full table on this machine (about a minute on 2 cores)
    python bench.py --gpu           # the same through CuPy
    python bench.py --json out.json # also the numbers for machines
    python bench.py --quick         # a smoke run on small sizes (what the tests call)
    python bench.py --hidden 8000,8000 --direct --masks 32   # one epoch of train.py for your model
    python bench.py --gpu-standin   # kernel launches and host-device copies of the GPU path, counted
                                    # without a GPU (NumPy standing in for CuPy: standin.py)

Every training figure is also shown as a multiple of its floor: the time of the bare float32 matrix
products one epoch needs (three forward, and per layer two backward, the first layer's input
gradient excepted), with nothing else. MNIST's shape is used (784 inputs, 50 000 training
examples); the real data when $MADE_DATA_DIR has it, else random 0/1 data of that shape.
"""
if __name__ == "__main__":  # before the imports: closed streams and an early Ctrl-C (startup.py)
    import startup
    startup.begin("bench.py")

import argparse
import json
import os
import resource
import sys
import time

import numpy as np

import backend
import cli
import data
import files
import optim
import runs
import standin
from made import MADE
from ancestral import sample


def timed(function, gpu, repeat=3):
    """Fewest seconds of `repeat` calls after one warm-up call (device work included).

    The minimum, not the mean: on a shared machine the slow repeats measure the neighbours."""
    function()
    backend.synchronize(gpu)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        backend.synchronize(gpu)
        times.append(time.perf_counter() - started)
    return float(min(times))


def gemm_floor(n_in, hidden, n_train, batch_size, gpu, repeat, dtype="float32"):
    """Seconds of one epoch's matrix products alone: per minibatch, a forward product per layer,
    and backward a weight-gradient product per layer plus an input-gradient product for every
    layer but the first (the data needs no gradient)."""
    xp = backend.array_module(gpu)
    rng = np.random.default_rng(0)
    sizes = [n_in] + hidden + [n_in]
    weights = [xp.asarray(rng.standard_normal((sizes[i + 1], sizes[i])), dtype=dtype) for i in range(len(sizes) - 1)]
    activations = [xp.asarray(rng.random((batch_size, s)), dtype=dtype) for s in sizes]
    n_batches = n_train // batch_size

    def epoch():
        for _ in range(n_batches):
            for i, w in enumerate(weights):
                activations[i] @ w.T                  # forward
                activations[i + 1].T @ activations[i]  # weight gradient
                if i > 0:
                    activations[i + 1] @ w           # input gradient
    return timed(epoch, gpu, repeat)


def staircase_floor(x, hidden, direct, n_batches, gpu, repeat, batch_size=100):
    """Seconds of the matrix products alone as the staircase computes them (its blocks, under one
    mask, on random activations), for n_batches minibatches: the floor of the fast path."""
    model = MADE(x.shape[1], hidden, direct=direct, seed=0, gpu=gpu)
    network, xp = model.engine.sorted_network(), model.xp
    rng = np.random.default_rng(0)
    sizes = [x.shape[1]] + list(hidden)
    products = [(network.products[name], network.weights[name], sizes[source], layer.size, source > 0)
                for layer in model.layers for name, source in layer.inputs]
    buffers = [(xp.asarray(rng.random((batch_size, n_in)), dtype="float32"), xp.empty((batch_size, n_in), "float32"),
                xp.asarray(rng.random((batch_size, n_out)), dtype="float32"), xp.zeros((n_out, n_in), "float32"))
               for _, _, n_in, n_out, _ in products]

    def batches():
        for _ in range(n_batches):
            for (product, weight, _, _, needs_input), (inputs, grad_in, out, grad_w) in zip(products, buffers):
                product.forward(weight, inputs, out)
                product.backward_weight(out, inputs, grad_w)
                if needs_input:
                    product.backward_input(weight, out, grad_in)
    return timed(batches, gpu, repeat)


def multiply_adds(x, hidden, direct, batch_size=100):
    """(dense, staircase) multiply-adds of one minibatch's products (forward, weight gradient, and
    input gradient where the input is a hidden layer), under mask 0."""
    model = MADE(x.shape[1], hidden, direct=direct, seed=0)
    network = model.engine.sorted_network()
    dense = staircase = 0
    for layer in model.layers:
        for name, source in layer.inputs:
            count = 3 if source > 0 else 2
            dense += count * batch_size * network.weights[name].size
            staircase += count * network.products[name].multiply_adds(batch_size)
    return dense, staircase


def training_epoch(x, hidden, n_masks, gpu, repeat, optimizer="adagrad", batch_size=100, direct=False, n_batches=None):
    """Seconds of one training epoch exactly as train.py runs it (after a warm-up epoch); with
    n_batches, of that many minibatches, scaled to the epoch."""
    model = MADE(x.shape[1], hidden, n_masks=n_masks, direct=direct, seed=0, gpu=gpu)
    opt = optim.make_optimizer(optimizer, model)
    subset = x if n_batches is None else x[:n_batches * batch_size]
    order = backend.to_device(np.random.default_rng(0).permutation(subset.shape[0]), gpu)
    return timed(lambda: optim.train_epoch(model, opt, subset, order, batch_size), gpu, repeat) \
        * x.shape[0] / subset.shape[0]


def plain_loop_epoch(x, hidden, n_masks, gpu, repeat, batch_size=100, direct=False, n_batches=None):
    """Seconds of one epoch of the loop a user writes with the public API (scaled like training_epoch):

        loss, grads = model.loss_and_grads(batch); optimizer.step(grads); model.next_mask()
    """
    model = MADE(x.shape[1], hidden, n_masks=n_masks, direct=direct, seed=0, gpu=gpu)
    opt = optim.AdaGrad(model, lr=0.01)
    n_batches = n_batches or x.shape[0] // batch_size
    starts = np.random.default_rng(0).integers(0, x.shape[0] - batch_size, size=n_batches)

    def step(batch):
        loss, grads = model.loss_and_grads(batch)
        opt.step(grads)
        model.next_mask()
        return loss

    def epoch():
        for start in starts:
            step(x[start:start + batch_size])
    return timed(epoch, gpu, repeat) * x.shape[0] / (n_batches * batch_size)


def evaluation_rate(x, hidden, n_masks, gpu, batch_size=1000):
    """Examples per second of log_prob at the given batch size (ensemble of n_masks masks)."""
    model = MADE(x.shape[1], hidden, n_masks=max(n_masks, 1), seed=0, gpu=gpu)
    seconds = timed(lambda: model.log_prob(x, n_masks=n_masks, batch_size=batch_size), gpu)
    return x.shape[0] / seconds


def small_call_time(x, hidden, n, gpu, direct=False):
    """Seconds of one log_prob of n examples under mask 1 of a 32-mask cycle: a mask that is not
    the model's own, so a large call sorts a copy of the weights and a small one multiplies densely
    (engine.SORTED_COPY_PAYS_FROM)."""
    model = MADE(x.shape[1], hidden, n_masks=32, direct=direct, seed=0, gpu=gpu)
    model.use_mask(1)
    return timed(lambda: model.log_prob(x[:n]), gpu)


def sampling_time(n_in, hidden, n, method, gpu):
    model = MADE(n_in, hidden, seed=0, gpu=gpu)
    return timed(lambda: sample(model, n, seed=0, method=method), gpu, repeat=1 if method == "naive" else 3)


ESTIMATE_MINIBATCHES, ESTIMATE_VALID = 40, 1000  # what bench.py --hidden times of an epoch


def epoch_estimate(x, hidden, n_masks, direct, gpu, n_batches=ESTIMATE_MINIBATCHES, n_valid=ESTIMATE_VALID):
    """For planning a long run: (training, validation) seconds of one epoch of train.py on this
    model, estimated from n_batches minibatches (a cycle of up to n_batches masks is kept as in
    training) and from n_valid validation examples under one mask, scaled to an epoch of x and to
    an n_masks-mask ensemble of 10 000 examples."""
    train = training_epoch(x, hidden, n_masks, gpu, repeat=1, direct=direct, n_batches=n_batches)
    model = MADE(x.shape[1], hidden, n_masks=n_masks, direct=direct, seed=0, gpu=gpu)
    one_mask = timed(lambda: model.log_prob(x[:n_valid], batch_size=min(n_valid, 1000)), gpu, repeat=1)
    return train, one_mask * n_masks * 10000 / n_valid


def peak_memory_mb(gpu):
    if gpu:
        pool = backend.array_module(True).get_default_memory_pool()
        return pool.total_bytes() / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def load_inputs(quick, gpu):
    """(training array on the device, a description): MNIST when available, else random 0/1."""
    if quick:
        return backend.to_device((np.random.default_rng(0).random((2000, 64)) < 0.3).astype(np.float32), gpu), "random 2000x64"
    try:
        splits = data.load("binarized_mnist") if os.environ.get("MADE_DATA_DIR") else None
    except data.DataError:
        splits = None
    if splits is None:
        return backend.to_device((np.random.default_rng(0).random((50000, 784)) < 0.13).astype(np.float32), gpu), \
            "random 0/1 of MNIST's shape"
    return backend.to_device(splits["train"], gpu), "binarized MNIST"


def run(quick, gpu):
    x, source = load_inputs(quick, gpu)
    repeat = 1 if quick else 3
    n_train, n_in = x.shape
    one, two = ([32], [32, 32]) if quick else ([500], [500, 500])
    eval_x = x[: 1000 if quick else 10000]
    rows = []

    def add(what, value, unit, floor=None):
        rows.append({"what": what, "value": value, "unit": unit, "floor": floor})

    for hidden in (one, two):
        name = "-".join(str(s) for s in [n_in] + hidden + [n_in])
        floor = gemm_floor(n_in, hidden, n_train, 100, gpu, repeat)
        add(f"GEMM floor, {name}, one epoch", floor, "s")
        dense, blocks = multiply_adds(x, hidden, False)
        if not gpu:  # (the GPU engine multiplies densely: kernels.py)
            add(f"staircase floor ({blocks / dense:.0%} of the dense multiply-adds)",
                staircase_floor(x, hidden, False, n_train // 100, gpu, repeat), "s", floor)
        for n_masks, label in ((1, "1 mask"), (32, "32 masks, resampled every minibatch")):
            seconds = training_epoch(x, hidden, n_masks, gpu, repeat)
            add(f"train {name}, batch 100, {label}", seconds, "s/epoch", floor)
            add("  = examples/s", n_train / seconds, "ex/s")
            add("  the plain loop (loss_and_grads, step)", plain_loop_epoch(x, hidden, n_masks, gpu, repeat),
                "s/epoch", floor)
    if not quick:
        wide, batches = [8000], 40  # an epoch estimated from 40 minibatches
        floor = gemm_floor(n_in, wide, batches * 100, 100, gpu, repeat) * n_train / (batches * 100)
        add(f"GEMM floor, {n_in}-8000-{n_in} (+direct: not counted), one epoch", floor, "s")
        dense, blocks = multiply_adds(x, wide, True)
        if not gpu:
            add(f"staircase floor with direct ({blocks / dense:.0%} of the dense multiply-adds)",
                staircase_floor(x, wide, True, batches, gpu, repeat) * n_train / (batches * 100), "s", floor)
        for n_masks, label in ((1, "1 mask"), (32, "32 masks")):
            add(f"train {n_in}-8000-{n_in} +direct, {label} (from {batches} minibatches)",
                training_epoch(x, wide, n_masks, gpu, repeat, direct=True, n_batches=batches), "s/epoch", floor)
            add("  the plain loop (loss_and_grads, step)",
                plain_loop_epoch(x, wide, n_masks, gpu, repeat, direct=True, n_batches=batches), "s/epoch", floor)
        add(f"evaluate 10 examples under mask 1 of 32, {n_in}-8000-{n_in} +direct",
            1000 * small_call_time(x, wide, 10, gpu, True), "ms")
    for n_masks in (1, 32):
        add(f"evaluate {n_in}-{one[0]}-{n_in}, batch 1000, {n_masks}-mask ensemble",
            evaluation_rate(eval_x, one, n_masks, gpu), "ex/s")
    add(f"evaluate 10 examples under mask 1 of 32, {n_in}-{one[0]}-{n_in}",
        1000 * small_call_time(x, one, 10, gpu), "ms")
    for n in ((10, 50) if quick else (100, 1000)):
        for method in ("fast", "naive"):
            add(f"sample {n} ({method}), {n_in}-{one[0]}-{n_in}", sampling_time(n_in, one, n, method, gpu), "s")
    add("peak memory" + (" (device pool)" if gpu else " (resident)"), peak_memory_mb(gpu), "MiB")
    return rows, source


def standin_counts(n_in=784, hidden=(500,), batch_size=100, eval_batch=1000, n_steps=40, unfused=True):
    """Kernel launches and host↔device copies per training step and per evaluation batch of the GPU
    path, counted on standin.py (NumPy standing in for CuPy): the fused engine (kernels.py) and,
    with MADE_GPU_UNFUSED=1, engine.Engine. A step is counted as the difference between epochs of
    n_steps and 2 n_steps minibatches, after a warm-up epoch that visits every mask of the cycle,
    so what an epoch does once (its sum's buffer, its mean) is not charged to the steps. AdaGrad.
    Returns rows (what, engine, launches, copies); unfused=False: the fused engine's only."""
    previous = backend.use_module(standin.module())
    saved = os.environ.get("MADE_GPU_UNFUSED")
    xp, counts, rows = backend.array_module(True), standin.COUNTS, []
    x = xp.asarray((np.random.default_rng(0).random((2 * n_steps * batch_size, n_in)) < 0.13).astype(np.float32))

    def per_unit(work, n):  # counts of work(2n) − work(n), per unit
        figures = []
        for size in (n, 2 * n):
            work(size)
            counts.reset()
            work(size)
            figures.append((counts.launches, counts.copies))
        return [(after - before) / n for before, after in zip(*figures)]
    try:
        for engine, switch in (("fused", "0"), ("unfused", "1"))[:2 if unfused else 1]:
            os.environ["MADE_GPU_UNFUSED"] = switch
            for n_masks in (1, 32):
                model = MADE(n_in, list(hidden), n_masks=n_masks, seed=0, gpu=True)
                opt = optim.AdaGrad(model)

                def epoch(steps):
                    optim.train_epoch(model, opt, x[:steps * batch_size], xp.arange(steps * batch_size), batch_size)

                def plain_loop(steps):
                    for start in range(0, steps * batch_size, batch_size):
                        loss, grads = model.loss_and_grads(x[start:start + batch_size])
                        opt.step(grads)
                        model.next_mask()
                label = "1 mask" if n_masks == 1 else f"a cycle of {n_masks}"
                rows.append((f"training step, {label} (train.py's epoch)", engine, *per_unit(epoch, n_steps)))
                rows.append((f"training step, {label} (the plain loop)", engine, *per_unit(plain_loop, n_steps)))
                rows.append((f"evaluation batch of {eval_batch}, {label}", engine, *per_unit(
                    lambda batches: model.log_prob(x[:batches * eval_batch], batch_size=eval_batch),
                    x.shape[0] // eval_batch // 2)))
    finally:
        backend.use_module(previous)
        if saved is None:
            os.environ.pop("MADE_GPU_UNFUSED", None)
        else:
            os.environ["MADE_GPU_UNFUSED"] = saved
    return rows


def report_counts():
    """Print standin_counts() as a table."""
    rows = standin_counts()
    print(f"GPU path of 784-500-784, batch 100, AdaGrad, counted on a NumPy stand-in for CuPy "
          f"({time.strftime('%Y-%m-%d')})")
    print(f"  {'':<52} {'fused (kernels.py)':>22} {'unfused (MADE_GPU_UNFUSED=1)':>30}")
    for what in dict.fromkeys(row[0] for row in rows):
        cells = [f"{launches:g} launches, {copies:g} copies" for name, engine, launches, copies in rows if name == what]
        print(f"  {what:<52} {cells[0]:>22} {cells[1]:>30}")


def main(argv=None):
    cli.prepare_streams()
    parser = argparse.ArgumentParser(description="Measure the speed of this MADE (training, evaluation, sampling).")
    parser.add_argument("--gpu", action="store_true", help="measure the CuPy path on a CUDA GPU")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not a measurement")
    parser.add_argument("--json", metavar="FILE", default=None, help="also write the figures as JSON")
    parser.add_argument("--hidden", type=cli.hidden_sizes, default=None, metavar="SIZES",
                        help="instead of the table, estimate one epoch of train.py for this model (e.g. 8000,8000): "
                             f"training from {ESTIMATE_MINIBATCHES} minibatches, validation from {ESTIMATE_VALID} "
                             "examples under one mask")
    parser.add_argument("--masks", type=cli.positive_int, default=1,
                        help="with --hidden: the cycle of masks, and the size of the validation ensemble (default: 1)")
    parser.add_argument("--direct", action="store_true", help="with --hidden: the direct input→output connection")
    parser.add_argument("--gpu-standin", action="store_true",
                        help="instead of timing, count the GPU path's kernel launches and host-device copies per "
                             "training step and evaluation batch, with NumPy standing in for CuPy (no GPU needed)")
    args = parser.parse_args(argv)
    if args.gpu_standin:
        if args.gpu or args.quick or args.json or args.hidden is not None:
            parser.error("--gpu-standin counts one fixed workload; it takes no other flag")
        return cli.run_command("bench.py", False, report_counts)
    if args.hidden is None and (args.masks != 1 or args.direct):
        parser.error("--masks and --direct describe the model of --hidden; give --hidden too")
    if args.hidden is not None and (args.quick or args.json):
        parser.error("--hidden estimates one model; --quick and --json belong to the table")
    if args.hidden == [] and not args.direct:
        parser.error("--hidden none (the shallow MADE) needs --direct")
    body = (lambda: report(args)) if args.hidden is None else (lambda: report_estimate(args))
    return cli.run_command("bench.py", args.gpu, body, memory_advice="try --quick, or fewer --hidden units")


def report(args):
    """Run the measurements and print the table (and the JSON, when asked)."""
    if args.json:
        reads = [] if args.quick or not os.environ.get("MADE_DATA_DIR") else data.locate("binarized_mnist")
        runs.check_outputs({"--json": args.json}, dict.fromkeys(reads, "the data set"))  # before the measuring
    started = time.perf_counter()
    rows, source = run(args.quick, args.gpu)
    print(f"MADE benchmark on {'GPU' if args.gpu else 'CPU'} ({source}; {time.strftime('%Y-%m-%d')})")
    for row in rows:
        ratio = f"  ({row['value'] / row['floor']:.2f} x GEMM floor)" if row["floor"] else ""
        value = f"{row['value']:,.0f}" if row["value"] >= 1000 else f"{row['value']:.3f}"
        print(f"  {row['what']:<62} {value:>12} {row['unit']}{ratio}")
    print(f"({time.perf_counter() - started:.0f} s in all)")
    if args.json:
        with files.atomic_write(args.json, "w") as file:
            json.dump({"date": time.strftime("%Y-%m-%d %H:%M"), "gpu": args.gpu, "quick": args.quick, "data": source,
                       "machine": runs.machine_info(args.gpu), "rows": rows}, file, indent=2)


def report_estimate(args):
    """Print the estimated epoch of the model that --hidden, --masks and --direct describe."""
    x, source = load_inputs(False, args.gpu)
    name = "-".join(str(s) for s in [x.shape[1]] + args.hidden + [x.shape[1]]) + (" +direct" if args.direct else "")
    train, valid = epoch_estimate(x, args.hidden, args.masks, args.direct, args.gpu)
    print(f"MADE {name}, {args.masks} mask(s), on {'GPU' if args.gpu else 'CPU'} ({source}; {time.strftime('%Y-%m-%d')})")
    print(f"  {f'training, one epoch (from {ESTIMATE_MINIBATCHES} minibatches)':<62} {train:12.1f} s")
    print(f"  {f'validation, {args.masks}-mask ensemble of 10 000 (from {ESTIMATE_VALID}, one mask)':<62} {valid:12.1f} s")
    print(f"  {'one epoch of train.py, about':<62} {train + valid:12.1f} s")


if __name__ == "__main__":
    sys.exit(main())
