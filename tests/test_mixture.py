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


def load_best():
    import importlib.util
    import os
    from conftest import ROOT
    spec = importlib.util.spec_from_file_location("best", os.path.join(ROOT, "experiments", "best.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_best_mixes_per_example_nlls_in_probability():
    """experiments/best.py's mixture of per-example NLLs is −log of the mean of the members' probabilities."""
    best = load_best()
    rng = np.random.default_rng(0)
    members = rng.uniform(1.0, 900.0, size=(3, 50))  # NLLs far apart: exp(−NLL) underflows without the shift
    expected = -np.logaddexp.reduce(-members, axis=0) + np.log(3)
    assert np.allclose(best.mixture_nll(members), expected)
    assert np.allclose(best.mixture_nll(members[:1]), members[0])


def test_best_selects_greedily_on_validation_and_stops_when_nothing_helps():
    """Start from the best candidate alone; add the one that lowers the mixture most; stop when none does.
    Candidate 0 is best alone; 2 is 0's mirror (good where 0 is bad), so they mix well; 1 is a copy of 0,
    which would only tilt the equal weights towards 0; 3 is bad everywhere."""
    best = load_best()
    good, bad = np.full(10, 1.0), np.full(10, 9.0)
    first = np.where(np.arange(10) < 5, good, bad - 0.1)  # 0 is best alone by a hair
    mirror = np.where(np.arange(10) < 5, bad, good)
    chosen, nll = best.choose([first, first.copy(), mirror, np.full(10, 20.0)])
    assert chosen == [0, 2]
    assert nll == pytest.approx(best.mixture_nll([first, mirror]).mean())
    assert nll < first.mean()
    alone, alone_nll = best.choose([np.full(10, 3.0), np.full(10, 5.0)])  # mixing with a worse twin never helps
    assert alone == [0] and alone_nll == 3.0


def test_best_keeps_every_reading_of_the_test_split(tmp_path):
    """A rebuilt column's record keeps each earlier build's test figure, not only the last."""
    import json
    best = load_best()
    path = tmp_path / "metrics.json"
    assert best.earlier_test_reads(str(path)) == []
    first = {"test_nll": 9.6, "test_nll_stderr": 0.02, "valid_nll": 9.5, "members": [{}, {}], "candidates": [{}] * 5}
    path.write_text(json.dumps(first))
    assert best.earlier_test_reads(str(path)) == [{"test_nll": 9.6, "test_nll_stderr": 0.02, "valid_nll": 9.5,
                                                   "runs": 2, "candidates": 5}]
    reads = [{"test_nll": 9.6}, {"test_nll": 9.58}]
    path.write_text(json.dumps(dict(first, test_reads=reads)))
    assert best.earlier_test_reads(str(path)) == reads
