"""The fast path (staircase.py) against the dense reference (made.py), for every option.

The reference is proven by finite differences (test_made.py); here the staircase blocks, the
buffers they reuse and the optimizers' regions must give the reference's numbers to rounding.
So must the dense products with buffers that a GPU runs instead (staircase_blocks False)."""
import numpy as np
import pytest

import backend
import engine
import optim
import staircase
from ancestral import group_by_pattern, log_prob_observed, log_prob_unobserved, observed_first_ordering
from autograd import bernoulli_nll, bernoulli_nll_backward, sigmoid
from conftest import fill_params, random_binary
from made import MADE

OPTIONS = [dict(hidden_sizes=[13]), dict(hidden_sizes=[13], direct=True), dict(hidden_sizes=[13, 11], cond_mask=True),
           dict(hidden_sizes=[13, 11, 9], direct=True, cond_mask=True), dict(hidden_sizes=[], direct=True),
           dict(hidden_sizes=[], direct=True, cond_mask=True)]
CYCLES = [dict(n_masks=1), dict(n_masks=3), dict(n_masks=0), dict(n_masks=3, shuffle="connectivity"),
          dict(n_masks=3, shuffle="once")]


def ids(options):
    return "-".join(f"{key}={value}" for key, value in options.items())


def randomised(model, seed):
    """Random weights everywhere, the removed ones included: the fast path must not rely on them."""
    fill_params(model, np.random.default_rng(seed).standard_normal)
    return model


@pytest.mark.parametrize("blocks", [True, False], ids=["staircase", "dense"])
@pytest.mark.parametrize("options", OPTIONS, ids=ids)
@pytest.mark.parametrize("cycle", CYCLES, ids=ids)
def test_loss_and_every_gradient_equal_the_reference(options, cycle, blocks):
    model = randomised(MADE(10, activation="tanh", dtype="float64", seed=1, **options, **cycle), seed=2)
    model.engine.staircase_blocks = blocks
    for step in range(4):  # across masks of the cycle, and with the same buffers reused
        x = random_binary((7, 10), seed=step)
        reference_loss, reference_grads = model.reference_loss_and_grads(x)
        loss, grads = model.loss_and_grads(x)
        assert set(grads) == set(reference_grads) == set(model.params)
        np.testing.assert_allclose(float(loss), float(reference_loss), rtol=1e-12)
        for name in grads:
            np.testing.assert_allclose(grads[name], reference_grads[name], rtol=1e-10, atol=1e-12, err_msg=name)
        model.next_mask()


@pytest.mark.parametrize("blocks, sorted_from", [(True, 1), (True, engine.SORTED_COPY_PAYS_FROM), (False, None)],
                         ids=["staircase", "staircase where it pays", "dense"])
@pytest.mark.parametrize("options", OPTIONS, ids=ids)
@pytest.mark.parametrize("cycle", CYCLES[:3], ids=ids)
def test_logits_log_prob_and_ensembles_equal_the_reference(options, cycle, blocks, sorted_from, monkeypatch):
    model = randomised(MADE(10, activation="relu", dtype="float64", seed=3, **options, **cycle), seed=4)
    model.engine.staircase_blocks = blocks
    if sorted_from is not None:  # 1: every mask's sorted copy; the default: dense for these 25 examples
        monkeypatch.setattr(engine, "SORTED_COPY_PAYS_FROM", sorted_from)
    x = random_binary((25, 10), seed=5)
    for _ in range(2):
        reference = model.reference_forward(x)
        np.testing.assert_allclose(model.forward(x), reference, rtol=1e-10, atol=1e-12)
        per_variable = np.logaddexp(0, reference) - x * reference
        np.testing.assert_allclose(model.log_prob(x, batch_size=7), -per_variable.sum(axis=1), rtol=1e-10)
        model.next_mask()
    ensemble = []
    with model.keeping_mask():
        for k in range(3):
            model.use_mask(model.cycle_index(k))
            logits = model.reference_forward(x)
            ensemble.append(-(np.logaddexp(0, logits) - x * logits).sum(axis=1))
    expected = np.logaddexp.reduce(ensemble, axis=0) - np.log(3)
    np.testing.assert_allclose(model.log_prob(x, n_masks=3, batch_size=10), expected, rtol=1e-10)


def spy_on_sorted_networks(model):
    """A list that gets the mask index of every sorted network the model makes from now on."""
    made_under, sorted_network = [], model.engine.sorted_network
    model.engine.sorted_network = lambda: made_under.append(model.mask_index) or sorted_network()
    return made_under


def test_evaluation_sorts_a_copy_of_the_weights_only_for_enough_examples(monkeypatch):
    monkeypatch.setattr(engine, "SORTED_COPY_PAYS_FROM", 20)
    x = random_binary((20, 10), seed=8)
    cycled = randomised(MADE(10, [13], n_masks=3, dtype="float64", seed=6), seed=7)
    cycled.use_mask(1)
    copies = spy_on_sorted_networks(cycled)
    few, enough = cycled.log_prob(x[:19]), cycled.log_prob(x)
    assert copies == [1]   # for the 20 examples only: a sorted copy does not pay for 19
    np.testing.assert_allclose(few, enough[:19], rtol=1e-12)
    one_mask = MADE(10, [13], dtype="float64", seed=6)
    copies = spy_on_sorted_networks(one_mask)
    one_mask.log_prob(x[:1])
    assert copies == []    # a one-mask model's own layout is its staircase: nothing to copy
    assert one_mask.engine.network(1) is one_mask.engine._own_staircase()
    randomised(one_mask, seed=7)  # a user wrote into the removed weights: the staircase cannot read them
    assert one_mask.engine.network(1) is one_mask.engine.dense_network()


def test_log_prob_of_observed_and_unobserved_parts_equal_the_reference():
    model = randomised(MADE(8, [12, 10], direct=True, cond_mask=True, n_masks=4, dtype="float64", seed=6), seed=7)
    x = random_binary((9, 8), seed=8)
    observed = np.random.default_rng(9).random((9, 8)) < 0.5
    expected_observed, expected_whole = np.empty(9), np.empty(9)
    with model.keeping_mask():
        for group, (pattern, rows) in enumerate(group_by_pattern(observed)):
            model.use_ordering(observed_first_ordering(pattern, backend.random_generator(3, "pattern_orderings", group)), 3)
            logits = model.reference_forward(x[rows])
            terms = np.logaddexp(0, logits) - x[rows] * logits
            expected_observed[rows] = -terms[:, pattern].sum(axis=1)
            expected_whole[rows] = -terms.sum(axis=1)
    np.testing.assert_allclose(log_prob_observed(model, x, observed, seed=3), expected_observed, rtol=1e-10)
    np.testing.assert_allclose(log_prob_unobserved(model, x, observed, seed=3), expected_whole - expected_observed,
                               rtol=1e-10, atol=1e-12)


def test_float32_fast_path_agrees_with_the_reference_on_an_mnist_sized_model():
    model = MADE(784, [300], direct=True, activation="tanh", seed=10)  # (a relu at its kink may flip)
    x = random_binary((50, 784), seed=11).astype(np.float32)
    loss, grads = model.loss_and_grads(x)
    reference_loss, reference_grads = model.reference_loss_and_grads(x)
    assert abs(float(loss) - float(reference_loss)) < 1e-5 * float(reference_loss)
    for name, grad in grads.items():
        assert grad.dtype == np.float32
        scale = float(np.abs(reference_grads[name]).max()) + 1e-30
        assert float(np.abs(grad - reference_grads[name]).max()) < 1e-4 * scale, name


def test_writing_into_removed_weights_cannot_break_the_autoregressive_property():
    model = MADE(9, [20], direct=True, seed=12, dtype="float64")
    x = random_binary((4, 9), seed=13)
    before = model.forward(x)
    masks = {name: backend.to_host(mask) for name, mask in model.masks().items()}
    for name in ("W0", "W1", "W_direct"):  # every removed weight (mask 0) set to a large value
        model.params[name] = np.where(masks[name] == 0, 1e3, model.params[name])
    written = {name: value.copy() for name, value in model.engine.arrays.items()}
    np.testing.assert_allclose(model.forward(x), before, rtol=1e-12)
    loss, grads = model.loss_and_grads(x)
    for name in ("W0", "W1", "W_direct"):
        assert not grads[name][masks[name] == 0].any(), name
        np.testing.assert_array_equal(model.engine.arrays[name], written[name])  # read, never cleaned


def test_gradients_are_buffers_valid_until_the_next_call():
    model = MADE(6, [8], dtype="float64", seed=14)
    _, first = model.loss_and_grads(random_binary((5, 6), seed=15))
    kept = {name: grad.copy() for name, grad in first.items()}
    _, second = model.loss_and_grads(random_binary((5, 6), seed=16))
    assert all(second.buffers[name] is first.buffers[name] for name in first)  # the same arrays, refilled
    assert any(not np.array_equal(second[name], kept[name]) for name in kept)


def test_a_cycle_kept_as_boolean_masks_trains_as_one_kept_in_floats(monkeypatch):
    """Where only booleans let a cycle's masks fit the cache, they are kept as booleans; every
    product, and so every loss and gradient, stays the same to the bit."""
    options = dict(hidden_sizes=[30], direct=True, cond_mask=True, n_masks=3, seed=18)
    in_floats = MADE(12, **options)
    elements = 3 * (30 * 12 + 12 * 30 + 12 * 12)
    monkeypatch.setattr(engine, "MASK_CACHE_BYTES", 2 * elements)  # room for booleans, not for float32
    compact = MADE(12, **options)
    assert in_floats.engine.mask_dtype == "float32" and compact.engine.mask_dtype is bool
    for step in range(7):  # twice around the cycle: the second time from the cache
        x = random_binary((8, 12), seed=step)
        (loss, grads), (compact_loss, compact_grads) = in_floats.loss_and_grads(x), compact.loss_and_grads(x)
        assert compact_loss == loss and all(np.array_equal(compact_grads[name], grads[name]) for name in grads)
        assert all(mask.dtype == bool for mask in compact.engine.layout_masks().values())
        in_floats.next_mask(), compact.next_mask()
    assert sorted(compact.engine._cache) == [0, 1, 2]


@pytest.mark.parametrize("rule", sorted(optim.OPTIMIZERS))
def test_updating_only_the_regions_equals_updating_everything(rule, monkeypatch):
    monkeypatch.setattr(staircase, "LONG_ROWS", 1)  # blocks cut at their width, even on short rows
    monkeypatch.setattr(engine, "BAND", 8)  # and cut into bands of a row or two
    models = [MADE(12, [30, 20], direct=True, cond_mask=True, dtype="float64", seed=17) for _ in range(2)]
    optimizers = [optim.make_optimizer(rule, model) for model in models]
    for step in range(5):
        x = random_binary((8, 12), seed=step)
        _, grads = models[0].loss_and_grads(x)
        assert any(region is not Ellipsis for regions in grads.regions.values() for region in regions)
        optimizers[0].step(grads)
        _, grads = models[1].loss_and_grads(x)
        optimizers[1].step(dict(grads))  # a plain dict has no regions: every element updated
    for name in models[0].params:
        np.testing.assert_allclose(models[0].params[name], models[1].params[name], rtol=1e-12, err_msg=name)


@pytest.mark.parametrize("n_out, n_in, strict", [(300, 40, False), (40, 300, True), (7, 7, True), (1, 5, False)])
def test_staircase_products_equal_dense_masked_products(n_out, n_in, strict):
    rng = np.random.default_rng(n_out)
    degrees_in, degrees_out = np.sort(rng.integers(0, 20, n_in)), np.sort(rng.integers(0, 20, n_out))
    product = staircase.Staircase(staircase.prefixes(degrees_out, degrees_in, strict), n_in, np, "float64")
    mask = (degrees_out[:, None] > degrees_in[None, :]) if strict else (degrees_out[:, None] >= degrees_in[None, :])
    weight, x, grad_out = rng.standard_normal((n_out, n_in)), rng.standard_normal((6, n_in)), rng.standard_normal((6, n_out))
    masked = weight * mask
    assert product.removed_are_zero(masked)
    edges_remove = any(block.removed.any() for block in product.row_blocks)  # (a single row has no edge)
    assert product.removed_are_zero(weight) != edges_remove
    product.zero_removed(weight)  # what the engine does to its sorted copies
    np.testing.assert_array_equal(weight[mask], masked[mask])
    np.testing.assert_allclose(product.forward(weight, x, np.empty((6, n_out))), x @ masked.T, atol=1e-12)
    np.testing.assert_allclose(product.backward_input(weight, grad_out, np.empty((6, n_in))), grad_out @ masked, atol=1e-12)
    np.testing.assert_allclose(product.backward_weight(grad_out, x, np.zeros((n_out, n_in))), (grad_out.T @ x) * mask, atol=1e-12)
    assert product.multiply_adds(6) <= 6 * n_out * n_in


# ----------------------------------------------------------------------------------------------
# The loss, arranged for speed, against autograd's plain one


@pytest.mark.parametrize("scale", [1.0, 50.0, 1e4])
def test_fused_loss_and_gradient_match_the_separate_ones(scale):
    rng = np.random.default_rng(7)
    logits = rng.standard_normal((6, 9)) * scale
    x = (rng.random((6, 9)) < 0.5).astype(np.float64)
    nll, grad = staircase.bernoulli_nll_and_backward(logits, x)
    np.testing.assert_allclose(nll, bernoulli_nll(logits, x), rtol=1e-14)
    np.testing.assert_allclose(grad, bernoulli_nll_backward(logits, x), rtol=1e-14, atol=1e-15)
    # in the tails the fused gradient keeps its relative precision, where σ(a) − 1 would cancel:
    # for x = 1 it is σ(a) − 1 = −σ(−a), and σ is exact in its tails
    exact = np.where(x == 1, -sigmoid(-logits), sigmoid(logits))
    np.testing.assert_allclose(grad, exact, rtol=1e-14, atol=1e-300)


@pytest.mark.parametrize("width", [1, 2, 3, 7, 64, 65, 784, 1000])
def test_sum_log_equals_the_sum_of_logs(width):
    values = 1 + np.random.default_rng(width).random((4, width))
    np.testing.assert_allclose(staircase.sum_log(values.copy()), np.log(values).sum(axis=1), rtol=1e-13)
    # float32 at the top of the range: 784 values of 2 fold into products of 2^64, no overflow
    twos = np.full((2, 784), 2.0, dtype=np.float32)
    with np.errstate(over="raise"):
        np.testing.assert_allclose(staircase.sum_log(twos), 784 * np.log(2.0), rtol=1e-6)


@pytest.mark.parametrize("scale", [1.0, 50.0])
def test_nll_into_a_buffer_equals_the_plain_one(scale):
    rng = np.random.default_rng(8)
    logits = rng.standard_normal((6, 9)) * scale
    x = (rng.random((6, 9)) < 0.5).astype(np.float64)
    scratch = np.empty_like(logits)
    np.testing.assert_allclose(staircase.bernoulli_nll_into(logits, x, scratch), bernoulli_nll(logits, x),
                               rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_loss_is_finite_and_right_for_extreme_logits(dtype):
    logits = np.array([[1e4, -1e4, 1e4, -1e4, 80.0, -80.0]], dtype=dtype)
    x = np.array([[1, 0, 0, 1, 1, 0]], dtype=dtype)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        nll, grad = staircase.bernoulli_nll_and_backward(logits, x)
    np.testing.assert_allclose(nll, [2e4], rtol=1e-6)
    np.testing.assert_allclose(grad, [[0, 0, 1, -1, 0, 0]], atol=1e-30)
    assert nll.dtype == dtype and grad.dtype == dtype
