"""The rules every command keeps (GUARANTEES.md), each checked in one place and tried here through
every command it concerns: what an output may be, what --force may delete, which temporary files
are this tool's, the run folder's one source of truth, standard streams and signals, the values
the Python API takes, and the flags a mode ignores."""
import errno
import importlib.util
import json
import os
import pathlib
import shutil
import stat
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import bench
import data
import evaluate
import files
import optim
import resume
import runs
import sample as sampling
import train
from ancestral import complete, sample
from conftest import one_line, random_binary, ROOT, run_cli, tiny_splits, write_npz
from made import MADE, CheckpointError


def load_experiment(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "experiments", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


completions = load_experiment("completions")
draw_masks = load_experiment("draw_masks")


@pytest.fixture
def tiny(tmp_path):
    return write_npz(tmp_path / "tiny.npz", *tiny_splits())


@pytest.fixture(scope="module")
def run1(tmp_path_factory):
    """A finished 16-variable run of 2 epochs (a module's commands read it and must never change it)."""
    folder = tmp_path_factory.mktemp("rules")
    path = write_npz(folder / "tiny.npz", *tiny_splits())
    assert train.main(["--dataset", path, "--hidden", "8", "--epochs", "2", "--out", str(folder / "run")]) == 0
    return folder / "run"


def run_bytes(folder):
    return {name: (folder / name).read_bytes() for name in runs.RUN_FILES if (folder / name).exists()}


# Every command that writes a file a user names, as (name, call(out) → exit status).
def writers(run):
    return {
        "evaluate --per-example": lambda out: evaluate.main([str(run), "--per-example", str(out)]),
        "sample --out": lambda out: sampling.main([str(run), "--n", "4", "--out", str(out)]),
        "bench --json": lambda out: bench.main(["--quick", "--json", str(out)]),
        "completions.py --out": lambda out: completions.main([str(run), "--out", str(out), "--observe", "random:0.5",
                                                             "--orderings", "1", "--examples", "2"]),
        "draw_masks.py --out": lambda out: draw_masks.main(["--out", str(out)]),
    }


def output_name(command, stem="out"):
    return f"{stem}.{'csv' if 'per-example' in command else 'json' if 'json' in command else 'png'}"


# ----------------------------------------------------------------------------------------------
# 1. Outputs: a regular file or nothing yet; never an input or a run's file, whatever the path


@pytest.mark.parametrize("kind", ["fifo", "folder", "link to a folder", "link to a device"])
@pytest.mark.parametrize("command", list(writers("RUN")))
def test_an_output_that_exists_must_be_a_regular_file(run1, tmp_path, capsys, command, kind):
    out = tmp_path / output_name(command)
    if kind == "fifo":
        os.mkfifo(out)
    elif kind == "folder":
        out.mkdir()
    elif kind == "link to a folder":
        (tmp_path / "elsewhere").mkdir()
        out.symlink_to(tmp_path / "elsewhere")
    else:
        out.symlink_to("/dev/null")
    before = run_bytes(run1)
    assert writers(run1)[command](out) == 2
    one_line(capsys.readouterr().err, str(out))
    assert (stat.S_ISFIFO(os.lstat(out).st_mode) if kind == "fifo" else
            out.is_dir() and not out.is_symlink() if kind == "folder" else out.is_symlink())
    assert run_bytes(run1) == before and not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


@pytest.mark.parametrize("how", ["hard link", "symbolic link", "dot-dot"])
@pytest.mark.parametrize("command", list(writers("RUN")))
def test_an_output_is_never_an_input_or_a_run_file_by_any_path(run1, tmp_path, capsys, command, how):
    """An input is known by its device and inode, a run's file by the path it resolves to. bench
    and draw_masks read no file: a hard link of a run's file under another name is only a name to
    them, which the write replaces (atomically, never writing into the file it linked to)."""
    reads_files = command not in ("bench --json", "draw_masks.py --out")
    targets = [pathlib.Path(runs.settings_of(str(run1))["dataset"])] if reads_files else []
    targets += [run1 / "checkpoint.npz", run1 / "model.npz"]
    before = {target: target.read_bytes() for target in targets}
    for target in targets:
        out = tmp_path / output_name(command, target.stem)
        if how == "hard link":
            os.link(target, out)
        elif how == "symbolic link":
            out.symlink_to(target)
        else:
            out = target.parent / ".." / target.parent.name / target.name
        status = writers(run1)[command](out)
        if reads_files or how != "hard link":
            assert status == 2, (command, out)
            one_line(capsys.readouterr().err, str(out))
        if how != "dot-dot":
            out.unlink()
    assert {target: target.read_bytes() for target in targets} == before


def test_bench_refuses_a_run_file_before_measuring(run1, capsys):
    before = run_bytes(run1)
    assert bench.main(["--quick", "--json", str(run1 / "checkpoint.npz")]) == 2
    one_line(capsys.readouterr().err, "--json", "checkpoint.npz", "run")
    assert run_bytes(run1) == before


def test_force_never_deletes_an_input_and_a_data_file_is_not_a_run(tmp_path, capsys):
    folder = tmp_path / "d"
    folder.mkdir()
    data_file = write_npz(folder / "model.npz", *tiny_splits())  # a data set that happens to be called model.npz
    before = pathlib.Path(data_file).read_bytes()
    flags = ["--dataset", data_file, "--hidden", "8", "--epochs", "1", "--out", str(folder)]
    assert train.main(flags) == 2
    line = one_line(capsys.readouterr().err, "holds files but no run")
    assert "already holds a run" not in line
    assert train.main([*flags, "--force"]) == 2
    one_line(capsys.readouterr().err, "model.npz", "--dataset")
    assert pathlib.Path(data_file).read_bytes() == before and sorted(os.listdir(folder)) == ["model.npz"]


@pytest.mark.parametrize("name", ["learning_curve.png", "metrics.json", "train.log"])
def test_a_run_file_that_is_not_a_regular_file_is_found_before_training(tiny, tmp_path, capsys, name):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").touch()
    (out / name).mkdir()
    assert train.main(["--dataset", tiny, "--hidden", "8", "--epochs", "1", "--out", str(out), "--force"]) == 2
    one_line(capsys.readouterr().err, name, "folder")
    assert not (out / "checkpoint.npz").exists()


def test_cleanup_removes_only_this_tools_temporaries_whose_writer_is_gone(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    assert train.main(["--dataset", tiny, "--hidden", "8", "--epochs", "1", "--patience", "50", "--out", str(out)]) == 0
    (out / ".thesis.20250101.tmp").write_text("the user's own draft")
    with files.atomic_write(out / "samples.png") as writing:  # another command, writing there now
        writing.write(b"half a picture")
        in_flight = [name for name in os.listdir(out) if "samples.png" in name]
        dead = files.temporary_name(out / "model.npz")  # the temporary of a writer that was killed
        pathlib.Path(dead).write_bytes(b"half a model")
        assert train.main(["--dataset", tiny, "--hidden", "8", "--epochs", "1", "--out", str(out), "--force"]) == 0
        assert "removed 1 temporary file" in capsys.readouterr().out
        assert set(in_flight) <= set(os.listdir(out)) and not os.path.exists(dead)
    assert (out / "samples.png").read_bytes() == b"half a picture"
    assert (out / ".thesis.20250101.tmp").read_text() == "the user's own draft"


# ----------------------------------------------------------------------------------------------
# 2. The run folder has one source of truth: the checkpoint


CRASH_AT_RENAME = """
import os, sys
sys.path.insert(0, {root!r})
import files, train
renames, crash_at = [0], {crash_at}
real_replace = os.replace
def replace(source, target):
    real_replace(source, target)
    renames[0] += 1
    if renames[0] == crash_at:
        os._exit(9)  # killed right after this rename
files.os.replace = replace
sys.exit(train.main({flags!r}))
"""


@pytest.mark.parametrize("crash_at", [2, 5, 6, 7])  # renames: epoch e's checkpoint 2e − 1, its model 2e; then the curve
def test_every_state_a_crash_leaves_is_finishable_with_the_same_numbers(tiny, tmp_path, crash_at):
    """A run is killed right after one of the renames of its writes (between model.npz's and
    checkpoint.npz's included): --resume then finishes it with the numbers of a run never killed."""
    flags = ["--dataset", tiny, "--hidden", "8", "--epochs", "3", "--patience", "50"]
    straight = tmp_path / "straight"
    assert train.main([*flags, "--out", str(straight)]) == 0
    out = tmp_path / "crashed"
    script = CRASH_AT_RENAME.format(root=ROOT, crash_at=crash_at, flags=[*flags, "--out", str(out)])
    assert subprocess.run([sys.executable, "-c", script], capture_output=True).returncode == 9
    result = run_cli("train.py", "--resume", "--out", out)
    assert result.returncode == 0, result.stderr
    finished = json.loads((out / "metrics.json").read_text())
    expected = json.loads((straight / "metrics.json").read_text())
    assert finished["test_nll"] == expected["test_nll"] and finished["best_epoch"] == expected["best_epoch"]
    assert MADE.load(out / "model.npz").params.keys() == MADE.load(straight / "model.npz").params.keys()
    for name, value in MADE.load(out / "model.npz").params.items():
        np.testing.assert_array_equal(value, MADE.load(straight / "model.npz").params[name])


def test_a_model_npz_from_another_run_is_never_tested(tmp_path, capsys):
    """Two runs of one configuration and length on different data: A's model.npz copied into B,
    which then finishes: B's metrics are B's own, and its model.npz is its own again."""
    folders = {}
    for name, seed in (("a", 1), ("b", 2)):
        path = write_npz(tmp_path / f"{name}.npz", *tiny_splits(seed))
        folders[name] = tmp_path / name
        assert train.main(["--dataset", path, "--hidden", "8", "--epochs", "2", "--out", str(folders[name])]) == 0
    own = json.loads((folders["b"] / "metrics.json").read_text())["test_nll"]
    own_model = (folders["b"] / "model.npz").read_bytes()
    (folders["b"] / "metrics.json").unlink()
    shutil.copy(folders["a"] / "model.npz", folders["b"] / "model.npz")
    assert train.main(["--resume", "--out", str(folders["b"])]) == 0
    assert json.loads((folders["b"] / "metrics.json").read_text())["test_nll"] == own
    for name, value in MADE.load(folders["b"] / "model.npz").params.items():
        np.testing.assert_array_equal(value, np.load(io_bytes(own_model))[f"param.{name}"])
    capsys.readouterr()
    shutil.copy(folders["a"] / "model.npz", folders["b"] / "model.npz")  # after it finished
    assert evaluate.main([str(folders["b"])]) == 2
    one_line(capsys.readouterr().err, "model.npz", "not the model")


def io_bytes(payload):
    import io
    return io.BytesIO(payload)


def test_a_second_ctrl_c_during_a_write_names_the_epoch_the_checkpoint_holds(tiny, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    real_replace, calls = os.replace, []

    def replace_then_second_interrupt(source, target):
        real_replace(source, target)
        calls.append(target)
        if len(calls) == 3:  # epoch 2's first rename: the user presses Ctrl-C twice
            raise KeyboardInterrupt
    monkeypatch.setattr(files.os, "replace", replace_then_second_interrupt)
    assert train.main(["--dataset", tiny, "--hidden", "8", "--epochs", "5", "--patience", "50", "--out", str(out)]) == 130
    monkeypatch.undo()
    held = resume.checkpoint_epoch(str(out / "checkpoint.npz"))
    assert f"holds epoch {held}" in capsys.readouterr().out
    assert train.main(["--resume", "--out", str(out)]) == 0


def test_resuming_a_hard_linked_copy_never_writes_into_the_original(tiny, tmp_path):
    original, copy = tmp_path / "a", tmp_path / "b"
    assert train.main(["--dataset", tiny, "--hidden", "8", "--epochs", "1", "--patience", "50", "--out", str(original)]) == 0
    copy.mkdir()
    for name in os.listdir(original):  # cp -al a b
        os.link(original / name, copy / name)
    before = {name: (original / name).read_bytes() for name in os.listdir(original)}
    assert train.main(["--resume", "--out", str(copy), "--epochs", "3"]) == 0
    assert {name: (original / name).read_bytes() for name in os.listdir(original)} == before
    assert "after epoch 1 (at most 3" in (copy / "train.log").read_text()
    assert "after epoch 1 (at most 3" not in (original / "train.log").read_text()


# ----------------------------------------------------------------------------------------------
# 3. Standard streams, paths, signals


def closing(descriptor):
    return lambda: os.close(descriptor)


@pytest.mark.parametrize("descriptor", [0, 1, 2])
def test_train_works_with_any_standard_stream_closed(tiny, tmp_path, descriptor):
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--dataset", tiny, "--hidden", "8",
                             "--epochs", "2", "--out", str(out)], preexec_fn=closing(descriptor),
                            stdout=subprocess.DEVNULL if descriptor == 1 else subprocess.PIPE,
                            stderr=subprocess.DEVNULL if descriptor == 2 else subprocess.PIPE, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (out / "metrics.json").exists() and "test NLL" in (out / "train.log").read_text()
    assert b"test NLL" not in (out / "metrics.json").read_bytes()


@pytest.mark.parametrize("descriptor", [1, 2])
def test_evaluate_and_sample_work_with_a_standard_stream_closed(run1, tmp_path, descriptor):
    for script, extra, written in (("evaluate.py", ["--per-example", tmp_path / "p.csv"], tmp_path / "p.csv"),
                                   ("sample.py", ["--n", "3", "--out", tmp_path / "s.png"], tmp_path / "s.npy")):
        result = subprocess.run([sys.executable, os.path.join(ROOT, script), str(run1), *map(str, extra)],
                                preexec_fn=closing(descriptor), capture_output=False, timeout=120,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert result.returncode == 0 and written.exists(), script


def test_a_path_that_is_not_utf8_is_used_as_given(tiny, tmp_path, run1):
    out = os.path.join(os.fsencode(tmp_path), b"r\xfe")
    result = run_cli("train.py", "--dataset", tiny, "--hidden", "8", "--epochs", "1", "--out", os.fsdecode(out))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert os.path.exists(os.path.join(out, b"metrics.json"))
    per_example = os.path.join(os.fsencode(tmp_path), b"p\xfe.csv")
    result = run_cli("evaluate.py", run1, "--per-example", os.fsdecode(per_example))
    assert result.returncode == 0 and os.path.exists(per_example), result.stderr


STOP_DURING_IMPORTS = """
import os, runpy, signal, sys
class StopWhenNumpyIsImported:
    def find_spec(self, name, path=None, target=None):
        if name == "numpy":
            os.kill(os.getpid(), signal.{signal})
        return None
sys.meta_path.insert(0, StopWhenNumpyIsImported())
sys.argv = [{script!r}, "--help"]
sys.path.insert(0, {root!r})
runpy.run_path({script!r}, run_name="__main__")
"""


@pytest.mark.parametrize("number", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("script", ["train.py", "evaluate.py", "sample.py", "bench.py"])
def test_a_stop_during_the_imports_is_one_line(script, number):
    code = STOP_DURING_IMPORTS.format(signal=number, script=os.path.join(ROOT, script), root=ROOT)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 130, result.stderr
    one_line(result.stderr, f"{script}: interrupted")


# ----------------------------------------------------------------------------------------------
# 4. Values: checked where they come in, after any cast


def test_weights_beyond_float32_are_refused_after_the_cast(run1, tmp_path, capsys):
    arrays = dict(np.load(run1 / "model.npz"))
    arrays["param.b0"] = np.full(arrays["param.b0"].shape, 1e39)  # finite in float64, inf in float32
    folder = tmp_path / "huge"
    shutil.copytree(run1, folder)
    np.savez(folder / "model.npz", **arrays)
    with pytest.raises(CheckpointError, match="b0"):
        MADE.load(folder / "model.npz")
    assert evaluate.main([str(folder)]) == 2
    one_line(capsys.readouterr().err, "model.npz", "b0")


def test_the_api_checks_values_before_it_casts_them():
    model = MADE(4, [6])
    with pytest.raises(ValueError, match="x"):
        model.log_prob(np.array([[1 + 1e-9, 0, 1, 0]]))
    with pytest.raises(ValueError, match="x"):
        model.forward(np.array([[1, 0, 1, 1e-12]]))


@pytest.mark.parametrize("options, argument", [(dict(direct="no"), "direct"), (dict(cond_mask=1), "cond_mask"),
                                               (dict(ordering=[0, 1, 2, 5.9]), "ordering"),
                                               (dict(ordering=[0.0, 1.0, 2.0, 3.0]), "ordering"),
                                               (dict(n_masks=2.0), "n_masks"), (dict(seed=1.5), "seed")])
def test_the_api_refuses_options_of_the_wrong_type(options, argument):
    with pytest.raises(ValueError, match=argument):
        MADE(4, [6], **options)


@pytest.mark.parametrize("rule, options, argument", [
    (optim.SGD, dict(lr=float("nan")), "lr"), (optim.SGD, dict(lr=-1), "lr"), (optim.SGD, dict(decrease=-1), "decrease"),
    (optim.AdaGrad, dict(lr=float("inf")), "lr"), (optim.AdaGrad, dict(eps=0), "eps"),
    (optim.AdaDelta, dict(rho=5), "rho"), (optim.AdaDelta, dict(rho=-0.1), "rho"), (optim.AdaDelta, dict(eps=-1), "eps"),
    (optim.Adam, dict(lr=0), "lr"), (optim.Adam, dict(beta1=1), "beta1"), (optim.Adam, dict(beta2=-1), "beta2"),
    (optim.Adam, dict(eps=float("nan")), "eps")])
def test_optimizers_refuse_settings_outside_their_rule(rule, options, argument):
    with pytest.raises(ValueError, match=argument):
        rule(MADE(4, [6]), **options)


def test_optimizers_refuse_parameters_that_are_not_arrays():
    with pytest.raises(ValueError, match="params"):
        optim.AdaGrad({"W0": [[0.0, 1.0]], "b0": [0.0]})
    with pytest.raises(ValueError, match="params"):
        optim.Adam([np.zeros(3)])


def test_sampling_and_completion_refuse_bad_arguments():
    model = MADE(6, [8])
    x = random_binary((3, 6))
    for bad in (dict(method="bogus"), dict(n=0), dict(n=2.5)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            sample(model, **dict(dict(n=2), **bad))
    for x_bad, observed, options, argument in ((x[0], np.ones(6, bool), {}, "x"), (x[:, :5], np.ones(6, bool), {}, "x"),
                                               (x, np.ones(6, bool), dict(n=0), "n"),
                                               (x, np.ones(5, bool), {}, "observed"),
                                               (x, np.ones(6, bool), dict(method="bogus"), "method")):
        with pytest.raises(ValueError, match=argument):
            complete(model, x_bad, observed, **options)


def test_an_all_zero_compressed_split_loads_and_a_lying_header_is_refused(tmp_path):
    zeros = np.zeros((3000, 784), np.float32)  # compresses about 1000:1
    np.savez_compressed(tmp_path / "zeros.npz", train_data=zeros, valid_data=zeros[:10], test_data=zeros[:10])
    assert data.load(str(tmp_path / "zeros.npz"))["train"].shape == (3000, 784)
    liar = tmp_path / "liar.npz"  # a header that claims 10^12 rows over a few bytes of data
    with zipfile.ZipFile(liar, "w", zipfile.ZIP_DEFLATED) as archive:
        for split in data.SPLITS:
            header = {"descr": "<f4", "fortran_order": False, "shape": (10 ** 12, 784)}
            with archive.open(f"{split}_data.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array_header_1_0(member, header)
                member.write(b"\0" * 4096)
    with pytest.raises(data.DataError, match="liar.npz"):
        data.load(str(liar))


@pytest.mark.parametrize("flag", ["--dataset", "--observe"])
def test_a_fifo_given_as_an_input_is_refused_without_waiting(run1, tmp_path, flag):
    fifo = tmp_path / ("pipe.npz" if flag == "--dataset" else "pipe.npy")
    os.mkfifo(fifo)
    if flag == "--dataset":
        result = run_cli("train.py", "--dataset", fifo, "--out", tmp_path / "run", timeout=30)
    else:
        result = run_cli("evaluate.py", run1, "--observe", fifo, timeout=30)
    assert result.returncode == 2
    one_line(result.stderr, str(fifo), "not a regular file")


@pytest.mark.parametrize("flags, complaint", [
    (["--masks", "1", "--shuffle", "ordering"], "--shuffle"),
    (["--masks", "4", "--shuffle", "once"], "once"),
    (["--data-dir", "somewhere"], "--data-dir")])
def test_train_refuses_flags_its_settings_ignore(tiny, flags, complaint, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(["--dataset", tiny, *flags])
    assert exit_info.value.code == 2 and complaint in capsys.readouterr().err


@pytest.mark.parametrize("script, flags, complaint", [
    ("evaluate", ["--seed", "3"], "--seed"),
    ("sample", ["--examples", "3"], "--examples"), ("sample", ["--completions", "3"], "--completions"),
    ("sample", ["--from", "valid"], "--from"), ("sample", ["--observe", "top"], "--observe"),
    ("sample", ["--complete", "--n", "5"], "--n"), ("sample", ["--complete", "--no-nearest"], "--no-nearest")])
def test_evaluate_and_sample_refuse_flags_their_mode_ignores(run1, script, flags, complaint, capsys):
    command = evaluate if script == "evaluate" else sampling
    assert command.main([str(run1), *flags]) == 2
    one_line(capsys.readouterr().err, complaint)


# ----------------------------------------------------------------------------------------------
# 5. Messages that say what to do


def test_amat_errors_name_the_line_of_the_file(tmp_path, capsys):
    for split in data.SPLITS:
        text = "0 1 1\n1 0 1\n" if split != "valid" else "0 1 1\n\n1 0\n"  # a blank line 2, then a short line 3
        (tmp_path / f"m_{split}.amat").write_text(text)
    with pytest.raises(data.DataError, match="m_valid.amat: line 3 has 2 values"):
        data.load(str(tmp_path / "m_train.amat"))
    (tmp_path / "m_valid.amat").write_text("0 1 1\n\n1 x 1\n")
    with pytest.raises(data.DataError, match="line 3 column 2 is 'x'"):
        data.load(str(tmp_path / "m_train.amat"))


def test_data_that_moved_suggest_naming_them_again(tmp_path, capsys):
    path = write_npz(tmp_path / "tiny.npz", *tiny_splits())
    out = tmp_path / "run"
    assert train.main(["--dataset", path, "--hidden", "8", "--epochs", "1", "--patience", "50", "--out", str(out)]) == 0
    os.rename(path, tmp_path / "moved.npz")
    capsys.readouterr()
    assert train.main(["--resume", "--out", str(out), "--epochs", "2"]) == 2
    one_line(capsys.readouterr().err, "tiny.npz", "--dataset NEW_PATH")
    assert evaluate.main([str(out)]) == 2
    one_line(capsys.readouterr().err, "tiny.npz", "--dataset NEW_PATH")


def test_out_of_memory_advice_names_the_direct_weights_when_they_are_the_cause(tmp_path, monkeypatch, capsys):
    path = write_npz(tmp_path / "wide.npz", *tiny_splits(width=300))

    def exhausted(*args, **kwargs):
        raise MemoryError("Out of memory allocating 360,000 bytes")
    monkeypatch.setattr(train, "MADE", exhausted)
    assert train.main(["--dataset", path, "--hidden", "8", "--direct", "--out", str(tmp_path / "run")]) == 2
    one_line(capsys.readouterr().err, "--direct", "300×300")


def test_a_full_disk_while_writing_the_lock_names_the_file(tiny, tmp_path, monkeypatch, capsys):
    real_write = os.write

    def full(descriptor, payload):
        if os.readlink(f"/proc/self/fd/{descriptor}").endswith(".lock"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(descriptor, payload)
    monkeypatch.setattr(runs.os, "write", full)
    assert train.main(["--dataset", tiny, "--hidden", "8", "--epochs", "1", "--out", str(tmp_path / "run")]) == 2
    one_line(capsys.readouterr().err, ".lock", "No space left on device")


def test_missing_data_are_found_before_the_run_folder_is_made(tmp_path, monkeypatch, capsys):
    def offline(url, timeout):
        raise OSError("network unreachable")
    monkeypatch.setattr(data.urllib.request, "urlopen", offline)
    monkeypatch.delenv("MADE_DATA_DIR", raising=False)
    assert train.main(["--dataset", "dna", "--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "run")]) == 2
    one_line(capsys.readouterr().err, "dna", "--data-dir", "MADE_DATA_DIR")
    assert not (tmp_path / "run").exists()


def test_a_checkpoint_that_lacks_its_best_model_is_refused(tmp_path, capsys):
    """The checkpoint holds the best model (best.*) whenever it is not the current one; one without
    it cannot be finished, and says so."""
    path = write_npz(tmp_path / "tiny.npz", *tiny_splits())
    out = tmp_path / "run"
    assert train.main(["--dataset", path, "--hidden", "8", "--optimizer", "sgd", "--lr", "3", "--epochs", "5",
                       "--patience", "50", "--out", str(out)]) == 0
    arrays = dict(np.load(out / "checkpoint.npz"))
    state = json.loads(str(arrays["train_state"]))
    assert state["status"]["best_epoch"] < state["status"]["epoch"]  # so the best model is not the current one
    np.savez(out / "checkpoint.npz", **{key: value for key, value in arrays.items() if not key.startswith("best.")})
    (out / "metrics.json").unlink()
    assert train.main(["--resume", "--out", str(out)]) == 2
    one_line(capsys.readouterr().err, "lacks its best model")
