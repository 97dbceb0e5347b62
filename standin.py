"""NumPy standing in for CuPy, counting what a GPU would be asked to do.

On a machine without a GPU, `backend.use_module(standin.module())` runs every `--gpu` path on
NumPy: an array "on the device" is a DeviceArray (a NumPy array underneath), and a host array
that meets one in an operation raises TypeError, as CuPy does. Counted, in COUNTS:

  launches  every operation a GPU would run as a kernel: a ufunc, a reduction, a matrix product,
            a gather, a write through an index, a copy on the device, a filled buffer, and each
            fused kernel of kernels.py, which runs its NumPy twin here;
  copies    every transfer between host and device: asarray of a host array, asnumpy, and
            float(), int(), bool() or item() of a device array (each waits for the device too).

Views (slices, reshape, .T) and empty buffers cost nothing, as in CuPy. Two things a real GPU
does differently are not modelled: CuPy may split a reduction into two kernels, and a matrix
product of cuBLAS is counted as one launch whatever it runs inside.
"""
import collections
import types

import numpy as np


class Counts:
    """launches, copies, and each by name (what made them)."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.launches, self.copies = 0, 0
        self.by_name = collections.Counter()

    def launch(self, name):
        self.launches += 1
        self.by_name[name] += 1

    def copy(self, name):
        self.copies += 1
        self.by_name["copy: " + name] += 1


COUNTS = Counts()
FREE = {np.empty_like, np.reshape, np.transpose, np.ravel, np.shape, np.ndim, np.size, np.result_type,
        np.may_share_memory, np.shares_memory, np.broadcast_to, np.squeeze, np.expand_dims, np.atleast_1d,
        np.atleast_2d, np.swapaxes, np.moveaxis}  # views and questions: no kernel


def _plain(value, index=False):
    """The NumPy arrays under DeviceArrays, through tuples, lists and dicts; a host array refused
    (an index may be one: CuPy copies it over)."""
    if isinstance(value, DeviceArray):
        return value.view(np.ndarray)
    if isinstance(value, np.ndarray) and value.ndim > 0:
        if not index:
            raise TypeError("a host (NumPy) array met a device array: copy it to the device first "
                            "(CuPy refuses this as well)")
        COUNTS.copy("index to device")
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(item, index) for item in value)
    if isinstance(value, dict):
        return {key: _plain(item, index) for key, item in value.items()}
    return value


def _device(value):
    """A result back on the device: arrays as DeviceArray views, NumPy scalars as 0-d arrays (CuPy's
    reductions return 0-d arrays, not scalars)."""
    if isinstance(value, np.ndarray) and not isinstance(value, DeviceArray):
        return value.view(DeviceArray)
    if isinstance(value, np.generic):
        return np.asarray(value).view(DeviceArray)
    if isinstance(value, tuple):
        return tuple(_device(item) for item in value)
    if isinstance(value, list):
        return [_device(item) for item in value]
    return value


def _is_advanced(index):
    """Whether an index gathers (arrays, lists, booleans) rather than views (ints, slices, ...)."""
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(item, (np.ndarray, list)) for item in items)


def _to_host(name):
    """A method of DeviceArray that brings a value to the host: a copy."""
    def method(self, *args):
        COUNTS.copy(name)
        return getattr(self.view(np.ndarray), name)(*args)
    return method


def _one_launch(name):
    """A method of DeviceArray that is one kernel on a GPU."""
    def method(self, *args, **kwargs):
        COUNTS.launch(name)
        return _device(getattr(self.view(np.ndarray), name)(*_plain(args), **_plain(kwargs)))
    return method


class DeviceArray(np.ndarray):
    """An array on the stand-in device. Every operation on it is counted (module docstring)."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        COUNTS.launch(f"{ufunc.__name__}.{method}" if method != "__call__" else ufunc.__name__)
        result = getattr(ufunc, method)(*_plain(inputs), **_plain(kwargs))
        return _device(result)

    def __array_function__(self, func, types, args, kwargs):
        if func not in FREE:
            COUNTS.launch(func.__name__)
        return _device(func(*_plain(args), **_plain(kwargs)))

    def __getitem__(self, index):
        if _is_advanced(index):
            COUNTS.launch("gather")
            index = _plain(index, index=True)
        return _device(self.view(np.ndarray)[index])

    def __setitem__(self, index, value):
        COUNTS.launch("write")
        if isinstance(value, np.ndarray) and not isinstance(value, DeviceArray) and value.ndim > 0:
            COUNTS.copy("to device")
        else:
            value = _plain(value)
        self.view(np.ndarray)[_plain(index, index=True)] = value

    __float__, __int__, __bool__, __index__ = (_to_host(name) for name in
                                               ("__float__", "__int__", "__bool__", "__index__"))
    item, tolist = _to_host("item"), _to_host("tolist")
    mean, copy, fill, astype, dot = (_one_launch(name) for name in ("mean", "copy", "fill", "astype", "dot"))


def asarray(value, dtype=None, order=None):
    """On the device: no work for a device array of that dtype, a cast on the device for another
    dtype, a copy (counted) for anything on the host."""
    if isinstance(value, DeviceArray):
        return value if dtype is None or np.dtype(dtype) == value.dtype else value.astype(dtype)
    COUNTS.copy("to device")
    return np.array(value, dtype=dtype, order=order or "K").view(DeviceArray)


def array(value, dtype=None, copy=True, order="K"):
    if isinstance(value, DeviceArray):
        return value.astype(dtype or value.dtype, copy=True) if copy else asarray(value, dtype)
    return asarray(value, dtype, order)


def asnumpy(value):
    if isinstance(value, DeviceArray):
        COUNTS.copy("to host")
        return value.view(np.ndarray).copy()
    return np.asarray(value)


def _made(function, launches):
    def make(*args, **kwargs):
        if launches:
            COUNTS.launch(function.__name__)
        return _device(function(*args, **kwargs))
    make.__name__ = function.__name__
    return make


def module():
    """A fresh stand-in for the cupy module (COUNTS is shared)."""
    fake = types.ModuleType("cupy", "NumPy standing in for CuPy (standin.py)")
    fake.__getattr__ = lambda name: getattr(np, name)  # anything else: NumPy's, dispatched on DeviceArray
    fake.ndarray = DeviceArray
    fake.asarray, fake.array, fake.asnumpy = asarray, array, asnumpy
    fake.ascontiguousarray = lambda value, dtype=None: asarray(value, dtype) if value.flags.c_contiguous else \
        _made(np.ascontiguousarray, True)(_plain(value), dtype)
    fake.empty = _made(np.empty, launches=False)
    for name in ("zeros", "ones", "full", "arange", "linspace", "eye"):
        setattr(fake, name, _made(getattr(np, name), launches=True))
    fake.get_array_module = lambda *arrays: fake
    fake.count_launch = COUNTS.launch  # kernels.py: a fused kernel ran its twin
    stream = types.SimpleNamespace(synchronize=lambda: None)
    fake.cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=lambda: 1, getDeviceProperties=lambda i: {"name": b"stand-in"}),
        get_current_stream=lambda: stream)
    fake.get_default_memory_pool = lambda: types.SimpleNamespace(total_bytes=lambda: 0)
    fake.__version__ = "NumPy stand-in"
    return fake
