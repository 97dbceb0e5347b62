"""What the tools promise (GUARANTEES.md), case by case: no file of the user's or of a run is
overwritten, no number is reported that the files do not back, and each refusal is one line,
before any work, with exit status 2."""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import evaluate
import files
import runs
import sample as sampling
import train
from conftest import one_line, random_binary, ROOT, run_cli, tiny_splits, write_npz
from made import MADE


@pytest.fixture
def tiny(tmp_path):
    return write_npz(tmp_path / "tiny.npz", *tiny_splits())


@pytest.fixture
def run1(tiny, tmp_path):
    out = tmp_path / "run1"
    assert train.main(["--dataset", tiny, "--hidden", "20", "--epochs", "3", "--out", str(out)]) == 0
    return out


def snapshot(*paths):
    return {str(path): path.read_bytes() for path in paths if path.is_file()}


# ----------------------------------------------------------------------------------------------
# 1–3. Outputs never replace an input, a run's file, or each other


def test_sample_never_writes_over_its_inputs_or_writes_its_array_over_its_picture(run1, tmp_path, capsys):
    mine = tmp_path / "mine.npy"
    np.save(mine, np.arange(16) < 8)
    before = snapshot(mine)
    assert sampling.main([str(run1), "--complete", "--observe", str(mine), "--out", str(tmp_path / "mine.png")]) == 2
    one_line(capsys.readouterr().err, "mine.npy", "reads")
    assert snapshot(mine) == before and not (tmp_path / "mine.png").exists()
    assert sampling.main([str(run1), "--n", "10", "--out", str(tmp_path / "out.npy")]) == 2
    one_line(capsys.readouterr().err, "--out", ".png")
    assert not (tmp_path / "out.npy").exists()


@pytest.mark.parametrize("name", ["model.npz", "checkpoint.npz", "metrics.json", "train.log", "learning_curve.png"])
def test_no_output_replaces_a_file_of_a_run(run1, name, capsys):
    before = snapshot(*(run1 / file for file in runs.RUN_FILES))
    assert evaluate.main([str(run1), "--per-example", str(run1 / name)]) == 2
    one_line(capsys.readouterr().err, "--per-example", name)
    if name.endswith(".png"):
        assert sampling.main([str(run1), "--out", str(run1 / name)]) == 2
        one_line(capsys.readouterr().err, "--out", "run")
    assert snapshot(*(run1 / file for file in runs.RUN_FILES)) == before


def test_no_output_replaces_the_data(run1, tiny, capsys):
    before = snapshot(pathlib.Path(tiny))
    assert evaluate.main([str(run1), "--per-example", tiny]) == 2
    one_line(capsys.readouterr().err, "--per-example", "reads")
    assert snapshot(pathlib.Path(tiny)) == before


def test_per_example_scores_go_into_the_run_folder_by_default(run1, capsys):
    assert evaluate.main([str(run1), "--per-example"]) == 0
    rows = (run1 / "log_p_test.csv").read_text().splitlines()
    assert rows[0] == "index,log_prob" and len(rows) == 51
    assert str(run1 / "log_p_test.csv") in capsys.readouterr().out


def test_a_folder_of_someone_elses_files_is_not_a_run_folder(tiny, tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "train.log").write_text("my own notes\n")
    (folder / "learning_curve.png").write_bytes(b"my picture")
    before = snapshot(folder / "train.log", folder / "learning_curve.png")
    assert train.main(["--dataset", tiny, "--hidden", "8", "--epochs", "1", "--out", str(folder)]) == 2
    one_line(capsys.readouterr().err, "holds files but no run", "--force")
    assert snapshot(folder / "train.log", folder / "learning_curve.png") == before
    assert sorted(os.listdir(folder)) == ["learning_curve.png", "train.log"]
    (folder / "notes.txt").write_text("kept")
    assert train.main(["--dataset", tiny, "--hidden", "8", "--epochs", "1", "--out", str(folder), "--force"]) == 0
    assert (folder / "notes.txt").read_text() == "kept" and "my own notes" not in (folder / "train.log").read_text()


# ----------------------------------------------------------------------------------------------
# 4. A run finds its data from anywhere, and knows them


def test_a_run_finds_its_data_from_anywhere_and_refuses_other_data_under_its_name(tmp_path):
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir(), elsewhere.mkdir()
    write_npz(home / "tiny.npz", *tiny_splits())
    write_npz(elsewhere / "tiny.npz", *tiny_splits(seed=1))  # another file of the same name and width
    flags = ["--hidden", "8", "--patience", "50", "--out", home / "run"]
    assert run_cli("train.py", "--dataset", "tiny.npz", "--epochs", 1, *flags, cwd=home).returncode == 0
    assert run_cli("train.py", "--resume", "--epochs", 2, *flags, cwd=elsewhere).returncode == 0  # its own file
    assert run_cli("train.py", "--resume", "--epochs", 3, "--dataset", "../home/tiny.npz", *flags,
                   cwd=elsewhere).returncode == 0  # the same data by another path
    result = run_cli("train.py", "--resume", "--epochs", 4, "--dataset", "tiny.npz", *flags, cwd=elsewhere)
    assert result.returncode == 2
    one_line(result.stderr, "tiny.npz", "not the data the run trained on")
    write_npz(home / "tiny.npz", *tiny_splits(seed=2))  # the run's file, changed
    result = run_cli("train.py", "--resume", "--epochs", 4, *flags, cwd=elsewhere)
    assert result.returncode == 2
    one_line(result.stderr, "not the data the run trained on", "train", "valid", "test")
    for script, extra in (("evaluate.py", []), ("sample.py", ["--out", tmp_path / "s.png"])):
        result = run_cli(script, home / "run", *extra, cwd=elsewhere)
        assert result.returncode == 0
        one_line(result.stderr, f"{script}: warning", "tiny.npz", "not the data the run trained on")


def test_a_run_knows_its_data_by_their_rows_not_their_order(tmp_path):
    splits = tiny_splits()
    path = write_npz(tmp_path / "tiny.npz", *splits)
    flags = ["--hidden", "8", "--patience", "50", "--out", tmp_path / "run"]
    assert run_cli("train.py", "--dataset", path, "--epochs", 1, *flags).returncode == 0
    record = runs.data_record_of(str(tmp_path / "run"))
    assert set(record) == {"dataset", "fingerprints", "row_orders"}
    rng = np.random.default_rng(5)
    write_npz(path, *[rows[rng.permutation(len(rows))] for rows in splits])  # the same rows, reordered
    result = run_cli("evaluate.py", tmp_path / "run")
    assert result.returncode == 0 and "warning" not in result.stderr
    # --resume follows the rows' positions (its minibatches, its sums): another order could not go on
    # exactly, so it is refused, and the file in its own order resumes
    result = run_cli("train.py", "--resume", "--epochs", 2, *flags)
    assert result.returncode == 2
    one_line(result.stderr, "another order", "train", "valid", "test")
    write_npz(path, *splits)
    result = run_cli("train.py", "--resume", "--epochs", 2, *flags)
    assert result.returncode == 0, result.stderr
    reordered = [rows[::-1] for rows in splits]
    reordered[1][0, 0] = 1 - reordered[1][0, 0]  # …and one bit of valid changed
    write_npz(path, *reordered)
    result = run_cli("train.py", "--resume", "--epochs", 3, *flags)
    assert result.returncode == 2
    one_line(result.stderr, "not the data the run trained on", "valid")


# ----------------------------------------------------------------------------------------------
# 5–8. A number the files do not back is never reported


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_finite_state(tiny, tmp_path, capsys):
    flags = ["--dataset", tiny, "--hidden", "20", "--optimizer", "sgd", "--batch-size", "1000"]
    for epochs in ("3", "1"):
        out = tmp_path / f"diverged{epochs}"
        assert train.main([*flags, "--lr", "1e20", "--epochs", epochs, "--out", str(out)]) == 2
        line = one_line(capsys.readouterr().err, "epoch 1", "validation NLL became", "--lr")
        assert line.split("error: ")[1] in (out / "train.log").read_text()
        assert not (out / "checkpoint.npz").exists() and not (out / "model.npz").exists()
    out = tmp_path / "run"
    assert train.main([*flags, "--lr", "0.1", "--epochs", "2", "--patience", "50", "--out", str(out)]) == 0
    before = snapshot(out / "checkpoint.npz", out / "model.npz")
    assert train.main(["--resume", "--out", str(out), "--epochs", "4", "--lr", "1e20"]) == 2
    one_line(capsys.readouterr().err, "epoch 3", "holds epoch 2", "--resume")
    assert snapshot(out / "checkpoint.npz", out / "model.npz") == before
    assert train.main(["--resume", "--out", str(out), "--epochs", "4", "--lr", "0.01"]) == 0


def test_a_failed_write_never_leaves_a_model_newer_than_its_checkpoint(tiny, tmp_path, monkeypatch, capsys):
    import errno
    import stat
    flags = ["--dataset", tiny, "--hidden", "8", "--patience", "50"]
    out = tmp_path / "run"
    assert train.main([*flags, "--epochs", "1", "--out", str(out)]) == 0
    (out / "metrics.json").unlink()  # as a run interrupted after its first epoch
    before = snapshot(out / "checkpoint.npz", out / "model.npz")
    real_fsync = os.fsync

    def full_for_checkpoints(descriptor):  # the disk fills between the model's write and the checkpoint's
        name = os.readlink(f"/proc/self/fd/{descriptor}")
        if stat.S_ISREG(os.fstat(descriptor).st_mode) and "checkpoint.npz" in name:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(descriptor)
    monkeypatch.setattr(files.os, "fsync", full_for_checkpoints)
    assert train.main(["--resume", "--out", str(out), "--epochs", "3"]) == 2
    one_line(capsys.readouterr().err, "checkpoint.npz", "No space left on device")
    assert snapshot(out / "checkpoint.npz", out / "model.npz") == before
    assert not [name for name in os.listdir(out) if name.endswith(".tmp")]
    monkeypatch.undo()
    assert train.main(["--resume", "--out", str(out), "--epochs", "3"]) == 0
    assert train.main([*flags, "--epochs", "3", "--out", str(tmp_path / "straight")]) == 0
    metrics = [json.loads((folder / "metrics.json").read_text()) for folder in (out, tmp_path / "straight")]
    assert metrics[0]["test_nll"] == metrics[1]["test_nll"]


def test_finished_means_metrics_of_the_checkpoints_epoch(tiny, tmp_path, monkeypatch, capsys):
    flags = ["--dataset", tiny, "--hidden", "8", "--patience", "50"]
    out = tmp_path / "run"
    assert train.main([*flags, "--epochs", "2", "--out", str(out)]) == 0
    real_train_epoch, epochs = train.optim.train_epoch, []

    def interrupted_in_epoch_4(*args, **kwargs):
        epochs.append(1)
        if len(epochs) == 2:
            raise KeyboardInterrupt
        return real_train_epoch(*args, **kwargs)
    monkeypatch.setattr(train.optim, "train_epoch", interrupted_in_epoch_4)
    assert train.main(["--resume", "--out", str(out), "--epochs", "6"]) == 130
    monkeypatch.undo()
    assert not (out / "metrics.json").exists()  # it described epoch 2; the checkpoint holds epoch 3
    assert train.main(["--resume", "--out", str(out), "--epochs", "3"]) == 0  # finalised at epoch 3
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == 3
    capsys.readouterr()
    assert evaluate.main([str(out)]) == 0
    assert f"{metrics['test_nll']:.4f}" in capsys.readouterr().out
    assert train.main(["--resume", "--out", str(out), "--epochs", "3"]) == 2  # now it is finished
    one_line(capsys.readouterr().err, "finished")


def test_a_model_that_is_not_the_checkpoints_is_never_tested(tiny, tmp_path, capsys):
    other = write_npz(tmp_path / "wide.npz", *tiny_splits(width=20))
    runs_made = {}
    for name, dataset in (("narrow", tiny), ("wide", other)):
        runs_made[name] = tmp_path / name
        assert train.main(["--dataset", dataset, "--hidden", "8", "--epochs", "1", "--out", str(runs_made[name])]) == 0
    (runs_made["wide"] / "metrics.json").unlink()
    shutil.copy(runs_made["narrow"] / "model.npz", runs_made["wide"] / "model.npz")
    assert train.main(["--resume", "--out", str(runs_made["wide"])]) == 0  # the checkpoint's best model is the truth
    assert MADE.load(runs_made["wide"] / "model.npz").n_in == 20


def test_completion_pairs_row_i_of_an_observation_file_with_example_i_as_evaluate_does(run1, tmp_path, monkeypatch):
    patterns = np.random.default_rng(5).random((50, 16)) < 0.5  # one row per test example
    np.save(tmp_path / "rows.npy", patterns)
    seen = {}

    def recording_complete(model, x, observed, n=1, seed=0, method="fast"):
        seen["x"], seen["observed"] = x, observed
        return np.zeros((len(x), n, x.shape[1]))
    monkeypatch.setattr(sampling, "complete", recording_complete)
    assert sampling.main([str(run1), "--complete", "--observe", str(tmp_path / "rows.npy"), "--examples", "7",
                          "--out", str(tmp_path / "c.png")]) == 0
    test = np.load(os.path.join(tmp_path, "tiny.npz"))["test_data"]
    rows = [int(np.flatnonzero((test == row).all(axis=1))[0]) for row in seen["x"]]
    np.testing.assert_array_equal(seen["observed"], patterns[rows])


# ----------------------------------------------------------------------------------------------
# 10–17. Crashes and unclear lines


@pytest.mark.parametrize("script, flags", [("train.py", ["--hidden", "99999999999999999999"]),
                                           ("sample.py", ["RUN", "--n", "99999999999999999999"]),
                                           ("sample.py", ["RUN", "--complete", "--completions", "99999999999999999999"])])
def test_sizes_beyond_any_memory_are_flag_errors(script, flags, run1):
    result = run_cli(script, *[str(run1) if flag == "RUN" else flag for flag in flags])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "at most 2^40" in result.stderr.splitlines()[-1]


@pytest.mark.parametrize("script", ["sample.py", "evaluate.py"])
def test_an_npz_under_an_npy_name_is_one_line(script, run1, tmp_path):
    np.savez(tmp_path / "mask.npy", observed=np.ones(16, bool))
    os.replace(tmp_path / "mask.npy.npz", tmp_path / "mask.npy")
    extra = ["--complete", "--out", tmp_path / "c.png"] if script == "sample.py" else []
    result = run_cli(script, run1, "--observe", tmp_path / "mask.npy", *extra)
    assert result.returncode == 2
    one_line(result.stderr, "mask.npy", "not an .npy array")


def test_a_terminal_that_cannot_show_plus_minus_loses_nothing(tiny, tmp_path):
    env = dict(os.environ, PYTHONIOENCODING="ascii")
    result = run_cli("train.py", "--dataset", tiny, "--hidden", "8", "--epochs", "1", "--out", tmp_path / "run", env=env)
    assert result.returncode == 0, result.stderr
    assert "\\xb1" in result.stdout and (tmp_path / "run" / "metrics.json").exists()
    assert "±" in (tmp_path / "run" / "train.log").read_text(encoding="utf-8")


def test_a_closed_stdout_loses_nothing(tiny, tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), "--dataset", tiny, "--hidden", "8",
                                "--epochs", "6", "--patience", "50", "--out", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(3):  # as `| head -3` reads
        process.stdout.readline()
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 0 and "Traceback" not in stderr and "Broken pipe" not in stderr, stderr
    log = (out / "train.log").read_text()
    assert "epoch    6" in log and "test NLL" in log and (out / "metrics.json").exists()


def test_bench_refuses_an_unwritable_json_before_measuring(capsys):
    import bench
    started = time.perf_counter()
    assert bench.main(["--json", "no/such/folder/out.json"]) == 2
    assert time.perf_counter() - started < 5
    one_line(capsys.readouterr().err, "--json", "does not exist")


def test_a_data_dir_that_is_a_file_is_one_line(tiny, tmp_path):
    result = run_cli("train.py", "--dataset", "dna", "--data-dir", tiny, "--out", tmp_path / "run")
    assert result.returncode == 2
    one_line(result.stderr, "tiny.npz", "is a file, not a folder")


def test_one_test_example_gives_no_standard_error_and_valid_json(tmp_path):
    path = write_npz(tmp_path / "one.npz", random_binary((100, 8), 1), random_binary((20, 8), 2), random_binary((1, 8), 3))
    result = run_cli("train.py", "--dataset", path, "--hidden", "8", "--epochs", "1", "--out", tmp_path / "run")
    assert result.returncode == 0 and "nan" not in result.stdout
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(),
                         parse_constant=lambda name: pytest.fail(f"metrics.json holds {name}, which is not JSON"))
    assert metrics["test_nll_stderr"] is None and "no standard error" in result.stdout


@pytest.mark.parametrize("flags, complaint", [(["--optimizer", "adam", "--decrease", "0.1"], "--decrease"),
                                              (["--optimizer", "adagrad", "--rho", "0.9"], "--rho"),
                                              (["--optimizer", "sgd", "--eps", "1e-8"], "--eps")])
def test_optimizer_flags_the_optimizer_does_not_use_are_refused(flags, complaint, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(flags)
    assert exit_info.value.code == 2 and complaint in capsys.readouterr().err


def test_flags_a_mode_ignores_are_refused(run1, capsys):
    assert sampling.main([str(run1), "--complete", "--mask", "0"]) == 2
    one_line(capsys.readouterr().err, "--mask", "--complete")
    assert evaluate.main([str(run1), "--observe", "top", "--test-masks", "1"]) == 2
    one_line(capsys.readouterr().err, "--test-masks", "--observe")
