"""What keeping the weights in the data's numbering would cost the engine: the gathers and scatters
of a training step (engine.py's layout paragraph).

    python benchmarks/layout_gather.py

The staircase needs every layer's units sorted by degree. If the engine kept the weights in the
data's numbering, every step would gather W0's columns and W1's rows into that order and scatter
their gradients back. This times each of the four at 784-500-784 (float32, the fastest of 200),
beside the forward product of a minibatch of 100, for scale.
"""
import time

import numpy as np


def fastest(function, repeat=200):
    function()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return 1000 * min(times)


def main():
    rng = np.random.default_rng(0)
    hidden, inputs = 500, 784
    w0 = rng.standard_normal((hidden, inputs)).astype(np.float32)
    w1 = rng.standard_normal((inputs, hidden)).astype(np.float32)
    order = rng.permutation(inputs)
    out0, out1 = np.empty_like(w0), np.empty_like(w1)
    x = (rng.random((100, inputs)) < 0.3).astype(np.float32)
    rows = [("gather W0's columns", lambda: np.take(w0, order, axis=1, out=out0)),
            ("scatter W0's gradient's columns", lambda: out0.__setitem__((slice(None), order), w0)),
            ("gather W1's rows", lambda: np.take(w1, order, axis=0, out=out1)),
            ("scatter W1's gradient's rows", lambda: out1.__setitem__(order, w1)),
            ("for scale: x W0ᵀ, a minibatch of 100", lambda: x @ w0.T)]
    for what, function in rows:
        print(f"{what:<40} {fastest(function):6.3f} ms")


if __name__ == "__main__":
    main()
