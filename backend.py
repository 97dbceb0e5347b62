"""The one switch between NumPy (CPU) and CuPy (CUDA).

Every other file does its array math through the module returned here, so the GPU path is the same
code as the CPU path. Nothing else in the project imports cupy.

    xp = backend.array_module(gpu)      # numpy or cupy
    x = backend.to_device(host_array, gpu)
    host = backend.to_host(x)           # always a numpy array

It is also the boundary with the disk (atomic writes, pickle-free .npz reading) and with the user
(run_command: a user error becomes one line and exit status 2).
"""
import json
import os
import struct
import sys
import tempfile
import warnings
import zipfile
import zlib
from contextlib import contextmanager

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


def out_of_memory_message(error, gpu):
    """One line for a MemoryError (CuPy's OutOfMemoryError is one too; its text names the size tried)."""
    where = "GPU memory" if gpu else "memory"
    return (f"out of {where} ({error or 'allocation failed'}); try a smaller --batch-size or "
            f"--eval-batch-size, or fewer --hidden units")


def run_command(program, gpu, body, user_errors=()):
    """Run a command line's body; return its exit status.

    The GPU is checked first. A user error (GPUUnavailable, FileFormatError or one of
    `user_errors`) or exhausted memory is one line on stderr, `program: error: …`, and status 2:
    no traceback. Anything else is a bug and propagates.
    """
    try:
        array_module(gpu)
        body()
        return 0
    except (GPUUnavailable, FileFormatError, *user_errors) as error:
        message = error
    except MemoryError as error:
        message = out_of_memory_message(error, gpu)
    print(f"{program}: error: {message}", file=sys.stderr)
    return 2


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


def module_of(array):
    """The array module an existing array belongs to (numpy arrays never import cupy)."""
    if isinstance(array, np.ndarray) or _cupy is None:
        return np
    return _cupy.get_array_module(array)


def is_device_array(array):
    return _cupy is not None and isinstance(array, _cupy.ndarray)


def to_device(array, gpu=False, dtype=None):
    """Copy a host array to where the model lives (no copy when it already is there and typed)."""
    xp = array_module(gpu)
    return xp.asarray(array, dtype=dtype)


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


def synchronize(gpu=False):
    """Wait for queued device work (for honest timings); a no-op on the CPU."""
    if gpu:
        _load_cupy().cuda.get_current_stream().synchronize()


def random_generator(seed):
    """The project's host random generator: numpy's PCG64, reproducible from an int or a sequence.

    Masks and minibatch orders are drawn on the host: they are small, and drawing them the same way
    on CPU and GPU makes a `--gpu` run follow the same masks as a CPU run with the same seed.
    """
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------------------------
# Files. Everything the project writes goes through atomic_write, and every .npz it reads through
# read_npz, so that an interrupted write never leaves half a file and no file can run code.


class FileFormatError(ValueError):
    """A file is not what it claims to be (corrupt, truncated, foreign, or holding objects)."""


@contextmanager
def atomic_write(path, mode="wb"):
    """Write to a temporary file beside `path`, flush it to disk, then rename it over `path`.

    A rename within one folder is atomic, so readers see the old file or the new one, never a
    mix; if the block raises (or the process dies), the temporary file is removed and `path` is
    untouched.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    handle, temp_path = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    os.chmod(temp_path, 0o666 & ~_umask())  # mkstemp makes it private (0600); the file is the user's
    try:
        with os.fdopen(handle, mode) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_path, path)
    except BaseException:
        if os.path.exists(temp_path):
            os.remove(temp_path)
        raise


def _umask():
    """The process's file-creation mask (reading it means setting it; it is put back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_npz(path, arrays):
    """Save a dict of host arrays (and JSON-able metadata under the key 'json') atomically."""
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    with atomic_write(path) as file:
        np.savez(file, **arrays)


def read_npz(path, names=None):
    """The arrays of an .npz file as a dict (all, or those in `names`); any failure is a
    FileFormatError naming the file.

    Before NumPy reads an array, its header is checked against the archive: the bytes it claims
    must be there (so a tampered header cannot make us allocate terabytes) and it must not hold
    Python objects (which NumPy could only read by unpickling; allow_pickle stays False anyway).
    """
    try:
        with warnings.catch_warnings(), open(path, "rb") as file:
            # The authors' UCI files were written by Python 2; NumPy reads them fine but warns.
            warnings.filterwarnings("ignore", message=".*created on Python 2")
            if file.read(4) != b"PK\x03\x04":
                raise FileFormatError(f"{path}: not an .npz archive")
            file.seek(0)
            with zipfile.ZipFile(file) as archive:
                for info in archive.infolist():
                    if names is None or info.filename[:-len(".npy")] in names:
                        _check_member(archive, info, os.path.getsize(path), path)
            file.seek(0)
            with np.load(file, allow_pickle=False) as archive:
                return {name: archive[name] for name in archive.files if names is None or name in names}
    except FileFormatError:
        raise
    except FileNotFoundError:
        raise FileFormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FileFormatError(f"{path}: is a folder, not a file") from None
    except ValueError as error:
        if "pickle" in str(error).lower():
            raise FileFormatError(f"{path}: holds Python objects (pickles), which are refused") from None
        raise FileFormatError(f"{path}: not a readable .npz file ({error})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, struct.error, zlib.error, OverflowError,
            MemoryError, NotImplementedError) as error:
        raise FileFormatError(f"{path}: truncated or corrupt .npz file ({type(error).__name__}: {error})") from None


def _check_member(archive, info, archive_bytes, path):
    """Refuse a member whose .npy header is unreadable, holds objects, or claims more bytes than exist."""
    if not info.filename.endswith(".npy"):
        raise FileFormatError(f"{path}: unexpected member {info.filename!r} (an .npz holds only .npy arrays)")
    stored_limit = archive_bytes if info.compress_type == zipfile.ZIP_STORED else 1000 * max(info.compress_size, 1)
    if info.compress_size > archive_bytes or info.file_size > stored_limit:
        raise FileFormatError(f"{path}: member {info.filename!r} claims more bytes than the file holds")
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise FileFormatError(f"{path}: member {info.filename!r} has an unsupported .npy version {version}")
        if dtype.hasobject:
            raise FileFormatError(f"{path}: holds Python objects (pickles), which are refused")
        if int(np.prod(shape, dtype=object)) * dtype.itemsize > info.file_size:
            raise FileFormatError(f"{path}: member {info.filename!r} is shorter than its header says (truncated)")


def json_array(value):
    """Encode a JSON-able value as a 0-d unicode array, which .npz stores without pickling."""
    return np.array(json.dumps(value))


def read_json_array(array, what):
    """Decode what json_array wrote; anything else is FileFormatError naming `what`."""
    if array.dtype.kind != "U" or array.ndim != 0:
        raise FileFormatError(f"{what}: expected a JSON string")
    try:
        return json.loads(str(array))
    except json.JSONDecodeError as error:
        raise FileFormatError(f"{what}: not valid JSON ({error})") from None
