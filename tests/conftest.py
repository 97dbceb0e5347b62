"""Shared helpers: the project root on sys.path, small data sets made on the spot, the real data."""
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


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
