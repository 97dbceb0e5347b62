"""The run folder: one training run's files, and everything that reads or writes them.

    RUN/model.npz            the best model so far (what MADE.load, sample.py and evaluate.py read)
    RUN/checkpoint.npz       the latest state: model, optimizer, TrainingState, the run's settings
                             (the two written together, after every --checkpoint-every epochs)
    RUN/metrics.json         written when the run finishes: the numbers, the history, the settings
    RUN/train.log            every line train.py printed
    RUN/learning_curve.png
    RUN/.lock                held by the process that trains in the folder

One process trains in a folder at a time: RunFolder takes an exclusive lock (flock) on RUN/.lock,
which the kernel releases when the process ends, however it ends, so a killed run never leaves
the folder stuck. Writes are atomic (files.atomic_write); the temporary files of a write that was
killed are removed when the folder is next opened for training. Nothing is written outside RUN:
a train.log that is a symbolic link is refused, and the other files replace a link, never follow it.
"""
import hashlib
import json
import math
import os
import platform
import sys
import time

import numpy as np

import backend
import cli
import data
import files
import kernels
from made import mixture_log_prob, model_from_arrays
from weights import read_model_file

RUN_FILES = ("checkpoint.npz", "model.npz", "metrics.json", "train.log", "learning_curve.png")


class RunError(ValueError):
    """A run folder cannot be used as asked; the message says what to do instead."""


# ----------------------------------------------------------------------------------------------
# The folder and its lock


class RunFolder:
    """A run folder held by this process: `with runs.open_for_training(...) as folder:`."""

    def __init__(self, path):
        self.path = path
        self._lock = None

    def file(self, name):
        return os.path.join(self.path, name)

    def log(self, message):
        """Append a line to the run's train.log (never through a symbolic link), then print it."""
        files.append_line(self.file("train.log"), message)
        Progress.clear()
        cli.say(message)

    def holds_run(self):
        return any(os.path.lexists(self.file(name)) for name in ("checkpoint.npz", "model.npz", "metrics.json"))

    def holds_others_files(self):
        """Whether the folder holds files that train.py did not put there: anything at all in a
        folder train.py never used (it leaves a .lock), where a model.npz or train.log is someone else's."""
        return not os.path.lexists(self.file(".lock")) and bool(os.listdir(self.path))

    def lock(self):
        """Take the folder's lock (files.lock_file on RUN/.lock), or raise RunError naming the
        process that holds it."""
        lock_path = self.file(".lock")
        try:
            self._lock, holder = files.lock_file(lock_path)
        except OSError as error:
            raise RunError(f"{lock_path}: cannot use it as the run folder's lock ({error.strerror or error})") from None
        if holder is not None:
            raise RunError(f"{self.path} is in use by another train.py (process {holder}): wait for it to "
                           f"finish or stop it, or choose another --out")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor releases the flock
            self._lock = None


def open_for_training(path, resume=False, force=False, inputs=()):
    """The run folder for train.py, created if needed, locked, with stale temporary files removed.

    A folder that holds a run is refused unless resume (it must have a checkpoint) or force (its
    run files are deleted, under the lock, so a busy folder is never wiped); a folder of someone
    else's files (no .lock: train.py never used it) is refused unless force. Before anything is
    created, the run's files are checked as every output is (check_outputs): each must be a
    regular file or absent, and none may be one of `inputs` (the data), which --force would
    otherwise delete."""
    if os.path.lexists(path) and not os.path.isdir(path):
        raise RunError(f"--out {path}: is a file, not a folder")
    if resume and not os.path.isdir(path):
        raise RunError(f"cannot resume: the folder {path} does not exist")
    folder = RunFolder(path)
    if os.path.isdir(path):
        if not resume and not force:
            if folder.holds_others_files():
                raise RunError(f"--out {path}: holds files but no run; choose a new or empty folder, or pass --force "
                               f"to write the run there (replacing any of {', '.join(RUN_FILES)})")
            if folder.holds_run():
                raise RunError(f"{path} already holds a run: pass --resume to continue it or --force to replace it")
        for name in RUN_FILES:
            check_outputs({"--out": folder.file(name)}, inputs, own_run=True)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise RunError(f"--out {path}: cannot create the folder ({error.strerror})") from None
    folder.lock()
    try:
        removed = files.remove_temporaries(path)
        if removed:
            cli.say(f"removed {len(removed)} temporary file(s) left in {path} by an interrupted write")
        files.unshare(folder.file("train.log"))  # appended to: never through a hard link into another folder
        if resume and not os.path.exists(folder.file("checkpoint.npz")):
            raise RunError(f"cannot resume: {folder.file('checkpoint.npz')} does not exist (no epoch of "
                           f"that run finished); start it again, with --force if the folder holds files")
        if not resume and (folder.holds_run() or force):
            if not force:
                raise RunError(f"{path} already holds a run: pass --resume to continue it or --force to replace it")
            for name in RUN_FILES:
                if os.path.lexists(folder.file(name)):
                    os.remove(folder.file(name))
    except BaseException:
        folder.__exit__()
        raise
    return folder


class Progress:
    """A line every few seconds during long work (rewritten in place on a terminal); `check`, when
    given, is called at every report, so a stop request can end the work there."""

    every = 5.0

    def __init__(self, what, unit, check=None):
        self.what, self.unit, self.check = what, unit, check
        self.started = self.last = time.perf_counter()

    def __call__(self, done, total):
        if self.check is not None:
            self.check()
        now = time.perf_counter()
        if now - self.last < self.every:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9)
        end = "\r" if sys.stderr.isatty() else "\n"
        cli.say(f"  {self.what}: {done}/{total} {self.unit} ({100 * done / total:.0f}%), {rate:.1f} {self.unit}/s",
                sys.stderr, end)

    @staticmethod
    def clear():
        if sys.stderr.isatty():
            print("\r\033[K", end="", file=sys.stderr, flush=True)


def check_outputs(outputs, inputs=(), own_run=False):
    """The one rule for every file a command writes, checked before any work. outputs: {what:
    path}, what naming the flag; inputs: the paths the command reads. Each output must be a regular
    file or not exist yet (files.check_output: never a folder, device, FIFO or socket, nor a link to
    one), in a writable folder; and it must not be an input (the same device and inode, so hard and
    symbolic links, '..' and case variants are caught), nor a file of a run folder (RUN_FILES beside
    a run, where the path resolves; own_run: train.py's own files are its to write), nor another
    output of the same command. inputs may be a dict {path: what it is}, to name it in the refusal."""
    inputs = inputs if isinstance(inputs, dict) else dict.fromkeys(inputs, "a file")
    for index, (what, path) in enumerate(outputs.items()):
        files.check_output(path, what)
        source = next((source for source in inputs if files.same_file(path, source)), None)
        if source is not None:
            where = "" if os.path.abspath(source) == os.path.abspath(path) else f" ({source})"
            raise files.FileWriteError(f"{what} {path}: is {inputs[source]}{where}, which this command reads; "
                                       f"choose another name")
        resolved = os.path.realpath(path)
        folder = RunFolder(os.path.dirname(resolved))
        if not own_run and os.path.basename(resolved) in RUN_FILES + (".lock",) and folder.holds_run():
            raise files.FileWriteError(f"{what} {path}: is a file of the run in {folder.path}; choose another name")
        for other, other_path in list(outputs.items())[:index]:
            if files.same_file(path, other_path):
                raise files.FileWriteError(f"{what} {path}: is also where {other} goes; choose another name")


# ----------------------------------------------------------------------------------------------
# The run's data


def model_digest(arrays):
    """A fingerprint of a model's arrays (best_model_arrays or what model.npz holds, its epoch
    aside): the first 16 hex digits of SHA-256 over every array's name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    for name in sorted(set(arrays) - {"epoch"}):
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{value.dtype.str}:{value.shape};".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()[:16]


def data_record(dataset, splits):
    """What identifies the data a run trains on: where they are (a named set, or a file's absolute
    path, so that the run finds them from any folder) and each split's order-free fingerprint
    (data.fingerprint), so that other values under the same name are noticed and the same rows in
    another order are not; and each split's row order (data.row_order_fingerprint), which only
    --resume needs: its minibatches follow the rows' positions."""
    return {"dataset": dataset, "fingerprints": {split: data.fingerprint(splits[split]) for split in data.SPLITS},
            "row_orders": {split: data.row_order_fingerprint(splits[split]) for split in data.SPLITS}}


def changed_splits(record, splits):
    """The splits whose values are not those the record's fingerprints name (all of them when the
    record names none)."""
    kept = record.get("fingerprints") if isinstance(record, dict) else None
    kept = kept if isinstance(kept, dict) else {}
    return [split for split in data.SPLITS if kept.get(split) != data.fingerprint(splits[split])]


def read_metrics(run_dir):
    """A finished run's metrics.json as a dict ({} when there is none, or it is not one)."""
    try:
        with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as file:
            metrics = json.load(file)
        return metrics if isinstance(metrics, dict) else {}
    except (OSError, ValueError):
        return {}


def run_record(run_dir, key, kind):
    """What a run keeps under `key` (of type kind): from metrics.json once it finished, else from
    its checkpoint (while it runs, or after an interruption); None when neither has one."""
    value = read_metrics(run_dir).get({"run_config": "config"}.get(key, key))
    if not isinstance(value, kind):
        try:
            value = checkpoint_state(run_dir)[key]
        except (OSError, ValueError, KeyError, TypeError, files.FileFormatError):
            return None
    return value if isinstance(value, kind) else None


def reordered_splits(record, splits):
    """The splits whose rows are the record's in another order (by row_orders, which --resume needs
    to continue exactly; records written before runs kept them say nothing)."""
    kept = record.get("row_orders") if isinstance(record, dict) else None
    if not isinstance(kept, dict):
        return []
    return [split for split in data.SPLITS if kept.get(split) != data.row_order_fingerprint(splits[split])]


def data_record_of(run_dir):
    """The run's data record (data_record), or None."""
    return run_record(run_dir, "data", dict)


def checkpoint_state(run_dir):
    """The JSON state in a run's checkpoint.npz (its settings, status, history and data record)."""
    path = os.path.join(run_dir, "checkpoint.npz")
    return files.read_json_array(files.read_npz(path, names={"train_state"})["train_state"], path)


def run_inputs(run_dirs, dataset=None, data_dir=None, observe=None):
    """The files a command reads from its runs, {path: what it is}: their own, their data sets',
    and an --observe file (no output may replace them)."""
    inputs = {observe: "the --observe file"} if observe and observe.endswith(".npy") else {}
    for run_dir in run_dirs:
        settings = settings_of(run_dir)
        named, directory = dataset or settings.get("dataset"), data_dir or settings.get("data_dir")
        found = data.locate(named, directory if isinstance(directory, str) else None) if isinstance(named, str) else []
        inputs.update({os.path.join(run_dir, name): f"the run's {name}" for name in RUN_FILES})
        inputs.update(dict.fromkeys(found, "the data set"))
    return inputs


# ----------------------------------------------------------------------------------------------
# Metrics and finished runs


def nll_per_example(model, x, n_masks, batch_size, progress=None):
    """−log p(x) of every example (host float64 array) under the ensemble of masks 0 … n_masks−1; or,
    given a list of models and one n_masks each, under their mixture (made.mixture_log_prob)."""
    models, counts = (model, n_masks) if isinstance(model, list) else ([model], [n_masks])
    log_p = mixture_log_prob(models, x, counts, batch_size=batch_size, progress=progress,
                             check_values=False)  # data.load checked them, and validation runs every epoch
    return -backend.to_host(log_p).astype(np.float64)


def standard_error(values):
    """The standard error of the mean of `values` (None for fewer than two: there is none)."""
    return float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else None


def machine_info(gpu):
    """What a figure was measured on: versions, platform, processor, and the GPU's name."""
    info = {"python": platform.python_version(), "numpy": np.__version__, "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "device": "cpu"}
    if gpu:
        cupy = backend.array_module(True)
        info["cupy"] = cupy.__version__
        info["device"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        info["cupy_tf32"] = os.environ.get("CUPY_TF32", "0")  # CuPy's own switch: "1" gives TF32 matrix products
        info["gpu_engine"] = "fused" if kernels.fused() else "unfused"  # kernels.py's, or engine.Engine's
    return info


def settings_of(run_dir):
    """The flags a run was trained with ({} when they cannot be read)."""
    return dict(run_record(run_dir, "run_config", dict) or {})


def load_run_data(dataset, directory, how):
    """data.load, for a data set named by a run's own settings: a file that is no longer where the
    run found it gets a refusal that says how to name it again (`how`: the command, e.g. --resume)."""
    try:
        return data.load(dataset, directory if isinstance(directory, str) else None)
    except data.DataError as error:
        if dataset not in data.DATASETS and not os.path.lexists(os.path.expanduser(dataset)):
            raise data.DataError(f"{dataset}: no such file (the run's data set); if it has moved, name it with "
                                 f"{how} --dataset NEW_PATH") from None
        raise error from None


def load_run(run_dir, gpu, dataset=None, data_dir=None, need_data=True, program="made"):
    """(model, splits or None, the run's settings) from a run folder, finished or not. A finished
    run's model.npz must be the model its metrics.json reports. The run's own data (no `dataset`
    given) are checked against its data record: a warning on stderr names a file that changed
    since the run trained on it."""
    if not os.path.isdir(run_dir):
        raise RunError(f"{run_dir}: no such run folder")
    path = os.path.join(run_dir, "model.npz")
    arrays = read_model_file(path)
    model = model_from_arrays(arrays, path, gpu)
    expected = read_metrics(run_dir).get("model_digest")
    if expected is not None and model_digest(arrays) != expected:
        raise RunError(f"{path}: is not the model the run's metrics.json reports (replaced since the run "
                       f"finished); `python train.py --resume --out {run_dir}` restores it from the checkpoint")
    settings = settings_of(run_dir)
    splits = None
    if need_data:
        own, dataset = dataset is None, dataset or settings.get("dataset")
        if not isinstance(dataset, str):
            raise data.DataError(f"{run_dir} does not name its data set: pass --dataset")
        directory = data_dir or settings.get("data_dir")
        splits = load_run_data(dataset, directory, f"{program} {run_dir}") if own else \
            data.load(dataset, directory if isinstance(directory, str) else None)
        if splits["train"].shape[1] != model.n_in:
            raise data.DataError(f"{dataset} has {splits['train'].shape[1]} variables, the model {model.n_in}")
        record = data_record_of(run_dir) if own else None
        changed = changed_splits(record, splits) if record else []
        if changed:
            cli.say(f"{program}: warning: {dataset} is not the data the run trained on (its {', '.join(changed)} "
                f"split{'s' if len(changed) > 1 else ''} changed since); the numbers are of the file as it is now",
                sys.stderr)
    return model, splits, settings


def load_runs(run_dirs, gpu, dataset=None, data_dir=None, need_data=True, program="made"):
    """(models, splits or None, settings of each) for one run or a mixture of runs (load_run for
    the first). Every run must have been trained on the same data as the first (the fingerprints of
    their data records, so the data need not be where they were: --dataset NEW_PATH names them) and
    be of the same width; one that is not is refused in one line naming it."""
    first, splits, settings = load_run(run_dirs[0], gpu, dataset, data_dir, need_data, program)
    models, all_settings = [first], [settings]
    fingerprints = (data_record_of(run_dirs[0]) or {}).get("fingerprints")
    for run_dir in run_dirs[1:]:
        model, _, other = load_run(run_dir, gpu, need_data=False, program=program)
        if model.n_in != first.n_in:
            raise data.DataError(f"{run_dir}: its model has {model.n_in} variables, that of {run_dirs[0]} "
                                 f"{first.n_in}: a mixture is of models of the same data")
        if not fingerprints or (data_record_of(run_dir) or {}).get("fingerprints") != fingerprints:
            raise data.DataError(f"{run_dir}: was not trained on the data set of {run_dirs[0]} (by their "
                                 f"fingerprints): a mixture is of models of the same data")
        models.append(model)
        all_settings.append(other)
    return models, splits, all_settings


def ensembles_of(run_dirs, models, settings, asked):
    """(masks of each run's density, their label): `asked` (--test-masks) where given, else what
    the run tested with, at most the masks it was trained on (a larger ensemble is refused). In a
    mixture a run of one mask is that mask: --test-masks is for the runs trained on masks."""
    counts, mixture = [], len(models) > 1
    for run_dir, model, run_settings in zip(run_dirs, models, settings):
        masks, available = asked or tested_with(run_settings, model), model.n_distinct_masks
        masks = 1 if mixture and available == 1 else masks
        if available is not None and masks > available:
            raise data.DataError(f"{f'{run_dir}: ' if mixture else ''}--test-masks {masks}: the model was trained on "
                                 f"{available} distinct mask{'s' if available > 1 else ''}, so an ensemble holds at "
                                 f"most {available}")
        counts.append(masks)
    return counts, " + ".join(f"{count}-mask ensemble" for count in counts)


def tested_with(settings, model):
    """The run's own test ensemble (no larger than the masks the model was trained on), else 1."""
    saved = settings.get("test_masks")
    if not isinstance(saved, int) or isinstance(saved, bool) or saved < 1:
        return 1
    return min(saved, model.n_distinct_masks or saved)
