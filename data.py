"""Binary data sets: find, download, verify, validate, and batch. Returns arrays; knows no model.

    splits = data.load("binarized_mnist")          # {'train': (50000, 784), 'valid': …, 'test': …}
    splits = data.load("path/to/mine.npz")         # your own file, same format
    splits = data.load("path/to/mine_train.amat")  # Larochelle's text format (+ _valid, _test beside it)

Named sets are looked up in `data_dir`, else $MADE_DATA_DIR, else ~/.cache/made; a missing one is
downloaded there from its public home, written atomically and checked against its fingerprints
(order-free digests of its 0/1 values, `fingerprint`).
Every set, named or yours, must be 2-D, finite, 0/1 only and of one width in all splits; anything
else is refused with a DataError naming the file, the split and the first bad row and column.
What each named set is, where it comes from, and how to point at a local copy: DATA.md.
"""
import hashlib
import os
import urllib.request

import numpy as np

import files

SPLITS = ("train", "valid", "test")
_AUTHORS_REPO = "https://raw.githubusercontent.com/mgermain/MADE/master/datasets/"
_AUTHORS_RELEASE = "https://github.com/mgermain/MADE/releases/download/ICML2015/"

# name → public URL and each split's fingerprint (`fingerprint`: order-free, of the 0/1 values, not of
# the file), so any faithful copy passes, whatever its row order or how it was written. DATA.md says
# what each set is, where it comes from and how it is checked; web and rcv1 have no checked copy
# yet, so they are validated only.
DATASETS = {
    "binarized_mnist": (_AUTHORS_RELEASE + "binarized_mnist.npz",
                        {"train": "aae6de292e6b68d8", "valid": "d10b4edf2e076569", "test": "87ff96664646cc41"}),
    "dna": (_AUTHORS_REPO + "dna.npz",
            {"train": "46918e88b24d5ddd", "valid": "1f67d901fdc3ce6d", "test": "bb7d0812242a73e0"}),
    "mushrooms": (_AUTHORS_REPO + "mushrooms.npz",
                  {"train": "5f4228c538defab3", "valid": "da85fbc4cafc6272", "test": "a71e27a4fb68c6b0"}),
    "nips": (_AUTHORS_REPO + "nips.npz",
             {"train": "d4b4c83be88ae8c6", "valid": "fd71de12e627994c", "test": "5d0ee2e65ce1fc8c"}),
    "adult": (_AUTHORS_REPO + "adult.npz",
              {"train": "05a2f2360f58bc94", "valid": "089d992826f3d2b3", "test": "da8f06c5dd0926c5"}),
    "connect4": (_AUTHORS_REPO + "connect4.npz",
                 {"train": "a0b72dd7af70828c", "valid": "f8532cade072a975", "test": "e6529c6497b4e868"}),
    "ocr_letters": (_AUTHORS_REPO + "ocr_letters.npz",
                    {"train": "e918519b67bd2664", "valid": "5bb2aafc08bdb335", "test": "4e8b68ccef3e2844"}),
    "web": (_AUTHORS_REPO + "web.npz", None),
    "rcv1": (_AUTHORS_RELEASE + "rcv1.npz", None),
}
VERIFIED = tuple(name for name, (url, fingerprints) in DATASETS.items() if fingerprints)


class DataError(ValueError):
    """A data set cannot be used; the message names the file and, where it applies, split, row, column."""


# ----------------------------------------------------------------------------------------------
# Finding and fetching named sets


def data_dir(explicit=None):
    """Where named sets live: the argument, else $MADE_DATA_DIR, else ~/.cache/made."""
    if explicit:
        return os.path.expanduser(explicit)
    if os.environ.get("MADE_DATA_DIR"):
        return os.path.expanduser(os.environ["MADE_DATA_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "made")


def fingerprint(split):
    """A split's identity, whatever its row order: the first 16 hex digits of SHA-256 over its rows,
    each bit-packed (np.packbits, 8 values a byte), sorted as byte strings and joined. Two files
    with the same rows in another order have the same fingerprint; one bit changed gives another."""
    packed = np.packbits(np.asarray(split).astype(np.uint8), axis=1)
    return hashlib.sha256(b"".join(sorted(map(bytes, packed)))).hexdigest()[:16]


def row_order_fingerprint(split):
    """The same digest over the packed rows in their order: what tells the same rows in another
    order apart, for --resume, whose minibatches follow the rows' positions."""
    packed = np.packbits(np.asarray(split).astype(np.uint8), axis=1)
    return hashlib.sha256(packed.tobytes()).hexdigest()[:16]


def download(url, path, timeout=60):
    """Fetch url into path atomically; any failure leaves no file and raises DataError."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            payload = response.read()
            expected = response.headers.get("Content-Length")
        if expected is not None and len(payload) != int(expected):
            raise OSError(f"got {len(payload)} of {expected} bytes")
    except (OSError, ValueError) as error:  # URLError, timeouts and HTTP errors are OSErrors
        raise DataError(f"download of {url} failed ({error}); fetch it by hand and put it at {path}") from None
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with files.atomic_write(path) as file:
        file.write(payload)


def fetch(name, directory=None):
    """Path of the named set's .npz, downloading it first when missing."""
    url, fingerprints = DATASETS[name]
    folder = data_dir(directory)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise DataError(f"{folder}: is a file, not a folder (--data-dir or $MADE_DATA_DIR names the folder that "
                        f"holds the named data sets)")
    path = os.path.join(folder, name + ".npz")
    if not os.path.exists(path):
        print(f"{name}: not in {os.path.dirname(path)}, downloading {url}")
        try:
            download(url, path)
        except DataError as error:
            raise DataError(f"{name}: not in {folder}, and {error}; or name the folder that holds {name}.npz "
                            f"with --data-dir or $MADE_DATA_DIR") from None
        try:
            _check_fingerprints(read_npz_splits(path), fingerprints, path)
        except DataError:
            os.remove(path)  # a download that is not the data set must not stay in the cache
            raise
    return path


def _check_fingerprints(splits, fingerprints, path):
    for split, expected in (fingerprints or {}).items():
        if fingerprint(splits[split]) != expected:
            raise DataError(f"{path}: split '{split}' does not match its published fingerprint "
                            f"(a corrupt or different copy); delete the file and run again to re-download it")


# ----------------------------------------------------------------------------------------------
# Reading files


def read_npz_splits(path):
    """The three splits of an .npz in the MADE authors' format (keys train_data, valid_data, test_data)."""
    try:
        arrays = files.read_npz(path)
    except files.FileFormatError as error:
        raise DataError(str(error)) from None
    missing = [f"{split}_data" for split in SPLITS if f"{split}_data" not in arrays]
    if missing:
        raise DataError(f"{path}: missing key(s) {', '.join(missing)} "
                        f"(a data .npz holds train_data, valid_data and test_data)")
    return {split: arrays[f"{split}_data"] for split in SPLITS}


def amat_paths(path):
    """The three Larochelle .amat files that belong together: NAME_train.amat, NAME_valid.amat, NAME_test.amat."""
    stem = path[: -len(".amat")]
    for split in SPLITS:
        if stem.endswith("_" + split):
            stem = stem[: -len(split) - 1]
            break
    else:
        raise DataError(f"{path}: an .amat file must be named NAME_train.amat (with NAME_valid.amat and NAME_test.amat beside it)")
    return {split: f"{stem}_{split}.amat" for split in SPLITS}


def read_amat(path, split="train"):
    """One .amat text file: an example per line, its values separated by spaces (blank lines are
    skipped; errors name the line of the file, counted from 1 as an editor counts them)."""
    files.check_input(path, DataError)
    try:
        with open(path, "r", encoding="ascii") as file:
            lines = [(number, line) for number, line in enumerate(file.read().splitlines(), 1) if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read ({error})") from None
    if not lines:
        raise DataError(f"{path}: split '{split}' is empty")
    first_number, first = lines[0]
    width = len(first.split())
    rows = np.empty((len(lines), width), dtype=np.float64)  # float32 would turn 1e40 into inf
    for row, (number, line) in enumerate(lines):
        tokens = line.split()
        if len(tokens) != width:
            raise DataError(f"{path}: line {number} has {len(tokens)} values, line {first_number} has {width}")
        try:
            rows[row] = np.array(tokens, dtype=np.float64)
        except ValueError:
            column = next(c for c, token in enumerate(tokens) if not _is_number(token))
            raise DataError(f"{path}: line {number} column {column + 1} is {tokens[column]!r}, not a number") from None
        bad = ~((rows[row] == 0) | (rows[row] == 1))
        if bad.any():
            column = int(np.argmax(bad))
            raise DataError(f"{path}: line {number} column {column + 1} is {tokens[column]}; MADE data must be 0 or 1")
    return rows


def _is_number(token):
    try:
        float(token)
        return True
    except ValueError:
        return False


def validate(splits, source):
    """Check every split is a non-empty 2-D array of finite 0/1 values, all of one width.

    source: the file's name, or a dict split → file name when each split has its own file.
    Returns the splits as float32 arrays; raises DataError naming file, split, row and column.
    """
    checked = {}
    sources = source if isinstance(source, dict) else dict.fromkeys(SPLITS, source)
    for split in SPLITS:
        source = sources[split]
        array = np.asarray(splits[split])
        if array.dtype.kind not in "biuf":
            raise DataError(f"{source}: split '{split}' has dtype {array.dtype}; MADE data must be numbers 0/1")
        if array.ndim != 2:
            raise DataError(f"{source}: split '{split}' has {array.ndim} dimensions, expected 2 (examples × variables)")
        if array.shape[0] == 0 or array.shape[1] == 0:
            raise DataError(f"{source}: split '{split}' is empty (shape {array.shape})")
        bad = ~((array == 0) | (array == 1))  # NaN and inf fail both tests
        if bad.any():
            row, column = np.argwhere(bad)[0]
            raise DataError(f"{source}: split '{split}' row {row} column {column} is {array[row, column].item()!r}; "
                            f"MADE data must be 0 or 1")
        checked[split] = array.astype(np.float32, copy=False)
    widths = {split: array.shape[1] for split, array in checked.items()}
    if len(set(widths.values())) > 1:
        raise DataError(f"{sources['train']}: the splits have different widths {widths}")
    return checked


def locate(name_or_path, directory=None):
    """The files load() reads for a data set, without reading or downloading them."""
    if name_or_path in DATASETS:
        return [os.path.join(data_dir(directory), name_or_path + ".npz")]
    path = os.path.expanduser(name_or_path)
    if path.endswith(".amat"):
        try:
            return list(amat_paths(path).values())
        except DataError:
            return [path]
    return [path]


def load(name_or_path, directory=None):
    """{'train', 'valid', 'test'} → float32 (N, D) arrays of 0/1, from a named set or a file path."""
    if name_or_path in DATASETS:
        path = fetch(name_or_path, directory)
        splits = validate(read_npz_splits(path), path)
        _check_fingerprints(splits, DATASETS[name_or_path][1], path)
        return splits
    path = os.path.expanduser(name_or_path)
    if path.endswith(".amat"):
        paths = amat_paths(path)
        return validate({split: read_amat(p, split) for split, p in paths.items()}, paths)
    if path.endswith(".npz") or os.path.exists(path):
        files.check_input(path, DataError)
        return validate(read_npz_splits(path), path)
    raise DataError(f"unknown data set {name_or_path!r}: use one of {', '.join(DATASETS)}, "
                    f"or the path of an .npz or NAME_train.amat file")


def observed_mask(spec, shape, rng):
    """Which values of an (N, D) array count as observed, as an (N, D) boolean array.

    spec: 'top', 'bottom', 'left', 'right' (halves of square images), 'random:F' (each value
    observed with probability F), or the path of a .npy of booleans or 0/1, shaped (D,) or (≥ N, D).
    """
    n, n_in = shape
    if spec in ("top", "bottom", "left", "right"):
        side = int(round(n_in ** 0.5))
        if side * side != n_in:
            raise DataError(f"--observe {spec} needs square images; {n_in} variables are not a square "
                            f"(use random:F or a .npy file)")
        rows, columns = np.divmod(np.arange(n_in), side)
        half = side // 2
        pattern = {"top": rows < half, "bottom": rows >= half, "left": columns < half, "right": columns >= half}[spec]
        return np.broadcast_to(pattern, shape).copy()
    if spec.startswith("random:"):
        try:
            fraction = float(spec[len("random:"):])
        except ValueError:
            fraction = -1.0
        if not 0 <= fraction <= 1:
            raise DataError(f"--observe {spec}: F must be a number between 0 and 1")
        return rng.random(shape) < fraction
    if spec.endswith(".npy"):
        try:
            pattern = files.read_npy(spec)
        except files.FileFormatError as error:
            raise DataError(f"{error} (the observation mask)") from None
        if pattern.dtype.kind not in "biuf" or not np.isin(pattern, (0, 1)).all():
            raise DataError(f"{spec}: an observation mask must hold booleans or 0/1")
        if pattern.shape == (n_in,):
            return np.broadcast_to(pattern.astype(bool), shape).copy()
        if pattern.ndim == 2 and pattern.shape[1] == n_in and pattern.shape[0] >= n:
            return pattern[:n].astype(bool)
        raise DataError(f"{spec}: shape {pattern.shape} does not fit data of shape {shape}")
    raise DataError(f"--observe {spec!r}: use top, bottom, left, right, random:F or a .npy file")


def independent_pixel_nll(train, test):
    """The baseline every model must beat: test NLL of independent Bernoullis fitted on train (nats)."""
    p = np.clip(train.mean(axis=0, dtype=np.float64), 1e-6, 1 - 1e-6)
    log_p = test @ np.log(p) + (1 - test) @ np.log1p(-p)
    return float(-log_p.mean())
