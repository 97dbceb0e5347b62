"""The README as a newcomer follows it: its Python block runs as written, from the repository's
root, and every command of its Use section runs on models of the kind it names."""
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

import evaluate
import sample as sampling
import train
from conftest import ROOT, real_data_dir, write_npz

README = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()


def blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_the_python_block_runs_as_written_from_the_repository_root():
    real_data_dir("binarized_mnist")  # it loads a minibatch of MNIST
    (code,) = blocks("python")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def runs_for_the_readme(tmp_path_factory):
    """Three runs on one small data set of 4×4 images (so that pictures and --observe top apply), of
    32 masks as the Use section's many-mask examples need."""
    folder = tmp_path_factory.mktemp("readme")
    rng = np.random.default_rng(0)
    path = write_npz(folder / "squares.npz", *[(rng.random((n, 16)) < 0.3).astype(np.float32) for n in (120, 30, 30)])
    made = {}
    for name, seed in (("RUN_A", 1), ("RUN_B", 2), ("RUN_C", 3)):
        made[name] = folder / name
        assert train.main(["--dataset", path, "--hidden", "12", "--masks", "32", "--epochs", "1", "--seed", str(seed),
                           "--out", str(made[name])]) == 0
    made["RUN_DIR"] = made["RUN_A"]
    return made


def test_every_command_of_the_use_section_runs(runs_for_the_readme, capsys):
    use = README[README.index("## Use"):README.index("## Read it")]
    listing = re.findall(r"```\n(.*?)```", use, flags=re.S)[0]  # the block of commands
    commands = [line.split("#")[0].strip() for line in listing.splitlines() if line.startswith("python ")]
    assert len(commands) >= 9
    mains = {"evaluate.py": evaluate.main, "sample.py": sampling.main}
    for command in commands:
        words = [str(runs_for_the_readme.get(word, word)) for word in shlex.split(command)[1:]]
        assert mains[words[0]](words[1:]) == 0, (command, capsys.readouterr().err)
