"""Mask cycling, ensembles, the fast and naive samplers, completion, and the sample/evaluate CLIs."""
import itertools
import math

import numpy as np
import pytest

import evaluate
import runs
import ancestral
import sample as sampling
from conftest import fill_params, random_binary
from autograd import bernoulli_nll
from ancestral import completes_in_own_ordering, log_prob_observed, log_prob_unobserved
from made import MADE


def randomised(model, seed=0, scale=1.0):
    """Random weights and biases everywhere, so no zero hides a connection or a difference."""
    rng = np.random.default_rng(seed)
    fill_params(model, lambda shape: rng.standard_normal(shape) * scale)
    return model


def all_states(n_in):
    return np.array(list(itertools.product([0, 1], repeat=n_in)), dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# Masks and ensembles


def test_ensemble_of_identical_masks_equals_one_mask():
    model = randomised(MADE(7, [15, 12], direct=True, n_masks=5, shuffle="once", dtype="float64"))
    x = random_binary((20, 7))
    np.testing.assert_allclose(model.log_prob(x, n_masks=5), model.log_prob(x), rtol=1e-13)


def test_ensemble_averages_probabilities_not_logits():
    model = randomised(MADE(7, [15], n_masks=6, dtype="float64"))
    x = random_binary((20, 7))
    per_mask = []
    for k in range(6):
        model.use_mask(k)
        per_mask.append(np.exp(model.log_prob(x).astype(np.longdouble)))
    model.use_mask(0)
    direct = np.log(np.mean(per_mask, axis=0)).astype(np.float64)
    np.testing.assert_allclose(model.log_prob(x, n_masks=6), direct, rtol=1e-12)
    assert model.mask_index == 0, "the ensemble must restore the current mask"
    # and the ensemble is still a normalised distribution over all states
    assert math.isclose(np.exp(model.log_prob(all_states(7), n_masks=6)).sum(), 1.0, rel_tol=1e-12)
    # where averaging the masks' logits, a common mistake, gives conditionals that follow no single
    # ordering, and so no distribution at all
    states = all_states(7)
    mean_logits = np.mean([(model.use_mask(k), model.forward(states))[1] for k in range(6)], axis=0)
    assert abs(np.exp(-bernoulli_nll(mean_logits, states)).sum() - 1.0) > 1e-3


@pytest.mark.parametrize("shuffle,ordering_changes,connectivity_changes",
                         [("full", True, True), ("ordering", True, False),
                          ("connectivity", False, True), ("once", False, False)])
def test_each_shuffle_kind_changes_what_it_should(shuffle, ordering_changes, connectivity_changes):
    model = MADE(10, [20, 20], n_masks=4, shuffle=shuffle, seed=1)
    first_ordering, first_connectivity = model.ordering.copy(), [c.copy() for c in model.hidden_degrees]
    for _ in range(3):
        model.next_mask()
        assert (not np.array_equal(model.ordering, first_ordering)) == ordering_changes
        same = all(np.array_equal(a, b) for a, b in zip(model.hidden_degrees, first_connectivity))
        assert (not same) == connectivity_changes


def test_use_mask_reproduces_mask_k_and_the_cycle_wraps():
    model = MADE(10, [20], direct=True, n_masks=3, seed=2)
    masks = []
    for _ in range(3):
        masks.append(model.masks())
        model.next_mask()
    assert model.mask_index == 0, "after K steps the cycle is back at mask 0"
    other = MADE(10, [20], direct=True, n_masks=3, seed=2)
    for k in (2, 0, 1):
        other.use_mask(k)
        for name in masks[k]:
            np.testing.assert_array_equal(other.masks()[name], masks[k][name])
    assert not np.array_equal(masks[0]["W0"], masks[1]["W0"])


def test_infinite_masks_never_repeat():
    model = MADE(12, [30], n_masks=0, seed=3)
    orderings = set()
    for _ in range(20):
        orderings.add(tuple(model.ordering))
        model.next_mask()
    assert model.mask_index == 20 and len(orderings) == 20


# ----------------------------------------------------------------------------------------------
# Sampling


OPTIONS = [dict(hidden_sizes=hidden, direct=direct, cond_mask=cond)
           for hidden in ([17], [17, 13], [17, 13, 11]) for direct in (False, True) for cond in (False, True)]
OPTIONS += [dict(hidden_sizes=[], direct=True, cond_mask=False), dict(hidden_sizes=[], direct=True, cond_mask=True)]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: f"{o['hidden_sizes']}{'+direct' * o['direct']}{'+cond' * o['cond_mask']}")
def test_fast_sampler_equals_naive_sampler(options):
    model = randomised(MADE(9, activation="tanh", dtype="float64", seed=4, **options), seed=5, scale=2.0)
    uniforms = np.random.default_rng(6).random((300, 9))
    fast = ancestral.sample_fast(model, uniforms)
    np.testing.assert_array_equal(fast, ancestral.sample_naive(model, uniforms))
    assert set(np.unique(fast)) <= {0.0, 1.0}


def test_samplers_agree_in_float32_on_mnist_sized_models():
    model = randomised(MADE(784, [50, 40], direct=True, seed=7), seed=8, scale=0.3)
    uniforms = np.random.default_rng(9).random((5, 784)).astype(np.float32)
    mismatches = (ancestral.sample_fast(model, uniforms) != ancestral.sample_naive(model, uniforms)).mean()
    assert mismatches < 1e-3  # float32 sums in another order may flip a draw with u within 1e-7 of σ(a)


def total_variation_bound(exact, n):
    """E[TV] ≤ ½ Σ √(p(1 − p)/n) for n samples; TV moves by at most 1/n per sample, so by McDiarmid it
    exceeds its mean by 0.02 with probability ≤ exp(−2 n 0.02²) = exp(−16) at n = 20 000."""
    return 0.5 * np.sqrt(exact * (1 - exact) / n).sum() + 0.02


def test_samples_follow_the_exact_distribution():
    model = randomised(MADE(8, [20, 20], direct=True, cond_mask=True, dtype="float64", seed=10), seed=11, scale=1.5)
    states = all_states(8)
    exact = np.exp(model.log_prob(states))
    samples = ancestral.sample(model, 20000, seed=12)
    index = (samples @ (2 ** np.arange(7, -1, -1))).astype(int)  # row of `states` for each sample
    empirical = np.bincount(index, minlength=256) / 20000
    bound = total_variation_bound(exact, 20000)
    assert 0.5 * np.abs(empirical - exact).sum() < bound
    # the bound has power: the samples of a different model of the same shape are far outside it
    other = np.exp(randomised(MADE(8, [20, 20], dtype="float64", seed=13), seed=14, scale=1.5).log_prob(states))
    assert 0.5 * np.abs(empirical - other).sum() > 2 * bound


def test_sample_is_reproducible_from_the_seed_and_uses_the_current_mask():
    model = randomised(MADE(10, [20], n_masks=3, seed=15), seed=16)
    first = ancestral.sample(model, 50, seed=1)
    np.testing.assert_array_equal(first, ancestral.sample(model, 50, seed=1))
    model.use_mask(2)
    assert not np.array_equal(first, ancestral.sample(model, 50, seed=1))


# ----------------------------------------------------------------------------------------------
# Completion


def test_completion_keeps_observed_values_and_restores_the_mask():
    model = randomised(MADE(16, [30], n_masks=4, seed=17), seed=18)
    model.use_mask(1)
    x = random_binary((6, 16), seed=19)
    observed = np.random.default_rng(20).random((6, 16)) < 0.5
    filled = ancestral.complete(model, x, observed, n=4, seed=21)
    assert filled.shape == (6, 4, 16)
    assert np.all(filled[:, :, :][np.broadcast_to(observed[:, None], filled.shape)]
                  == np.broadcast_to(x[:, None], filled.shape)[np.broadcast_to(observed[:, None], filled.shape)])
    assert model.mask_index == 1


def test_completion_matches_the_exact_conditional():
    model = randomised(MADE(7, [20, 20], direct=True, dtype="float64", seed=22), seed=23, scale=1.5)
    x = np.array([[1, 0, 0, 1, 0, 1, 1]], dtype=np.float64)
    observed = np.array([True, False, True, False, False, True, False])
    filled = ancestral.complete(model, x, observed, n=20000, seed=24)[0]
    # the completion's model: the ordering and connectivity complete() used for this pattern
    from ancestral import observed_first_ordering
    import backend
    model.use_ordering(observed_first_ordering(observed, backend.random_generator(24, "pattern_orderings", 0)), seed=24)
    states = all_states(7)
    consistent = np.all(states[:, observed] == x[0, observed], axis=1)
    joint = np.exp(model.log_prob(states[consistent]))
    exact = joint / joint.sum()  # p(x_U | x_O) over the 16 completions
    index = {tuple(s): i for i, s in enumerate(states[consistent])}
    empirical = np.bincount([index[tuple(row)] for row in filled], minlength=len(exact)) / 20000
    assert 0.5 * np.abs(empirical - exact).sum() < total_variation_bound(exact, 20000)
    # log p(x_O) under the same ordering is the marginal: Σ over completions of p(x_O, x_U)
    model.use_mask(0)
    log_marginal = log_prob_observed(model, x, observed, seed=24)[0]
    assert math.isclose(log_marginal, math.log(joint.sum()), rel_tol=1e-12)


def test_a_model_of_one_ordering_that_puts_the_observed_first_completes_under_it():
    # the raster ordering with the first 3 variables observed: the model's own ordering serves
    model = randomised(MADE(7, [20, 20], direct=True, ordering="natural", dtype="float64", seed=40), seed=41, scale=1.5)
    observed = np.arange(7) < 3
    assert completes_in_own_ordering(model, observed) and not completes_in_own_ordering(model, ~observed)
    x = random_binary((9, 7), seed=42)
    own = model.log_prob(x)
    log_observed, log_unobserved = log_prob_observed(model, x, observed), log_prob_unobserved(model, x, observed)
    np.testing.assert_allclose(log_observed + log_unobserved, own, rtol=1e-12)
    logits = model.forward(x)
    np.testing.assert_allclose(log_unobserved, -bernoulli_nll(logits[:, 3:], x[:, 3:]), rtol=1e-12)
    # completions are drawn from the model's own p(x_U | x_O)
    x = np.array([[1, 0, 1, 0, 0, 1, 0]], dtype=np.float64)
    filled = ancestral.complete(model, x, observed, n=20000, seed=43)[0]
    states = all_states(7)
    consistent = states[np.all(states[:, observed] == x[0, observed], axis=1)]
    exact = np.exp(model.log_prob(consistent))
    exact /= exact.sum()
    index = {tuple(s): i for i, s in enumerate(consistent)}
    empirical = np.bincount([index[tuple(row)] for row in filled], minlength=len(exact)) / 20000
    assert 0.5 * np.abs(empirical - exact).sum() < total_variation_bound(exact, 20000)
    # the same for scattered observed values that a given ordering happens to put first
    scattered = np.isin(np.arange(10), [1, 4, 6, 8])
    ordering = [6, 1, 8, 4, 3, 0, 9, 2, 7, 5]
    model = randomised(MADE(10, [15], direct=True, ordering=ordering, dtype="float64", seed=47), seed=48)
    x = random_binary((9, 10), seed=49)
    np.testing.assert_allclose(log_prob_observed(model, x, scattered) + log_prob_unobserved(model, x, scattered),
                               model.log_prob(x), rtol=1e-12)


def test_a_connectivity_agnostic_model_completes_under_its_own_ordering_and_mask_seed():
    model = randomised(MADE(10, [15], n_masks=4, shuffle="connectivity", ordering="natural", seed=44), seed=45)
    x = random_binary((6, 10), seed=46)
    observed = np.arange(10) < 4
    log_p = log_prob_observed(model, x, observed, seed=2) + log_prob_unobserved(model, x, observed, seed=2)
    model.use_mask(2)
    np.testing.assert_allclose(log_p, model.log_prob(x), rtol=1e-5)
    # a pattern its ordering does not put first: an observed-first ordering outside its cycle
    assert not completes_in_own_ordering(model, ~observed)
    log_p = log_prob_observed(model, x, ~observed, seed=2) + log_prob_unobserved(model, x, ~observed, seed=2)
    assert not np.allclose(log_p, model.log_prob(x), rtol=1e-3)


def test_scores_of_observed_parts_report_progress_over_every_example():
    # scattered patterns, one per row: one ordering each, so the work is reported as it goes
    model = randomised(MADE(10, [15], n_masks=4, seed=50), seed=51)
    x = random_binary((7, 10), seed=52)
    observed = np.random.default_rng(53).random((7, 10)) < 0.5
    for score in (log_prob_observed, log_prob_unobserved):
        reports = []
        log_p = score(model, x, observed, batch_size=2, progress=lambda done, total: reports.append((done, total)))
        np.testing.assert_array_equal(log_p, score(model, x, observed, batch_size=2))
        assert reports[-1] == (7, 7) and all(total == 7 for _, total in reports)
        assert np.all(np.diff([done for done, _ in reports]) > 0)


def test_fast_and_naive_completion_agree():
    model = randomised(MADE(12, [25, 25], direct=True, dtype="float64", seed=25), seed=26)
    x = random_binary((5, 12), seed=27)
    observed = np.arange(12) < 5
    np.testing.assert_array_equal(ancestral.complete(model, x, observed, n=3, seed=28),
                                  ancestral.complete(model, x, observed, n=3, seed=28, method="naive"))


# ----------------------------------------------------------------------------------------------
# Command lines on a small trained run


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    import train
    folder = tmp_path_factory.mktemp("run")
    rng = np.random.default_rng(0)
    splits = [(rng.random((n, 16)) < 0.3).astype(np.float32) for n in (300, 50, 50)]
    path = str(folder / "squares.npz")
    np.savez(path, train_data=splits[0], valid_data=splits[1], test_data=splits[2])
    assert train.main(["--dataset", path, "--hidden", "20", "--masks", "4", "--epochs", "2",
                       "--out", str(folder / "run")]) == 0
    return str(folder / "run")


def test_sample_cli_writes_a_grid_and_the_samples(small_run, tmp_path):
    out = tmp_path / "s.png"
    assert sampling.main([small_run, "--n", "20", "--out", str(out)]) == 0
    assert out.exists() and np.load(tmp_path / "s.npy").shape == (20, 16)


def test_sample_cli_completes_from_the_top(small_run, tmp_path, capsys):
    out = tmp_path / "c.png"
    assert sampling.main([small_run, "--complete", "--observe", "top", "--examples", "3", "--completions", "2",
                          "--out", str(out)]) == 0
    filled = np.load(tmp_path / "c.npy")
    assert filled.shape == (3, 2, 16) and out.exists()
    assert "warning" not in capsys.readouterr().err  # trained with --masks 4: orderings vary


def test_completion_warns_only_when_a_model_of_one_ordering_never_trained_on_one_that_fits(tmp_path, capsys):
    import train
    rng = np.random.default_rng(1)
    path = str(tmp_path / "squares.npz")
    np.savez(path, **{f"{split}_data": (rng.random((n, 16)) < 0.3).astype(np.float32)
                      for split, n in (("train", 100), ("valid", 20), ("test", 20))})
    run = str(tmp_path / "raster")
    assert train.main(["--dataset", path, "--hidden", "10", "--ordering", "natural", "--epochs", "1", "--out", run]) == 0
    capsys.readouterr()
    for observe, warned in (("top", False), ("bottom", True)):
        assert sampling.main([run, "--complete", "--observe", observe, "--examples", "2", "--completions", "1",
                              "--out", str(tmp_path / f"{observe}.png")]) == 0
        assert evaluate.main([run, "--observe", observe, "--complete"]) == 0
        err = capsys.readouterr().err
        assert ("sample.py: warning" in err) == warned and ("evaluate.py: warning" in err) == warned


def test_evaluate_cli_reports_nll_and_per_example_scores(small_run, tmp_path, capsys):
    csv = tmp_path / "scores.csv"
    assert evaluate.main([small_run, "--per-example", str(csv)]) == 0
    assert "4-mask ensemble" in capsys.readouterr().out
    rows = csv.read_text().splitlines()
    assert rows[0] == "index,log_prob" and len(rows) == 51
    assert evaluate.main([small_run, "--observe", "random:0.5"]) == 0
    assert evaluate.main([small_run, "--observe", "left"]) == 0
    capsys.readouterr()
    assert evaluate.main([small_run, "--observe", "top", "--complete"]) == 0
    assert "log p(x_U | x_O) with --observe top" in capsys.readouterr().out
    assert evaluate.main([small_run, "--complete"]) == 2
    assert "needs --observe" in capsys.readouterr().err


def test_evaluate_refuses_data_of_another_width(small_run, tmp_path, capsys):
    path = str(tmp_path / "wide.npz")
    np.savez(path, **{f"{s}_data": np.zeros((4, 9)) for s in ("train", "valid", "test")})
    assert evaluate.main([small_run, "--dataset", path]) == 2
    assert "9 variables" in capsys.readouterr().err


def test_a_run_without_metrics_is_found_from_its_checkpoint(small_run, tmp_path):
    import shutil
    unfinished = tmp_path / "unfinished"
    shutil.copytree(small_run, unfinished)
    (unfinished / "metrics.json").unlink()  # as while training, or after an interruption
    assert runs.settings_of(str(unfinished))["dataset"].endswith("squares.npz")
    assert evaluate.main([str(unfinished)]) == 0


def chi_square(samples, probabilities):
    """Pearson's statistic of samples (n, D) of 0/1 against exact probabilities of all 2^D states
    (in all_states' order), and its 1e-4 critical value (Wilson–Hilferty) for 2^D − 1 degrees of freedom."""
    n, n_in = samples.shape
    index = samples.astype(np.int64) @ (2 ** np.arange(n_in - 1, -1, -1))
    observed = np.bincount(index, minlength=2 ** n_in)
    expected = n * probabilities
    statistic = float(((observed - expected) ** 2 / expected).sum())
    df, z = 2 ** n_in - 1, 3.719  # z: the normal's 1 − 1e-4 quantile
    return statistic, df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


@pytest.mark.parametrize("what", ["one model", "an ensemble", "a mixture of runs"])
def test_samples_follow_the_density_the_tools_report(what):
    """sample_mixture draws from exactly the density log_prob / mixture_log_prob report: on models
    small enough to enumerate (D = 6), the frequencies of 60 000 samples pass a χ² test against the
    exact probabilities, and samples drawn under one mask of an ensemble fail it (so it can fail)."""
    from made import mixture_log_prob
    many = randomised(MADE(6, [10], n_masks=4, direct=True, seed=1, dtype="float64"), seed=1, scale=1.5)
    one = randomised(MADE(6, [8], seed=2, dtype="float64"), seed=2, scale=1.5)
    models, counts = {"one model": ([one], [None]), "an ensemble": ([many], [4]),
                      "a mixture of runs": ([many, one], [4, None])}[what]
    states = all_states(6)
    probabilities = np.exp(backend_host(mixture_log_prob(models, states, counts)))
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-12)
    samples = ancestral.sample_mixture(models, 60000, counts, seed=3)
    statistic, critical = chi_square(samples, probabilities)
    assert statistic < critical, (what, statistic, critical)
    if what != "one model":  # the first component's first mask alone is another distribution
        wrong = ancestral.sample_mixture(models[:1], 60000, [None], seed=3)
        assert chi_square(wrong, probabilities)[0] > critical


def backend_host(array):
    import backend
    return backend.to_host(array)
