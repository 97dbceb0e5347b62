"""The one switch between NumPy (CPU) and CuPy (CUDA), and the named random streams.

Every other file does its array math through the module returned here, so the GPU path is the same
code as the CPU path. Nothing else in the project imports cupy.

    xp = backend.array_module(gpu)      # numpy or cupy
    x = backend.to_device(host_array, gpu)
    host = backend.to_host(x)           # always a numpy array
    rng = backend.random_generator(seed, "minibatches")
"""
import os

import numpy as np

DTYPES = ("float32", "float64")


class GPUUnavailable(RuntimeError):
    """`--gpu` was asked for but CuPy or a CUDA device is missing; the message says which."""


_cupy = None


def _load_cupy():
    """Import cupy once and check that a CUDA device answers; raise GPUUnavailable otherwise."""
    global _cupy
    if _cupy is not None:
        return _cupy
    try:
        import cupy
    except ImportError:
        raise GPUUnavailable("--gpu needs CuPy, which is not installed "
                             "(pip install cupy-cuda12x, matching your CUDA version)") from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # the CUDA runtime raises its own types, not one base class
        raise GPUUnavailable(f"--gpu: CuPy is installed but CUDA does not answer ({error})") from None
    if count == 0:
        raise GPUUnavailable("--gpu: CuPy is installed but no CUDA device is visible")
    _cupy = cupy
    return cupy


def gpu_available():
    """True when CuPy imports and sees at least one CUDA device (used by tests to skip)."""
    try:
        _load_cupy()
        return True
    except GPUUnavailable:
        return False


def array_module(gpu=False):
    """numpy for the CPU, cupy for the GPU."""
    return _load_cupy() if gpu else np


def use_module(module):
    """Make `module` the device's array module in place of CuPy: standin.module(), NumPy standing in
    for CuPy and counting launches and copies (tests, bench.py --gpu-standin). Returns the one it
    replaces (None: CuPy, loaded when first asked for)."""
    global _cupy
    previous, _cupy = _cupy, module
    return previous


def module_of(array):
    """The array module an existing array belongs to (numpy arrays never import cupy)."""
    return _cupy if is_device_array(array) else np


def is_device_array(array):
    return _cupy is not None and isinstance(array, _cupy.ndarray)


def to_device(array, gpu=False, dtype=None):
    """Copy a host array to where the model lives (no copy when it already is there and typed)."""
    return array_module(gpu).asarray(array, dtype=dtype)


def to_host(array):
    """A numpy array, whatever the input was (a device array is copied back)."""
    if is_device_array(array):
        return _cupy.asnumpy(array)
    return np.asarray(array)


def check_dtype(dtype):
    """Normalise a dtype name; only float32 (fast, the default) and float64 (gradient checks)."""
    name = np.dtype(dtype).name
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, not {dtype!r}")
    return name


def tf32_requested():
    """True when the environment sets CUPY_TF32 (CuPy's own switch, read at its first float32
    matrix product): CuPy then multiplies float32 matrices in TF32, faster and less precise."""
    return os.environ.get("CUPY_TF32", "0") not in ("", "0")


def synchronize(gpu=False):
    """Wait for queued device work (for honest timings); a no-op on the CPU."""
    if gpu:
        _load_cupy().cuda.get_current_stream().synchronize()


# ----------------------------------------------------------------------------------------------
# Random streams. Every random draw of the project comes from numpy's PCG64 seeded with
# [seed, stream number, index…], so independent uses of one seed never share numbers, and any
# draw (mask k of a cycle, say) can be recreated on its own. Draws happen on the host: they are
# small, and a `--gpu` run then follows the same masks and minibatches as a CPU run.

STREAMS = {
    "init": (0,),                 # the model's initial weights                     (model seed)
    "masks": (1,),                # mask k of the cycle: [seed, 1, k]               (model seed)
    "minibatches": (2,),          # train.py: the order of the examples each epoch  (run seed)
    "custom_masks": (3,),         # degrees under an ordering given from outside    (model seed)
    "observed": (3,),             # --observe random:F                              (command's --seed)
    "examples": (4,),             # sample.py --complete: which examples to show    (command's --seed)
    "pattern_orderings": (),      # completion: the ordering of pattern g is [seed, g] (command's --seed)
    "new_orderings": (5,),        # completions.py: random ordering k, never trained on (command's --seed)
    "mixture": (6,),              # sampling an ensemble or a mixture: each sample's model and mask (--seed)
}


def random_generator(seed, stream=None, *index):
    """A numpy Generator for `stream` of STREAMS (None: the seed alone), e.g.
    random_generator(seed, "masks", k) draws mask k. Seeds and indices are non-negative integers."""
    key = [seed] if stream is None else [seed, *STREAMS[stream], *index]
    return np.random.default_rng(key[0] if len(key) == 1 else key)
