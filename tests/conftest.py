"""Shared helpers: the project root on sys.path, small data sets made on the spot, the real data,
running a command line, the one-line refusal every user error must be, NumPy standing in for CuPy,
and two models trained side by side."""
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import backend  # noqa: E402 (the project root is on the path from here on)
import standin  # noqa: E402
from autograd import check_gradient  # noqa: E402


def random_binary(shape, seed=0, p=0.5):
    return (np.random.default_rng(seed).random(shape) < p).astype(np.float64)


def write_npz(path, train, valid, test):
    np.savez(path, train_data=train, valid_data=valid, test_data=test)
    return str(path)


@pytest.fixture
def small_npz(tmp_path):
    """A valid little data set file (D = 6)."""
    return write_npz(tmp_path / "small.npz", random_binary((40, 6), 1), random_binary((10, 6), 2),
                     random_binary((10, 6), 3))


def real_data_dir(name):
    """The folder holding the named real data set, or skip the test saying why."""
    directory = os.environ.get("MADE_DATA_DIR")
    if not directory or not os.path.exists(os.path.join(directory, name + ".npz")):
        pytest.skip(f"{name}.npz not found: set MADE_DATA_DIR to the folder holding the MADE data sets")
    return directory


def tiny_splits(seed=0, width=16):
    """Three small splits (200, 50, 50 rows) of 0/1 values, about 30 % ones."""
    rng = np.random.default_rng(seed)
    return [(rng.random((n, width)) < 0.3).astype(np.float32) for n in (200, 50, 50)]


def run_cli(script, *args, cwd=None, env=None, timeout=120, **kwargs):
    """A command line run as a user runs it; the arguments as given (bytes for a non-UTF-8 path)."""
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *map(os.fsencode, map(str, args))],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env, **kwargs)


def one_line(text, *words):
    """The single non-empty line of `text` (no traceback, no warning), which must contain every one of `words`."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in text and "Warning" not in text, text
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def fill_params(model, draw):
    """Write every parameter of a model, in the data's numbering: draw(shape) gives its new value."""
    for name, value in model.params.items():
        model.params[name] = draw(value.shape)


def check_param_gradient(model, name, loss, analytic):
    """autograd.check_gradient for parameter `name` of a model, perturbed through model.params (the
    data's numbering): loss() is the loss at the model's current parameters."""
    value = np.array(model.params[name])

    def loss_at_value():
        model.params[name] = value
        return loss()
    error = check_gradient(loss_at_value, value, analytic)
    model.params[name] = value
    return error


@pytest.fixture
def device(monkeypatch):
    """standin.py's NumPy in CuPy's place (device arrays refuse host arrays, as CuPy's do), with the
    fused GPU engine selected."""
    fake = standin.module()
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(backend, "_cupy", fake)
    monkeypatch.delenv("MADE_GPU_UNFUSED", raising=False)
    yield fake


def assert_steps_agree(models, optimizers, batches, tolerance):
    """On each pair of batches (the same minibatch as each model takes it): log p(x), the loss and
    every gradient of models[1] equal models[0]'s; then a step and the next mask for both. After
    the last, the parameters too."""
    import backend
    for pair in batches:
        expected, got = (backend.to_host(model.log_prob(x)) for model, x in zip(models, pair))
        np.testing.assert_allclose(got, expected, **tolerance)
        (loss_expected, grads_expected), (loss_got, grads_got) = (model.loss_and_grads(x)
                                                                  for model, x in zip(models, pair))
        np.testing.assert_allclose(float(loss_got), float(loss_expected), **tolerance)
        for name in grads_expected:
            np.testing.assert_allclose(grads_got[name], grads_expected[name], **tolerance)
        for model, optimizer, grads in zip(models, optimizers, (grads_expected, grads_got)):
            optimizer.step(grads)
            model.next_mask()
    for name in models[0].params:
        np.testing.assert_allclose(models[1].params[name], models[0].params[name], **tolerance)
