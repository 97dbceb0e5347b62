"""train.py end to end: it learns a distribution whose likelihood is known exactly, trains on real
MNIST, resumes bit for bit, and refuses impossible requests with one clear line."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import backend
import files
import train
from conftest import ROOT, real_data_dir, write_npz
from made import MADE


def mixture_of_bernoullis(seed, n_in=10, n_components=4):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.full(n_components, 2.0)), rng.beta(0.4, 0.4, size=(n_components, n_in))


def sample_mixture(weights, probs, n, rng):
    component = rng.choice(len(weights), size=n, p=weights)
    return (rng.random((n, probs.shape[1])) < probs[component]).astype(np.float32)


def mixture_log_prob(weights, probs, x):
    """Exact log p(x) = log Σ_c π_c Π_d p_cd^x_d (1 − p_cd)^(1 − x_d)."""
    per_component = np.log(weights) + x @ np.log(probs).T + (1 - x) @ np.log1p(-probs).T
    peak = per_component.max(axis=1, keepdims=True)
    return (peak + np.log(np.exp(per_component - peak).sum(axis=1, keepdims=True)))[:, 0]


@pytest.fixture(scope="module")
def mixture_file(tmp_path_factory):
    weights, probs = mixture_of_bernoullis(0)
    rng = np.random.default_rng(1)
    train_x, valid_x, test_x = (sample_mixture(weights, probs, n, rng) for n in (20000, 5000, 5000))
    path = write_npz(tmp_path_factory.mktemp("mixture") / "mixture.npz", train_x, valid_x, test_x)
    true_nll = -mixture_log_prob(weights, probs, test_x.astype(np.float64)).mean()
    # the exact model sums to one over all 2^10 states, so true_nll is a real entropy estimate
    states = np.array(np.meshgrid(*[[0, 1]] * 10)).reshape(10, -1).T.astype(np.float64)
    assert np.isclose(np.exp(mixture_log_prob(weights, probs, states)).sum(), 1.0)
    return path, true_nll


def run_train(*flags):
    assert train.main([str(f) for f in flags]) == 0
    out = flags[flags.index("--out") + 1]
    with open(os.path.join(out, "metrics.json")) as file:
        return json.load(file)


def test_learns_a_known_distribution_to_within_2_percent(mixture_file, tmp_path):
    path, true_nll = mixture_file
    metrics = run_train("--dataset", path, "--hidden", 100, "--lr", 0.05, "--epochs", 30, "--patience", 5,
                        "--out", tmp_path / "run")
    assert metrics["test_nll"] <= 1.02 * true_nll, (metrics["test_nll"], true_nll)
    for name in ("model.npz", "checkpoint.npz", "metrics.json", "train.log", "learning_curve.png"):
        assert os.path.exists(tmp_path / "run" / name), name
    for key in ("train_nll", "valid_nll", "test_nll", "test_nll_stderr", "best_epoch", "epochs_run", "train_seconds"):
        assert np.isfinite(metrics[key]), key
    assert metrics["config"]["hidden"] == [100] and metrics["config"]["lr"] == 0.05


def test_short_run_on_binarized_mnist_beats_independent_pixels(tmp_path):
    directory = real_data_dir("binarized_mnist")
    metrics = run_train("--data-dir", directory, "--epochs", 1, "--out", tmp_path / "run")
    assert metrics["valid_nll"] < 150, "one epoch of the default model should be far below the 205.8-nat baseline"


def test_resume_continues_bit_for_bit(mixture_file, tmp_path):
    path = mixture_file[0]
    flags = ["--dataset", path, "--hidden", "20,20", "--masks", 3, "--optimizer", "adam", "--patience", 100]
    straight = run_train(*flags, "--epochs", 4, "--out", tmp_path / "straight")
    run_train(*flags, "--epochs", 2, "--out", tmp_path / "resumed")
    resumed = run_train(*flags, "--epochs", 4, "--out", tmp_path / "resumed", "--resume")
    for key in ("train_nll", "valid_nll", "test_nll", "best_epoch", "epochs_run"):
        assert straight[key] == resumed[key], key
    assert [(r["train_nll"], r["valid_nll"]) for r in straight["history"]] == \
           [(r["train_nll"], r["valid_nll"]) for r in resumed["history"]]
    a, b = (files.read_npz(tmp_path / run / "checkpoint.npz") for run in ("straight", "resumed"))
    for key in a:
        if key.startswith(("param.", "optim.")):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_resume_may_lower_the_learning_rate(mixture_file, tmp_path):
    """A step schedule: the same run resumed at a tenth of its rate keeps its first epochs, takes
    smaller steps after, and records every epoch's rate."""
    flags = ["--dataset", mixture_file[0], "--hidden", "20", "--masks", 3, "--optimizer", "adam", "--patience", 100]
    for run in ("same", "stepped"):
        run_train(*flags, "--epochs", 2, "--out", tmp_path / run)
    before = files.read_npz(tmp_path / "stepped" / "checkpoint.npz")
    same = run_train(*flags, "--epochs", 4, "--out", tmp_path / "same", "--resume")
    stepped = run_train(*flags, "--epochs", 4, "--out", tmp_path / "stepped", "--resume", "--lr", "1e-4")
    assert [row["lr"] for row in same["history"]] == [1e-3] * 4
    assert [row["lr"] for row in stepped["history"]] == [1e-3, 1e-3, 1e-4, 1e-4]
    assert stepped["config"]["lr"] == 1e-4
    nlls = [[(row["train_nll"], row["valid_nll"]) for row in run["history"]] for run in (same, stepped)]
    assert nlls[0][:2] == nlls[1][:2] and nlls[0][2] != nlls[1][2]
    with open(tmp_path / "stepped" / "train.log") as log:
        assert "learning rate 0.001 until epoch 2, 0.0001 from now on" in log.read()

    def moved(run):  # how far the weights went in epochs 3 and 4
        after = files.read_npz(tmp_path / run / "checkpoint.npz")
        return sum(np.linalg.norm(after[k] - before[k]) for k in after if k.startswith("param."))
    assert moved("stepped") < 0.3 * moved("same")


def test_an_existing_run_is_not_overwritten(mixture_file, tmp_path, capsys):
    flags = ["--dataset", mixture_file[0], "--hidden", 10, "--epochs", 1, "--out", tmp_path / "run"]
    run_train(*flags)
    assert train.main([str(f) for f in flags]) == 2
    assert "--resume" in capsys.readouterr().err
    run_train(*flags, "--force")


def test_a_diverging_run_stops_with_a_clear_message(mixture_file, tmp_path, capsys):
    flags = ["--dataset", mixture_file[0], "--hidden", 10, "--optimizer", "sgd", "--lr", "1e30",
             "--out", tmp_path / "run"]
    assert train.main([str(f) for f in flags]) == 2
    error = capsys.readouterr().err
    assert "epoch 1" in error and "--lr" in error
    assert not os.path.exists(tmp_path / "run" / "checkpoint.npz")


@pytest.mark.parametrize("flags,complaint", [
    (["--hidden", "0"], "--hidden"), (["--hidden", "500,-3"], "--hidden"), (["--lr", "0"], "--lr"),
    (["--lr", "nan"], "--lr"), (["--masks", "-1"], "--masks"), (["--batch-size", "0"], "--batch-size"),
    (["--dataset", "mnist"], "binarized_mnist"), (["--hidden", "none"], "--direct"),
    (["--resume"], "--out"), (["--epochs", "ten"], "--epochs")])
def test_impossible_flags_get_argparse_errors(flags, complaint, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(flags)
    assert exit_info.value.code == 2
    assert complaint in capsys.readouterr().err


def test_gpu_flag_without_a_gpu_is_one_clear_line(small_npz, tmp_path):
    if backend.gpu_available():
        pytest.skip("a GPU is present: this test is for machines without one")
    result = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--gpu", "--dataset", small_npz,
                             "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--gpu" in result.stderr and "Traceback" not in result.stderr


def test_saved_model_is_the_best_epoch(mixture_file, tmp_path):
    metrics = run_train("--dataset", mixture_file[0], "--hidden", 10, "--epochs", 3, "--out", tmp_path / "run")
    model = MADE.load(tmp_path / "run" / "model.npz")
    valid = np.load(mixture_file[0])["valid_data"]
    assert np.isclose(-model.log_prob(valid, n_masks=1).mean(), metrics["valid_nll"], rtol=1e-6)


def test_dtype_flag_trains_a_float64_model(mixture_file, tmp_path):
    metrics = run_train("--dataset", mixture_file[0], "--hidden", 10, "--epochs", 1, "--dtype", "float64",
                        "--out", tmp_path / "run")
    assert metrics["config"]["model"]["dtype"] == "float64"
    assert MADE.load(tmp_path / "run" / "model.npz").params["W0"].dtype == np.float64


def test_training_through_the_reference_gives_the_fast_engines_history(mixture_file, tmp_path, capsys):
    """train.py --reference: the dense masked network in the data's numbering, the plain loss and
    the optimizer rules as written, against the engine's products and the rules' fast forms, in
    float64: the same history, and a model of the same numbers."""
    histories = {}
    for name, extra in (("fast", []), ("reference", ["--reference"])):
        out = tmp_path / name
        flags = ["--dataset", mixture_file[0], "--hidden", "16,12", "--direct", "--cond-mask", "--masks", "3",
                 "--optimizer", "adam", "--epochs", "4", "--dtype", "float64", "--out", str(out), *extra]
        assert train.main(flags) == 0
        histories[name] = json.loads((out / "metrics.json").read_text())["history"]
    log = capsys.readouterr().out
    assert log.count("training through the reference computation") == 1
    for fast, reference in zip(histories["fast"], histories["reference"]):
        for key in ("train_nll", "valid_nll"):
            assert reference[key] == pytest.approx(fast[key], rel=1e-10)
    models = [MADE.load(tmp_path / name / "model.npz") for name in ("fast", "reference")]
    for name, value in models[0].params.items():
        np.testing.assert_allclose(models[1].params[name], value, rtol=1e-8, atol=1e-12)


def test_the_reference_engine_is_what_the_api_trains_through_when_asked():
    import optim
    model = MADE(6, [8], dtype="float64", reference=True, seed=2)
    optimizer = optim.AdaGrad(model, lr=0.1, fast=False)
    x = (np.random.default_rng(0).random((40, 6)) < 0.4).astype(np.float64)
    before = dict(model.params)
    optim.train_epoch(model, optimizer, x, np.arange(40), 10)
    assert type(model.engine).__name__ == "ReferenceEngine" and optimizer.fast_form is None
    assert any(not np.array_equal(before[name], value) for name, value in model.params.items())
