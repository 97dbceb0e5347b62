"""Mixtures of trained runs as one density (issue: beyond the paper): evaluate.py and sample.py
take several runs, report and draw from log p(x) = log (1/R) Σ_r p_r(x), and refuse runs of other
data; the Python API gives the same numbers."""
import numpy as np
import pytest

import evaluate
import runs
import sample as sampling
import train
from conftest import one_line, write_npz
from made import mixture_log_prob




def splits(seed=0, width=12):
    rng = np.random.default_rng(seed)
    return [(rng.random((n, width)) < 0.3).astype(np.float32) for n in (150, 40, 40)]


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    """Two runs on one data set (one of 4 masks, one of one mask) and one on other data of the same width."""
    folder = tmp_path_factory.mktemp("mixture")
    same, other = write_npz(folder / "same.npz", *splits(0)), write_npz(folder / "other.npz", *splits(1))
    made = {}
    for name, dataset, extra in (("masks", same, ["--masks", "4"]), ("one", same, []), ("other", other, [])):
        made[name] = folder / name
        assert train.main(["--dataset", dataset, "--hidden", "10", "--epochs", "2", "--seed", str(len(made)),
                           "--out", str(made[name]), *extra]) == 0
    return made


def test_evaluate_reports_the_mixture_of_runs(three_runs, tmp_path, capsys):
    capsys.readouterr()
    out = tmp_path / "p.csv"
    assert evaluate.main([str(three_runs["masks"]), str(three_runs["one"]), "--per-example", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "mixture of 2 runs: 4-mask ensemble + 1-mask ensemble" in printed
    models, data_splits, _ = runs.load_runs([str(three_runs["masks"]), str(three_runs["one"])], False)
    expected = mixture_log_prob(models, data_splits["test"], [4, None])
    written = np.loadtxt(out, delimiter=",", skiprows=1)[:, 1]
    np.testing.assert_allclose(written, expected, atol=2e-6)
    assert f"{-expected.mean():.4f}" in printed
    alone = [runs.nll_per_example(model, data_splits["test"], count, 1000) for model, count in zip(models, [4, 1])]
    assert -expected.mean() <= max(nll.mean() for nll in alone)  # a mixture is never worse than its worst part


def test_a_mixture_refuses_runs_of_other_data_or_width(three_runs, tmp_path, capsys):
    assert evaluate.main([str(three_runs["one"]), str(three_runs["other"])]) == 2
    one_line(capsys.readouterr().err, str(three_runs["other"]), "data set")
    wide = tmp_path / "wide"
    assert train.main(["--dataset", write_npz(tmp_path / "w.npz", *splits(0, width=13)), "--hidden", "5",
                       "--epochs", "1", "--out", str(wide)]) == 0
    capsys.readouterr()
    for command in (evaluate.main, lambda argv: sampling.main(argv + ["--out", str(tmp_path / "s.png")])):
        assert command([str(three_runs["one"]), str(wide)]) == 2
        one_line(capsys.readouterr().err, str(wide), "variables")


def test_sample_draws_from_the_mixture_evaluate_scores(three_runs, tmp_path, capsys):
    out = tmp_path / "s.png"
    assert sampling.main([str(three_runs["masks"]), str(three_runs["one"]), "--n", "30", "--out", str(out)]) == 0
    assert "mixture of 2 runs (4-mask ensemble + 1-mask ensemble)" in capsys.readouterr().out
    drawn = np.load(tmp_path / "s.npy")
    models, _, _ = runs.load_runs([str(three_runs["masks"]), str(three_runs["one"])], False, need_data=False)
    from ancestral import sample_mixture
    np.testing.assert_array_equal(drawn, sample_mixture(models, 30, [4, None], seed=0))
    for flags, complaint in ((["--mask", "0"], "one run"), (["--complete"], "one run")):
        assert sampling.main([str(three_runs["masks"]), str(three_runs["one"]), *flags, "--out", str(out)]) == 2
        one_line(capsys.readouterr().err, complaint)
    assert sampling.main([str(three_runs["masks"]), "--mask", "0", "--test-masks", "2", "--out", str(out)]) == 2
    one_line(capsys.readouterr().err, "--mask", "--test-masks")
