"""Untrusted input and interrupted runs: every user error is one line and exit status 2, every
write is atomic, and a seeded fuzz test shows that malformed files only ever raise the project's
own errors."""
import io
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import files
import data
import evaluate
import sample as sampling
import train
from conftest import ROOT, random_binary, write_npz
from made import MADE, CheckpointError


def run_cli(script, *args, timeout=120):
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result, *words):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


# ----------------------------------------------------------------------------------------------
# Data given to the command line


@pytest.mark.parametrize("problem", ["half", "two", "minus_one", "nan", "inf", "one_d", "three_d", "empty",
                                     "widths", "missing_key", "truncated", "objects"])
def test_train_refuses_malformed_data_in_one_line(tmp_path, problem):
    good = [random_binary((20, 5), seed=i) for i in range(3)]
    path = tmp_path / f"{problem}.npz"
    words = [path.name]
    if problem in ("half", "two", "minus_one", "nan", "inf"):
        value = {"half": 0.5, "two": 2.0, "minus_one": -1.0, "nan": np.nan, "inf": np.inf}[problem]
        good[1][7, 2] = value
        write_npz(path, *good)
        words += ["'valid'", "row 7 column 2"]
    elif problem in ("one_d", "three_d", "empty"):
        bad = {"one_d": np.ones(5), "three_d": np.ones((2, 2, 5)), "empty": np.zeros((0, 5))}[problem]
        write_npz(path, good[0], good[1], bad)
        words += ["'test'"]
    elif problem == "widths":
        write_npz(path, good[0], good[1], random_binary((20, 6)))
        words += ["widths"]
    elif problem == "missing_key":
        np.savez(path, train_data=good[0], valid_data=good[1])
        words += ["test_data"]
    elif problem == "truncated":
        write_npz(tmp_path / "whole.npz", *good)
        path.write_bytes((tmp_path / "whole.npz").read_bytes()[:-200])
        words += ["corrupt"]
    elif problem == "objects":
        np.savez(path, train_data=np.array([[0, 1]], dtype=object), valid_data=good[1], test_data=good[2])
        words += ["pickles"]
    assert_one_line_error(run_cli("train.py", "--dataset", path, "--hidden", 4, "--out", tmp_path / "run"), *words)
    assert not os.path.exists(tmp_path / "run" / "model.npz")


def test_amat_errors_reach_the_command_line(tmp_path):
    for split in data.SPLITS:
        (tmp_path / f"set_{split}.amat").write_text("0 1 1\n1 0 1\n" if split != "test" else "0 1 1\n1 0.5 1\n")
    assert_one_line_error(run_cli("train.py", "--dataset", tmp_path / "set_train.amat", "--out", tmp_path / "run"),
                          "set_test.amat", "line 2 column 2")


# ----------------------------------------------------------------------------------------------
# Checkpoints


@pytest.fixture
def saved_model(tmp_path):
    model = MADE(6, [8], direct=True, seed=1)
    path = tmp_path / "model.npz"
    model.save(path)
    return path, files.read_npz(path)


def rewrite(path, arrays):
    files.save_npz(path, arrays)
    return path


@pytest.mark.parametrize("tamper", ["truncate", "garbage", "no_config", "bad_json", "foreign_format",
                                    "other_architecture", "other_width", "nan_weights", "unknown_option",
                                    "mask_beyond_cycle"])
def test_a_bad_checkpoint_is_refused(saved_model, tmp_path, tamper):
    path, arrays = saved_model
    config = json.loads(str(arrays["config"]))
    if tamper == "truncate":
        path.write_bytes(path.read_bytes()[:150])
    elif tamper == "garbage":
        path.write_bytes(os.urandom(3000))
    elif tamper == "no_config":
        rewrite(path, {k: v for k, v in arrays.items() if k != "config"})
    elif tamper == "bad_json":
        rewrite(path, dict(arrays, config=np.array("{not json")))
    elif tamper == "foreign_format":
        rewrite(path, dict(arrays, config=files.json_array(dict(config, format="someone-else-1"))))
    elif tamper == "other_architecture":
        rewrite(path, dict(arrays, config=files.json_array(dict(config, hidden_sizes=[9]))))
    elif tamper == "other_width":
        rewrite(path, dict(arrays, config=files.json_array(dict(config, n_in=7))))
    elif tamper == "nan_weights":
        rewrite(path, dict(arrays, **{"param.W0": np.full_like(arrays["param.W0"], np.nan)}))
    elif tamper == "unknown_option":
        rewrite(path, dict(arrays, config=files.json_array(dict(config, exec="import os"))))
    elif tamper == "mask_beyond_cycle":
        rewrite(path, dict(arrays, mask_index=np.array(5)))
    with pytest.raises(CheckpointError):
        MADE.load(path)


def test_a_huge_config_is_refused_before_anything_is_allocated(saved_model):
    path, arrays = saved_model
    config = json.loads(str(arrays["config"]))
    rewrite(path, dict(arrays, config=files.json_array(dict(config, n_in=10 ** 6, hidden_sizes=[10 ** 6]))))
    started = time.perf_counter()
    with pytest.raises(CheckpointError, match="shape"):
        MADE.load(path)
    assert time.perf_counter() - started < 5


def test_evaluate_refuses_a_corrupt_model_in_one_line(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.npz").write_bytes(b"PK\x03\x04" + os.urandom(500))
    assert_one_line_error(run_cli("evaluate.py", tmp_path / "run", "--dataset", tmp_path / "x.npz"), "model.npz")


def test_an_interrupted_write_leaves_the_previous_file(tmp_path):
    path = tmp_path / "file.npz"
    files.save_npz(path, {"a": np.arange(3)})
    with pytest.raises(RuntimeError):
        with files.atomic_write(path) as file:
            file.write(b"half a file")
            raise RuntimeError("power cut")
    np.testing.assert_array_equal(files.read_npz(path)["a"], np.arange(3))
    assert os.listdir(tmp_path) == ["file.npz"]


# ----------------------------------------------------------------------------------------------
# Interrupted training


@pytest.fixture
def slow_dataset(tmp_path):
    rng = np.random.default_rng(0)
    splits = [(rng.random((n, 30)) < 0.3).astype(np.float32) for n in (4000, 500, 500)]
    return write_npz(tmp_path / "slow.npz", *splits)


def test_sigterm_stops_cleanly_and_resume_finishes_identically(slow_dataset, tmp_path):
    flags = ["--dataset", slow_dataset, "--hidden", "64", "--batch-size", "20", "--patience", "100", "--seed", "3"]
    out = tmp_path / "interrupted"
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), *flags, "--epochs", "200",
                                "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (out / "checkpoint.npz").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in stderr
    assert "--resume" in stdout
    done = files.read_npz(out / "checkpoint.npz")  # intact, loadable
    epochs_done = json.loads(str(done["train_state"]))["status"]["epoch"]
    assert epochs_done >= 1
    # resume to epochs_done + 2, and compare with a run that went there without a break
    target = str(epochs_done + 2)
    assert train.main([*map(str, flags), "--epochs", target, "--out", str(out), "--resume"]) == 0
    assert train.main([*map(str, flags), "--epochs", target, "--out", str(tmp_path / "straight")]) == 0
    a, b = files.read_npz(out / "checkpoint.npz"), files.read_npz(tmp_path / "straight" / "checkpoint.npz")
    for key in a:
        if key.startswith(("param.", "optim.")):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_resume_refuses_a_damaged_checkpoint(slow_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    assert train.main(["--dataset", slow_dataset, "--hidden", "8", "--epochs", "1", "--out", str(out)]) == 0
    (out / "checkpoint.npz").write_bytes((out / "checkpoint.npz").read_bytes()[:500])
    assert train.main(["--dataset", slow_dataset, "--epochs", "2", "--out", str(out), "--resume"]) == 2
    assert "cannot resume" in capsys.readouterr().err


def test_resume_refuses_data_of_another_width(slow_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    assert train.main(["--dataset", slow_dataset, "--hidden", "8", "--epochs", "1", "--out", str(out)]) == 0
    other = write_npz(tmp_path / "narrow.npz", *[random_binary((30, 12), seed=i) for i in range(3)])
    assert train.main(["--dataset", other, "--epochs", "2", "--out", str(out), "--resume"]) == 2
    assert "--dataset" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# Downloads


def test_a_partial_download_is_removed(tmp_path, monkeypatch):
    import urllib.request

    class Response:
        headers = {"Content-Length": "1000"}

        def read(self):
            return b"x" * 400

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Response())
    with pytest.raises(data.DataError, match="400 of 1000 bytes.*by hand"):
        data.load("mushrooms", directory=str(tmp_path))
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------------------------
# The fuzz test


def mutated_npz(rng, base_bytes):
    """One malformed variant of a valid .npz: cut, flipped bytes, or odd arrays in the right keys."""
    kind = rng.integers(4)
    if kind == 0:
        return base_bytes[: rng.integers(0, len(base_bytes))]
    if kind == 1:
        raw = bytearray(base_bytes)
        for position in rng.integers(0, len(raw), size=rng.integers(1, 20)):
            raw[position] = rng.integers(0, 256)
        return bytes(raw)
    buffer = io.BytesIO()
    arrays = {}
    for split in data.SPLITS:
        if rng.random() < 0.1:
            continue
        shape = tuple(rng.integers(0, 5, size=rng.integers(0, 4)))
        choice = rng.integers(5)
        if choice == 0:
            arrays[f"{split}_data"] = rng.integers(0, 2, size=shape).astype(rng.choice(["float32", "int8", "bool"]))
        elif choice == 1:
            arrays[f"{split}_data"] = rng.standard_normal(shape)
        elif choice == 2:
            arrays[f"{split}_data"] = np.full(shape, rng.choice([np.nan, np.inf, 2.0, -1.0]))
        elif choice == 3:
            arrays[f"{split}_data"] = np.array(["0", "1"])
        else:
            arrays[f"{split}_data"] = np.array([[0, 1]], dtype=object)
    if kind == 3:
        np.savez_compressed(buffer, **arrays)
    else:
        np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_fuzzed_data_files_load_or_raise_data_error(tmp_path):
    rng = np.random.default_rng(2024)
    base = io.BytesIO()
    np.savez(base, train_data=random_binary((6, 4)), valid_data=random_binary((3, 4)), test_data=random_binary((3, 4)))
    loaded = refused = 0
    for case in range(300):
        path = tmp_path / f"case{case}.npz"
        path.write_bytes(mutated_npz(rng, base.getvalue()))
        try:
            splits = data.load(str(path))
        except data.DataError:
            refused += 1
            continue
        loaded += 1
        assert all(np.isin(a, (0, 1)).all() and a.ndim == 2 and a.size for a in splits.values())
    assert refused > 100 and loaded + refused == 300


def test_fuzzed_checkpoints_load_or_raise_checkpoint_error(tmp_path):
    rng = np.random.default_rng(7)
    model = MADE(5, [6, 4], direct=True, cond_mask=True, n_masks=3, seed=2)
    model.save(tmp_path / "good.npz")
    base = (tmp_path / "good.npz").read_bytes()
    arrays = files.read_npz(tmp_path / "good.npz")
    config = json.loads(str(arrays["config"]))
    x = random_binary((4, 5))
    outcomes = {"loaded": 0, "refused": 0}
    for case in range(300):
        path = tmp_path / f"case{case}.npz"
        if case % 2 == 0:
            path.write_bytes(mutated_npz(rng, base) if rng.random() < 0.3 else
                             bytes(b if rng.random() > 0.002 else rng.integers(256) for b in base))
        else:
            changed = dict(config)
            key = rng.choice(sorted(config))
            changed[key] = [None, -1, 0, 3, "x", [2], [-4], 1e300, {"a": 1}, True, "natural", [0, 1, 2, 3, 4]][rng.integers(12)]
            rewrite(path, dict(arrays, config=files.json_array(changed)))
        try:
            loaded = MADE.load(path)
        except CheckpointError:
            outcomes["refused"] += 1
            continue
        outcomes["loaded"] += 1
        assert np.all(np.isfinite(loaded.log_prob(x)))
    assert outcomes["refused"] > 100 and sum(outcomes.values()) == 300


# ----------------------------------------------------------------------------------------------
# Command-line errors of sample.py and evaluate.py


def test_sample_and_evaluate_flags_are_checked(tmp_path, capsys):
    with pytest.raises(SystemExit) as error:
        sampling.main([str(tmp_path), "--n", "0"])
    assert error.value.code == 2
    with pytest.raises(SystemExit) as error:
        evaluate.main([str(tmp_path), "--test-masks", "0"])
    assert error.value.code == 2


def test_bad_observe_spec_is_one_line(tmp_path):
    run = tmp_path / "run"
    data_path = write_npz(tmp_path / "d.npz", *[random_binary((30, 9), seed=i) for i in range(3)])
    assert train.main(["--dataset", data_path, "--hidden", "5", "--epochs", "1", "--out", str(run)]) == 0
    assert_one_line_error(run_cli("evaluate.py", run, "--observe", "random:2"), "between 0 and 1")
    assert_one_line_error(run_cli("sample.py", run, "--complete", "--observe", "diagonal"), "diagonal")


@pytest.mark.parametrize("change", [{"batch_size": 0}, {"batch_size": "100"}, {"optimizer": 3}, {"secret": 1}])
def test_resume_refuses_a_tampered_training_state(slow_dataset, tmp_path, capsys, change):
    out = tmp_path / "run"
    assert train.main(["--dataset", slow_dataset, "--hidden", "8", "--epochs", "1", "--out", str(out)]) == 0
    arrays = files.read_npz(out / "checkpoint.npz")
    state = json.loads(str(arrays["train_state"]))
    state["run_config"].update(change)
    rewrite(out / "checkpoint.npz", dict(arrays, train_state=files.json_array(state)))
    assert train.main(["--epochs", "2", "--out", str(out), "--resume"]) == 2
    assert "cannot resume" in capsys.readouterr().err


def test_out_of_memory_is_one_line_with_advice(slow_dataset, tmp_path, capsys, monkeypatch):
    import made

    def exhausted(self, x):
        raise MemoryError("Out of memory allocating 6,400,000,000 bytes (allocated so far: 70 GiB)")
    monkeypatch.setattr(made.MADE, "loss_and_grads", exhausted)
    assert train.main(["--dataset", slow_dataset, "--hidden", "8", "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "6,400,000,000 bytes" in error and "--batch-size" in error


def test_written_files_follow_the_umask_not_mkstemps_0600(tmp_path):
    previous = os.umask(0o022)
    try:
        files.save_npz(tmp_path / "a.npz", {"a": np.arange(2)})
    finally:
        os.umask(previous)
    assert (os.stat(tmp_path / "a.npz").st_mode & 0o777) == 0o644
