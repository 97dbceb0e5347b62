"""Everything that touches the disk: atomic writes and the pickle-free, header-checked .npz reader.

Every file the project writes goes through atomic_write, and every .npz it reads through read_npz,
so an interrupted write never leaves half a file and no file can run code or make us allocate
without bound. A failed write raises FileWriteError naming the file the user asked for (never a
temporary name); a file that is not what it claims raises FileFormatError naming it.
"""
import fcntl
import json
import math
import os
import re
import stat
import struct
import tempfile
import warnings
import zipfile
import zlib
from contextlib import contextmanager

import numpy as np


class FileFormatError(ValueError):
    """A file is not what it claims to be (corrupt, truncated, foreign, or holding objects)."""


class FileWriteError(OSError):
    """A file could not be written (full disk, read-only or missing folder, …); nothing was changed."""


# ----------------------------------------------------------------------------------------------
# Writing

# atomic_write's temporary files: ".NAME.XXXXXXXX.made-tmp", locked (flock) by their writer until
# it has renamed or removed them, so that remove_temporaries can tell a killed write from one in
# flight in another process, and never mistakes a user's own ".something.tmp" for one of them.
_TEMPORARY_SUFFIX = ".made-tmp"
_TEMPORARY_EXTRA = len(".") + len(".XXXXXXXX") + len(_TEMPORARY_SUFFIX)  # what the temporary name adds
_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}" + re.escape(_TEMPORARY_SUFFIX) + "$")


def temporary_name(path):
    """A name of the form atomic_write gives its temporary file for `path` (beside it), made
    without creating it: what a write killed before its rename would have left."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.{os.urandom(4).hex()}{_TEMPORARY_SUFFIX}")


@contextmanager
def atomic_write(path, mode="wb"):
    """Write to a temporary file beside `path`, flush it to disk, rename it over `path`, and flush
    the folder, so the rename itself survives a power cut.

    A rename within one folder is atomic: readers see the old file or the new one, never a mix. If
    the block raises, the temporary file is removed and `path` is untouched; if the process is
    killed, the temporary file stays until remove_temporaries() is run on the folder. A `path`
    that is a symbolic link is replaced by the file, never followed. Every failure, the block's
    own writes included, is a FileWriteError naming `path` (never the temporary name).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    temp_path = lock = file = None
    try:
        handle, temp_path = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".",
                                             suffix=_TEMPORARY_SUFFIX)
        # The lock lives on a second descriptor of the file, held until the rename or removal is
        # done: closing the file (to flush it) must not release it (remove_temporaries reads it).
        lock = os.dup(handle)
        fcntl.flock(lock, fcntl.LOCK_EX)
        file = os.fdopen(handle, mode, **({} if "b" in mode else {"encoding": "utf-8", "errors": "surrogateescape"}))
        os.chmod(temp_path, 0o666 & ~_umask())  # mkstemp makes it private (0600); the file is the user's
        yield file
        if not file.closed:  # (a writer may have closed it)
            file.flush()
            os.fsync(file.fileno())
            file.close()
        os.replace(temp_path, path)
        temp_path = None
        fsync_folder(folder)
    except OSError as error:
        raise FileWriteError(f"{path}: cannot write ({error.strerror or error})") from None
    finally:
        if temp_path is not None:
            try:
                if file is not None:
                    file.close()
            except OSError:
                pass
            if os.path.lexists(temp_path):
                os.remove(temp_path)
        if lock is not None:
            os.close(lock)  # the last descriptor of the temporary file: its flock goes with it


def lock_file(path):
    """Take an exclusive lock (flock) on the file at `path`, created if needed, and write this
    process's number into it. Returns (descriptor, None), the lock held until the descriptor is
    closed, or (None, the holder's number) when another process holds it. The kernel releases a
    lock however its process ends, so a killed holder never leaves it stuck. The lock is on the
    file itself: one that is a hard link of another (`cp -al`) is first given a file of its own,
    and one that another process replaced while we took it is taken again. OSError otherwise."""
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        try:
            opened = os.fstat(descriptor)
            if opened.st_nlink > 1:
                unshare(path)
                continue
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return None, os.read(descriptor, 32).decode(errors="replace").strip() or "unknown"
            try:
                there = os.stat(path)
            except FileNotFoundError:
                continue  # removed while we took it: take the new one
            if (there.st_dev, there.st_ino) == (opened.st_dev, opened.st_ino):
                os.ftruncate(descriptor, 0)
                os.write(descriptor, f"{os.getpid()}\n".encode())
                descriptor, held = None, descriptor
                return held, None
        finally:
            if descriptor is not None:
                os.close(descriptor)


@contextmanager
def exclusive(path, busy):
    """Hold lock_file's lock on `path` for the block; a lock held by another process raises
    FileWriteError(busy) at once."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        descriptor, _ = lock_file(path)
    except OSError as error:
        raise FileWriteError(f"{path}: cannot use it as a lock ({error.strerror or error})") from None
    if descriptor is None:
        raise FileWriteError(busy)
    try:
        yield
    finally:
        os.close(descriptor)


def fsync_folder(folder):
    """Flush a folder's entries (a rename or a new file) to disk; a no-op where folders cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems refuse fsync on folders; the rename is still atomic
    finally:
        os.close(descriptor)


def remove_temporaries(folder):
    """Delete the temporary files that killed atomic writes left in `folder`; their names.

    Only atomic_write's own (their names end in .made-tmp), and only those whose writer is gone:
    a live writer holds its temporary file's lock, so one that is being written now, by any
    process, is left alone."""
    removed = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if not _TEMPORARY.match(name):
            continue
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:  # gone meanwhile, a link, or not ours to open
            continue
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                continue
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # its writer is alive
            try:
                os.remove(path)  # (a writer that renamed it meanwhile left nothing under this name)
                removed.append(name)
            except FileNotFoundError:
                pass
        finally:
            os.close(descriptor)
    return removed


def _umask():
    """The process's file-creation mask (reading it means setting it; it is put back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def append_line(path, line):
    """Append one line to a text file, creating it; refuse to follow a symbolic link, so a log
    never lands outside the folder it belongs to."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as error:
        if os.path.islink(path):
            raise FileWriteError(f"{path}: is a symbolic link; refusing to write through it "
                                 "(remove the link)") from None
        raise FileWriteError(f"{path}: cannot write ({error.strerror})") from None
    try:
        with os.fdopen(descriptor, "a", encoding="utf-8", errors="surrogateescape") as file:
            file.write(line + "\n")
    except OSError as error:
        raise FileWriteError(f"{path}: cannot write ({error.strerror})") from None


def file_kind(mode):
    """What a stat mode is, in words: 'a regular file', 'a folder', 'a FIFO', …"""
    for test, kind in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return kind
    return "not a regular file"


def check_output(path, what):
    """Refuse, before any work, a file a command must not write: one that exists and is not a
    regular file, or a link to one that is not (a folder, a device, a FIFO, a socket: replacing it
    would break whoever uses it), and one whose folder is missing or not writable. what: how the
    user named it (a flag). A link to a regular file is fine: the write replaces the link."""
    try:
        kind = file_kind(os.stat(path).st_mode)
    except FileNotFoundError:  # nothing there yet (or a dangling link, which the write replaces)
        kind = None
    except OSError as error:
        raise FileWriteError(f"{what} {path}: cannot use it ({error.strerror})") from None
    if kind == "a folder":
        raise FileWriteError(f"{what} {path}: is a folder; give a file name")
    if kind not in (None, "a regular file"):
        raise FileWriteError(f"{what} {path}: is {kind}, not a regular file; give the name of a file to write")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileWriteError(f"{what} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise FileWriteError(f"{what} {path}: the folder {folder} is not writable")
    try:
        longest = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        longest = 255
    length = len(os.fsencode(os.path.basename(temporary_name(path))))
    if length > longest:  # the write goes to a temporary file beside it first, whose name is longer
        raise FileWriteError(f"{what} {path}: the name is too long to write here ({length - _TEMPORARY_EXTRA} "
                             f"bytes; at most {longest - _TEMPORARY_EXTRA}, as the file is written under a "
                             f"temporary name {_TEMPORARY_EXTRA} bytes longer first)")


def check_input(path, error=FileFormatError):
    """Refuse, before opening it, a file a command reads that is not a regular file (a FIFO would
    make the read wait for a writer forever, a device never end): raise `error` naming it."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as problem:
        raise error(f"{path}: cannot read it ({problem.strerror})") from None
    if not stat.S_ISREG(mode):
        raise error(f"{path}: is {file_kind(mode)}, not a regular file")


def same_file(a, b):
    """Whether two paths name one file: the same device and inode where both exist (through
    symbolic or hard links, '..' and case variants alike), else the same resolved path."""
    try:
        first, second = os.stat(a), os.stat(b)
        return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)
    except OSError:  # one of them does not exist yet
        return os.path.realpath(a) == os.path.realpath(b)


def unshare(path):
    """Give `path` a file of its own when it is a hard link of another (as `cp -al` leaves them), so
    that appending to it never writes into the other folder's file. A no-op otherwise."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
        with open(path, "rb") as source, atomic_write(path) as copy:
            copy.write(source.read())


def save_npz(path, arrays):
    """Save a dict of host arrays atomically (metadata as json_array values)."""
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    with atomic_write(path) as file:
        np.savez(file, **arrays)


def save_figure(path, figure, dpi=100):
    """A matplotlib figure as a PNG, written atomically."""
    with atomic_write(path) as file:
        figure.savefig(file, format="png", dpi=dpi)


def save_npy(path, array):
    with atomic_write(path) as file:
        np.save(file, array)


def write_json(path, value):
    """value as JSON, written atomically; NaN and infinities, which JSON lacks, become null."""
    with atomic_write(path, "w") as file:
        json.dump(_finite(value), file, indent=2, allow_nan=False)
        file.write("\n")


def _finite(value):
    """value with every float that is NaN or infinite replaced by None, in lists and dicts too."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


# ----------------------------------------------------------------------------------------------
# Reading


def read_npz(path, names=None):
    """The arrays of an .npz file as a dict (all, or those in `names`); any failure is a
    FileFormatError naming the file.

    Before NumPy reads an array, its header is checked against the archive: the bytes it claims
    must be there (so a tampered header cannot make us allocate terabytes) and it must not hold
    Python objects (which NumPy could only read by unpickling; allow_pickle stays False anyway).
    """
    check_input(path)
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
    except PermissionError:
        raise FileFormatError(f"{path}: not readable (permission denied)") from None
    except ValueError as error:
        if "pickle" in str(error).lower():
            raise FileFormatError(f"{path}: holds Python objects (pickles), which are refused") from None
        raise FileFormatError(f"{path}: not a readable .npz file ({error})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, struct.error, zlib.error, OverflowError,
            MemoryError, NotImplementedError) as error:
        raise FileFormatError(f"{path}: truncated or corrupt .npz file ({type(error).__name__}: {error})") from None


def _check_member(archive, info, archive_bytes, path):
    """Refuse a member whose .npy header is unreadable, holds objects, or claims more bytes than the
    member holds. A stored member's bytes are in the archive's size; a compressed one's are counted
    as they are decompressed, up to what the header claims (no guess at a compression ratio: a
    split of zeros compresses a thousandfold)."""
    if not info.filename.endswith(".npy"):
        raise FileFormatError(f"{path}: unexpected member {info.filename!r} (an .npz holds only .npy arrays)")
    if info.compress_size > archive_bytes or (info.compress_type == zipfile.ZIP_STORED and info.file_size > archive_bytes):
        raise FileFormatError(f"{path}: member {info.filename!r} claims more bytes than the file holds")
    with archive.open(info) as member:
        claimed = _claimed_bytes(member, path, f"member {info.filename!r}")
        if info.compress_type == zipfile.ZIP_STORED:
            present = info.file_size - member.tell()
        else:
            present = 0
            while present < claimed:
                chunk = member.read(min(claimed - present, 2 ** 22))
                if not chunk:
                    break
                present += len(chunk)
        if present < claimed:
            raise FileFormatError(f"{path}: member {info.filename!r} is shorter than its header says (truncated)")


def _claimed_bytes(stream, path, what):
    """Read an .npy header from `stream`: the bytes its array claims; FileFormatError for an
    unreadable header, an unknown version or Python objects."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise FileFormatError(f"{path}: {what} has an unsupported .npy version {version}")
    if dtype.hasobject:
        raise FileFormatError(f"{path}: holds Python objects (pickles), which are refused")
    return int(np.prod(shape, dtype=object)) * dtype.itemsize


def read_npy(path):
    """The array of an .npy file, its header checked first as read_npz checks each member's: the
    bytes it claims must be in the file, and no Python objects. Any failure is a FileFormatError."""
    check_input(path)
    try:
        with open(path, "rb") as file:
            if file.read(4) == b"PK\x03\x04":
                raise FileFormatError(f"{path}: not an .npy array (an .npz archive?); save it with np.save")
            file.seek(0)
            claimed = _claimed_bytes(file, path, "the array")
            if os.fstat(file.fileno()).st_size - file.tell() < claimed:
                raise FileFormatError(f"{path}: is shorter than its header says (truncated or tampered)")
            file.seek(0)
            return np.load(file, allow_pickle=False)
    except FileFormatError:
        raise
    except (OSError, ValueError, EOFError, struct.error, OverflowError, MemoryError) as error:
        raise FileFormatError(f"{path}: not a readable .npy file ({error})") from None


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
