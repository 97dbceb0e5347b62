"""Faults a user meets: resume, busy folders, full disks, links, huge mask counts, signals, leftover
temporary files. Each ends in one line naming the path or flag (status 2; 130 for an interrupt),
loses nothing finished and writes nothing outside the run folder."""
import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest

import cli
import evaluate
import files
import optim
import resume
import runs
import sample as sampling
import train
from conftest import one_line, random_binary, ROOT, run_cli, write_npz
from made import MADE


def cli_process(script, *args):
    return subprocess.Popen([sys.executable, os.path.join(ROOT, script), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def tiny(tmp_path):
    """A valid 16-column data set."""
    return write_npz(tmp_path / "tiny.npz", random_binary((200, 16), 1, 0.3), random_binary((50, 16), 2, 0.3),
                     random_binary((50, 16), 3, 0.3))


def snapshot(folder):
    """Bytes of every run file, to show that nothing changed."""
    return {name: (folder / name).read_bytes() for name in runs.RUN_FILES if (folder / name).exists()}


def interrupt_after_epochs(monkeypatch, n_epochs):
    """Make the next train.main get a Ctrl-C while its n-th checkpoint is being written."""
    saved, calls = resume.save_checkpoint, []

    def save_then_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == n_epochs:
            os.kill(os.getpid(), signal.SIGINT)  # deferred: the write goes on, the loop stops after it
        saved(*args, **kwargs)
    monkeypatch.setattr(resume, "save_checkpoint", save_then_interrupt)


# ----------------------------------------------------------------------------------------------
# 1. --resume continues the run that was started, with all of its settings


def test_resume_restores_the_epoch_cap(tiny, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    interrupt_after_epochs(monkeypatch, 1)
    assert train.main(["--dataset", tiny, "--hidden", "8", "--epochs", "3", "--patience", "50", "--out", str(out)]) == 130
    assert "continue with --resume --out" in capsys.readouterr().out
    monkeypatch.undo()
    assert train.main(["--resume", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == 3 and metrics["config"]["epochs"] == 3


def assert_same_weights(folder, other):
    """model.npz and checkpoint.npz of two run folders hold equal weights and optimizer states."""
    for name in ("model.npz", "checkpoint.npz"):
        a, b = files.read_npz(folder / name), files.read_npz(other / name)
        for key in a:
            if key.startswith(("param.", "optim.")):
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name} {key}")


def test_checkpoint_every_n_epochs_writes_both_files_together_and_resumes_exactly(tiny, tmp_path, monkeypatch, capsys):
    flags = ["--dataset", str(tiny), "--hidden", "8", "--masks", "2", "--patience", "50", "--seed", "5"]
    written, save, train_epoch = [], resume.save_checkpoint, optim.train_epoch

    def recording_save(path, model, optimizer, state, settings, **kwargs):
        written.append(state.epoch)
        save(path, model, optimizer, state, settings, **kwargs)

    def interrupted_in_epoch_5(*args, **kwargs):
        epochs.append(1)
        if len(epochs) == 5:
            raise KeyboardInterrupt   # as stop.check() does when Ctrl-C comes during a minibatch
        return train_epoch(*args, **kwargs)
    epochs = []
    monkeypatch.setattr(resume, "save_checkpoint", recording_save)
    monkeypatch.setattr(optim, "train_epoch", interrupted_in_epoch_5)
    out = tmp_path / "every3"
    assert train.main([*flags, "--epochs", "7", "--checkpoint-every", "3", "--out", str(out)]) == 130
    assert written == [3] and "holds epoch 3 (epoch 4 will be trained again)" in capsys.readouterr().out
    monkeypatch.setattr(optim, "train_epoch", train_epoch)
    # the folder is the run at epoch 3: its best model too, though a later epoch had improved on it
    assert train.main([*flags, "--epochs", "3", "--out", str(tmp_path / "three")]) == 0
    assert_same_weights(out, tmp_path / "three")

    written.clear()
    assert train.main(["--resume", "--out", str(out)]) == 0
    assert written == [6, 7]   # every 3 epochs (a setting of the run, restored) and the last
    assert train.main([*flags, "--epochs", "7", "--out", str(tmp_path / "straight")]) == 0
    assert_same_weights(out, tmp_path / "straight")
    metrics = [json.loads((folder / "metrics.json").read_text()) for folder in (out, tmp_path / "straight")]
    assert metrics[0]["test_nll"] == metrics[1]["test_nll"]
    assert [(r["train_nll"], r["valid_nll"]) for r in metrics[0]["history"]] == \
           [(r["train_nll"], r["valid_nll"]) for r in metrics[1]["history"]]


def test_a_stop_between_checkpoints_after_an_epochs_last_batch_writes_that_epoch(tiny, tmp_path, monkeypatch, capsys):
    validate, validations = runs.nll_per_example, []

    def validate_then_ctrl_c(*args, **kwargs):
        result = validate(*args, **kwargs)
        validations.append(1)
        if len(validations) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # deferred: after epoch 2's last evaluation batch
        return result
    monkeypatch.setattr(runs, "nll_per_example", validate_then_ctrl_c)
    out = tmp_path / "run"
    assert train.main(["--dataset", tiny, "--hidden", "8", "--checkpoint-every", "5", "--out", str(out)]) == 130
    assert "checkpoint.npz holds epoch 2: continue with --resume" in capsys.readouterr().out
    assert json.loads(str(files.read_npz(out / "checkpoint.npz")["train_state"]))["status"]["epoch"] == 2
    assert (out / "model.npz").exists()


def test_resuming_a_finished_run_changes_nothing(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    assert train.main(["--dataset", tiny, "--hidden", "8", "--epochs", "2", "--out", str(out)]) == 0
    before = snapshot(out)
    capsys.readouterr()
    assert train.main(["--resume", "--out", str(out)]) == 2
    one_line(capsys.readouterr().err, "finished", "--epochs")
    assert snapshot(out) == before


def test_a_missing_matplotlib_is_refused_before_training(tiny, tmp_path, monkeypatch, capsys):
    """The learning curve is drawn at the very end: hours of training must not end in an ImportError."""
    import importlib.util
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "matplotlib" else find_spec(name, *rest))
    out = tmp_path / "run"
    assert train.main(["--dataset", tiny, "--hidden", "8", "--epochs", "2", "--out", str(out)]) == 2
    one_line(capsys.readouterr().err, "matplotlib is not installed", "requirements.txt")
    assert not out.exists()


def test_resume_may_raise_the_cap_but_not_change_the_run(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    assert train.main(["--dataset", tiny, "--hidden", "8", "--epochs", "2", "--patience", "50", "--out", str(out)]) == 0
    assert train.main(["--resume", "--out", str(out), "--batch-size", "7"]) == 2
    one_line(capsys.readouterr().err, "--batch-size", "only --epochs")
    assert train.main(["--resume", "--out", str(out), "--epochs", "1"]) == 2
    one_line(capsys.readouterr().err, "--epochs 1")
    assert train.main(["--resume", "--out", str(out), "--epochs", "4", "--eval-batch-size", "7"]) == 0
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 4


def test_interrupted_before_the_first_checkpoint_says_so(tiny, tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(runs, "nll_per_example", interrupted)  # during epoch 1's validation
    assert train.main(["--dataset", tiny, "--hidden", "8", "--out", str(tmp_path / "run")]) == 130
    assert "nothing to resume" in capsys.readouterr().out
    monkeypatch.undo()
    assert train.main(["--dataset", tiny, "--hidden", "8", "--epochs", "1", "--out", str(tmp_path / "run")]) == 0


# ----------------------------------------------------------------------------------------------
# 2. One process per run folder


def test_a_busy_folder_is_refused_even_with_force(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    assert train.main(["--dataset", tiny, "--hidden", "8", "--epochs", "1", "--out", str(out)]) == 0
    before = snapshot(out)
    with runs.RunFolder(str(out)) as holder:
        holder.lock()
        capsys.readouterr()
        for extra in (["--force"], ["--resume"]):
            assert train.main(["--dataset", tiny, "--hidden", "8", "--epochs", "2", "--out", str(out), *extra]) == 2
            one_line(capsys.readouterr().err, str(out), "in use", str(os.getpid()))
    assert snapshot(out) == before


def test_a_killed_process_leaves_no_stuck_lock(tiny, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", f"import sys, time; sys.path.insert(0, {ROOT!r}); import runs; "
                               f"runs.RunFolder({str(out)!r}).lock(); print('locked', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    assert run_cli("train.py", "--dataset", tiny, "--hidden", 8, "--epochs", 1, "--out", out).returncode == 2
    holder.kill()
    holder.wait()
    assert run_cli("train.py", "--dataset", tiny, "--hidden", 8, "--epochs", 1, "--out", out).returncode == 0


# ----------------------------------------------------------------------------------------------
# 3. Operating-system errors are one line naming the user's path


def test_a_full_disk_is_one_line_naming_the_file_and_keeps_the_last_checkpoint(tiny, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert train.main(["--dataset", tiny, "--hidden", "8", "--epochs", "1", "--patience", "50", "--out", str(out)]) == 0
    before = (out / "checkpoint.npz").read_bytes()
    real_fsync = os.fsync

    def full(descriptor):
        if stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(descriptor)
    monkeypatch.setattr(files.os, "fsync", full)
    capsys.readouterr()
    assert train.main(["--resume", "--out", str(out), "--epochs", "3"]) == 2
    line = one_line(capsys.readouterr().err, "No space left on device")
    assert ".tmp" not in line and ("model.npz" in line or "checkpoint.npz" in line)
    assert (out / "checkpoint.npz").read_bytes() == before
    assert not [name for name in os.listdir(out) if name.endswith(".tmp")]


def test_an_out_that_is_a_file_or_empty_is_one_line(tiny, tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    assert train.main(["--dataset", tiny, "--out", str(tmp_path / "file")]) == 2
    one_line(capsys.readouterr().err, "is a file")
    assert (tmp_path / "file").read_text() == "mine"
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(["--dataset", tiny, "--out", ""])
    assert exit_info.value.code == 2


def test_an_uncreatable_run_folder_is_one_line(tiny, tmp_path, monkeypatch, capsys):
    def read_only(path, exist_ok=False):
        raise PermissionError(errno.EACCES, "Permission denied", path)
    monkeypatch.setattr(runs.os, "makedirs", read_only)
    assert train.main(["--dataset", tiny, "--out", str(tmp_path / "new")]) == 2
    one_line(capsys.readouterr().err, "new", "Permission denied")


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    path = write_npz(folder / "d.npz", *[random_binary((60, 16), i, 0.3) for i in range(3)])
    assert train.main(["--dataset", path, "--hidden", "8", "--masks", "8", "--epochs", "1", "--out", str(folder / "run")]) == 0
    return folder / "run"


def test_outputs_into_a_missing_folder_are_refused_before_any_work(small_run, tmp_path, capsys):
    assert sampling.main([str(small_run), "--out", str(tmp_path / "missing" / "s.png")]) == 2
    one_line(capsys.readouterr().err, "missing", "does not exist")
    assert evaluate.main([str(small_run), "--per-example", str(tmp_path / "missing" / "s.csv")]) == 2
    one_line(capsys.readouterr().err, "--per-example", "does not exist")
    (tmp_path / "folder.png").mkdir()
    assert sampling.main([str(small_run), "--out", str(tmp_path / "folder.png")]) == 2
    one_line(capsys.readouterr().err, "is a folder")
    (tmp_path / "s.npy").mkdir()  # where the array would go
    assert sampling.main([str(small_run), "--out", str(tmp_path / "s.png")]) == 2
    one_line(capsys.readouterr().err, "s.npy", "is a folder")


# ----------------------------------------------------------------------------------------------
# 4. Nothing lands outside the run folder


@pytest.mark.parametrize("resume", [False, True])
def test_train_log_is_never_written_through_a_link(tiny, tmp_path, capsys, resume):
    out, outside = tmp_path / "run", tmp_path / "outside.txt"
    outside.write_text("not yours\n")
    if resume:
        assert train.main(["--dataset", tiny, "--hidden", "8", "--epochs", "1", "--patience", "50", "--out", str(out)]) == 0
        (out / "train.log").unlink()
    else:
        out.mkdir()
        (out / ".lock").touch()  # a folder train.py used (stopped before its first checkpoint)
    (out / "train.log").symlink_to(outside)
    capsys.readouterr()
    flags = ["--resume", "--epochs", "2"] if resume else ["--dataset", tiny, "--hidden", "8", "--epochs", "1"]
    assert train.main([*flags, "--out", str(out)]) == 2
    one_line(capsys.readouterr().err, "train.log", "symbolic link")
    assert outside.read_text() == "not yours\n"


# ----------------------------------------------------------------------------------------------
# 5. Mask counts are bounded by what the model can give


def test_ensemble_sizes_are_checked_against_the_masks_trained(tiny, small_run, capsys):
    assert train.parse_args(["--dataset", tiny, "--masks", "1000000000"]).test_masks == 1000
    for flags in (["--masks", "1", "--test-masks", "4"], ["--masks", "8", "--valid-masks", "9"],
                  ["--masks", "0", "--test-masks", str(cli.MAX_ENSEMBLE + 1)]):
        with pytest.raises(SystemExit) as exit_info:
            train.parse_args(["--dataset", tiny, *flags])
        assert exit_info.value.code == 2
    capsys.readouterr()
    assert evaluate.main([str(small_run), "--test-masks", "9"]) == 2  # an 8-mask model
    one_line(capsys.readouterr().err, "--test-masks 9", "8 distinct masks")
    assert evaluate.main([str(small_run), "--test-masks", "8"]) == 0


def test_an_ensemble_holds_one_masks_results_at_a_time():
    model = MADE(10, [8], n_masks=0, seed=1, dtype="float64")
    x = random_binary((20000, 10), seed=2)

    def peak(n_masks):
        tracemalloc.start()
        model.log_prob(x, n_masks=n_masks, batch_size=1000)
        size = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return size
    per_mask = x.shape[0] * 8
    assert peak(40) < peak(2) + 4 * per_mask  # stacking 40 results would need 38 more


def test_an_ensemble_after_use_ordering_restores_that_ordering():
    model = MADE(8, [12], n_masks=3, seed=4)
    model.use_ordering(np.arange(8)[::-1], seed=5)
    masks = model.masks()
    x = random_binary((6, 8))
    assert model.log_prob(x, n_masks=2).shape == (6,)
    assert model.mask_index is None and list(model.ordering) == list(range(8))[::-1]
    assert all(np.array_equal(model.masks()[name], masks[name]) for name in masks)


# ----------------------------------------------------------------------------------------------
# 6. Signals outside the minibatch loop


@pytest.fixture
def long_validation(tmp_path):
    """A set whose training epoch is short and whose 10 000-mask validation takes over 10 s."""
    return write_npz(tmp_path / "long.npz", random_binary((100, 16), 1, 0.3), random_binary((2000, 16), 2, 0.3),
                     random_binary((20, 16), 3, 0.3))


def test_sigterm_during_a_long_validation_stops_promptly(long_validation, tmp_path):
    process = cli_process("train.py", "--dataset", long_validation, "--hidden", 20, "--masks", 0,
                          "--valid-masks", cli.MAX_ENSEMBLE, "--eval-batch-size", 100, "--out", tmp_path / "run")
    while "baseline" not in process.stdout.readline():  # the run is set up; its epoch takes milliseconds
        assert process.poll() is None, process.stderr.read()
    time.sleep(1)  # the validation is under way
    signalled = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert time.perf_counter() - signalled < 5, "the validation ensemble did not stop at the signal"
    assert process.returncode == 130 and "Traceback" not in stderr
    assert "interrupted during epoch 1" in stdout


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_evaluate_stops_in_one_line_on_a_signal(small_run, tmp_path, number):
    splits = [random_binary((n, 16), i, 0.3).astype(np.uint8) for i, n in enumerate((10, 10, 200000))]
    many = write_npz(tmp_path / "many.npz", *splits)
    process = cli_process("evaluate.py", small_run, "--dataset", many, "--test-masks", 8, "--batch-size", 1)
    progress = process.stderr.readline()  # after 5 s of 1.6 million one-example batches (about 30 s)
    assert "8-mask ensemble" in progress, progress
    process.send_signal(number)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    one_line(stderr, "evaluate.py: interrupted")


def test_a_stop_request_ends_an_ensemble_at_the_next_batch():
    model = MADE(10, [8], n_masks=0)
    stop = cli.DeferredSignals()
    stop.requested = True
    with pytest.raises(KeyboardInterrupt):
        model.log_prob(random_binary((50, 10)), n_masks=100, batch_size=10, progress=stop.check)


# ----------------------------------------------------------------------------------------------
# 7. Temporary files of killed writes


@pytest.mark.parametrize("how", ["resume", "force"])
def test_leftover_temporary_files_are_removed_when_the_folder_is_opened(tiny, tmp_path, how, capsys):
    out = tmp_path / "run"
    assert train.main(["--dataset", tiny, "--hidden", "8", "--epochs", "1", "--patience", "50", "--out", str(out)]) == 0
    for name in ("checkpoint.npz", "model.npz"):  # what writes killed before their renames leave
        with open(files.temporary_name(out / name), "wb") as half:
            half.write(b"half a checkpoint")
    (out / "notes.tmp").write_text("the user's own file")
    (out / ".notes.a1b2c3d4.tmp").write_text("and another, named as temporaries once were")
    flags = ["--resume", "--epochs", "2"] if how == "resume" else ["--dataset", tiny, "--hidden", "8", "--epochs", "1", "--force"]
    assert train.main([*flags, "--out", str(out)]) == 0
    assert "removed 2 temporary file(s)" in capsys.readouterr().out
    assert sorted(name for name in os.listdir(out) if "tmp" in name) == [".notes.a1b2c3d4.tmp", "notes.tmp"]


def test_atomic_write_flushes_the_folder_after_the_rename(tmp_path, monkeypatch):
    flushed = []
    real_fsync = os.fsync

    def recording(descriptor):
        flushed.append(stat.S_ISDIR(os.fstat(descriptor).st_mode))
        real_fsync(descriptor)
    monkeypatch.setattr(files.os, "fsync", recording)
    files.save_npz(tmp_path / "a.npz", {"a": np.arange(3)})
    assert flushed == [False, True]


# ----------------------------------------------------------------------------------------------
# 8. The smaller ones


def test_sampling_under_a_mask_outside_the_cycle_is_refused(small_run, tmp_path, capsys):
    assert sampling.main([str(small_run), "--mask", "50", "--no-nearest", "--out", str(tmp_path / "s.png")]) == 2
    one_line(capsys.readouterr().err, "--mask 50", "8 masks")
    assert not (tmp_path / "s.npy").exists()


def test_a_one_column_data_set_is_one_line(tmp_path, capsys):
    path = write_npz(tmp_path / "one.npz", *[random_binary((20, 1), i) for i in range(3)])
    assert train.main(["--dataset", path, "--out", str(tmp_path / "run")]) == 2
    one_line(capsys.readouterr().err, "1 variable", "at least 2")


def test_a_negative_seed_is_a_flag_error(small_run, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main([str(small_run), "--seed", "-1", "--observe", "top"])
    assert exit_info.value.code == 2 and "--seed" in capsys.readouterr().err


@pytest.mark.parametrize("tamper", ["float_batch_size", "history_not_dicts", "best_epoch_beyond", "bool_lr",
                                    "negative_epoch_lr"])
def test_a_hand_edited_training_state_is_refused(tiny, tmp_path, capsys, tamper):
    out = tmp_path / "run"
    assert train.main(["--dataset", tiny, "--hidden", "8", "--epochs", "2", "--patience", "50", "--out", str(out)]) == 0
    (out / "metrics.json").unlink()
    arrays = files.read_npz(out / "checkpoint.npz")
    state = json.loads(str(arrays["train_state"]))
    if tamper == "float_batch_size":
        state["run_config"]["batch_size"] = 100.0
    elif tamper == "history_not_dicts":
        state["history"] = [1, 2]
    elif tamper == "best_epoch_beyond":
        state["status"]["best_epoch"] = 7
    elif tamper == "bool_lr":
        state["run_config"]["lr"] = True
    elif tamper == "negative_epoch_lr":
        state["history"][0]["lr"] = -0.01
    files.save_npz(out / "checkpoint.npz", dict(arrays, train_state=files.json_array(state)))
    capsys.readouterr()
    assert train.main(["--resume", "--out", str(out), "--epochs", "3"]) == 2
    one_line(capsys.readouterr().err, "cannot resume", "checkpoint.npz")


def test_out_of_memory_advice_names_the_commands_own_flags(small_run, monkeypatch, capsys):
    def exhausted(*args, **kwargs):
        raise MemoryError("Out of memory allocating 8,000,000 bytes")
    monkeypatch.setattr(sampling, "sample_mixture", exhausted)
    assert sampling.main([str(small_run), "--no-nearest", "--out", str(small_run / "s.png")]) == 2
    line = one_line(capsys.readouterr().err, "8,000,000 bytes", "--n")
    assert "--batch-size" not in line and "--hidden" not in line


def test_an_amat_value_too_large_for_float32_is_reported_as_written(tmp_path, capsys):
    for split in ("train", "valid", "test"):
        (tmp_path / f"big_{split}.amat").write_text("0 1 1\n1 0 1\n" if split != "valid" else "0 1 1\n1 1e40 1\n")
    result = run_cli("train.py", "--dataset", tmp_path / "big_train.amat", "--out", tmp_path / "run")
    assert result.returncode == 2
    one_line(result.stderr, "big_valid.amat", "line 2 column 2", "1e40")
