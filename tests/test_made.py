"""The model: whole-network gradients, the autoregressive property, masks, saving and loading."""
import itertools
import math

import numpy as np
import pytest

from conftest import check_param_gradient, fill_params, random_binary
import backend
from made import MADE, CheckpointError, input_degrees
from weights import init_weight

ARCHITECTURES = [[9], [9, 8], [9, 8, 7]]


def check_model_gradients(model, x):
    """Compare every parameter's gradient with finite differences, at a generic point: random
    biases keep hidden units off relu's kink, where the derivative does not exist."""
    rng = np.random.default_rng(0)
    for name, param in model.params.items():
        if name.startswith("b"):
            model.params[name] = rng.uniform(0.1, 0.5, param.shape) * rng.choice([-1, 1], param.shape)
    for loss_and_grads in (model.reference_loss_and_grads, model.loss_and_grads):  # dense, then staircase
        _, grads = loss_and_grads(x)
        assert set(grads) == set(model.params)
        grads = {name: np.array(backend.to_host(grad)) for name, grad in grads.items()}
        for name in model.params:
            error = check_param_gradient(model, name, lambda: loss_and_grads(x)[0], grads[name])
            assert error < 1e-6, f"{name}: relative error {error:.2e} ({loss_and_grads.__name__})"


@pytest.mark.parametrize("hidden", ARCHITECTURES, ids=["1 layer", "2 layers", "3 layers"])
@pytest.mark.parametrize("direct", [False, True], ids=["", "direct"])
@pytest.mark.parametrize("cond_mask", [False, True], ids=["", "cond"])
def test_model_gradients(hidden, direct, cond_mask):
    model = MADE(6, hidden, activation="tanh", direct=direct, cond_mask=cond_mask, dtype="float64", seed=3)
    check_model_gradients(model, random_binary((5, 6), seed=4))


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "softplus"])
def test_model_gradients_each_activation(activation):
    model = MADE(6, [9, 8], activation=activation, direct=True, dtype="float64", seed=5)
    check_model_gradients(model, random_binary((5, 6), seed=6))


@pytest.mark.parametrize("cond_mask", [False, True])
def test_shallow_made_gradients(cond_mask):
    model = MADE(6, [], direct=True, cond_mask=cond_mask, dtype="float64", seed=7)
    check_model_gradients(model, random_binary((5, 6), seed=8))


def test_orthogonal_init_gradients_and_orthogonality():
    rng = np.random.default_rng(9)
    w = init_weight((9, 6), "orthogonal", rng)  # orthonormal columns
    np.testing.assert_allclose(w.T @ w, np.eye(6), atol=1e-12)
    w = init_weight((4, 9), "orthogonal", rng)  # orthonormal rows
    np.testing.assert_allclose(w @ w.T, np.eye(4), atol=1e-12)
    # a cycle keeps every weight (each mask uses others); in any numbering of the units
    model = MADE(6, [9, 4], init="orthogonal", n_masks=2, dtype="float64", seed=9)
    w = model.params["W0"]
    np.testing.assert_allclose(w.T @ w, np.eye(6), atol=1e-12)
    check_model_gradients(model, random_binary((5, 6), seed=10))


# ----------------------------------------------------------------------------------------------
# The autoregressive property


def reach_in_data_order(model):
    """Which outputs can reach which inputs, from the product of the model's masks (in the data's
    numbering) along every path: (D, D) 0/1, [d, j] = 1 when some path of kept weights leads from j to d."""
    masks = {name: np.asarray(backend.to_host(mask), dtype=np.float64) for name, mask in model.masks().items()}
    reach = 0
    if model.hidden_sizes:
        reach = masks["W0"]
        for layer in range(1, len(model.hidden_sizes) + 1):
            reach = masks[f"W{layer}"] @ reach
    if model.direct:
        reach = reach + masks["W_direct"]
    return (reach > 0).astype(np.int64)


def allowed_pairs(ordering):
    """[d, j] = 1 when input j comes strictly before output d in the ordering."""
    position = input_degrees(ordering)
    return (position[:, None] > position[None, :]).astype(np.int64)


@pytest.mark.parametrize("seed", range(6))
def test_changing_an_input_never_changes_earlier_outputs(seed):
    rng = np.random.default_rng(seed)
    n_in = int(rng.integers(2, 12))
    hidden = [int(h) for h in rng.integers(1, 20, size=rng.integers(0, 4))]
    model = MADE(n_in, hidden, direct=not hidden or bool(rng.integers(2)), cond_mask=bool(rng.integers(2)),
                 activation=str(rng.choice(["relu", "tanh"])), dtype="float64", seed=seed)
    # random weights and biases everywhere, so that no zero hides a connection
    fill_params(model, rng.standard_normal)
    position = input_degrees(model.ordering)
    x = random_binary((3, n_in), seed=seed)
    logits = model.forward(x)
    for d in range(n_in):
        flipped = x.copy()
        flipped[:, d] = 1 - flipped[:, d]
        changed = np.any(model.forward(flipped) != logits, axis=0)
        earlier_or_same = position <= position[d]
        assert not changed[earlier_or_same].any(), f"input {d} changed an output at or before its position"
    assert np.all(reach_in_data_order(model) <= allowed_pairs(model.ordering))


@pytest.mark.parametrize("hidden", [[], [60], [60, 60], [60, 60, 60]])
def test_masks_connect_exactly_the_allowed_pairs(hidden):
    model = MADE(8, hidden, direct=not hidden, seed=11)
    np.testing.assert_array_equal(reach_in_data_order(model), allowed_pairs(model.ordering))


def test_hidden_degrees_are_in_the_papers_range():
    model = MADE(10, [50, 50, 50], seed=12)
    low = 0
    for degrees in model.hidden_degrees:
        assert degrees.min() >= low and degrees.max() <= 10 - 2
        low = degrees.min()


def test_natural_and_given_orderings():
    assert list(MADE(5, [8], ordering="natural").ordering) == [0, 1, 2, 3, 4]
    assert list(MADE(5, [8], ordering=[4, 2, 0, 1, 3]).ordering) == [4, 2, 0, 1, 3]
    with pytest.raises(ValueError, match="permutation"):
        MADE(5, [8], ordering=[0, 0, 1, 2, 3])


# ----------------------------------------------------------------------------------------------
# Values


@pytest.mark.parametrize("hidden,direct", [([7], False), ([7, 5], True), ([], True)])
def test_zero_model_gives_d_log_2(hidden, direct):
    model = MADE(6, hidden, direct=direct, dtype="float64")
    fill_params(model, np.zeros)
    log_p = model.log_prob(random_binary((4, 6)))
    np.testing.assert_allclose(log_p, -6 * math.log(2), rtol=1e-14)


def test_log_prob_is_a_normalised_distribution():
    """Σ over all 2^D states of p(x) = 1: the model is an exact density, not an approximation."""
    model = MADE(7, [12, 9], direct=True, cond_mask=True, dtype="float64", seed=13)
    states = np.array(list(itertools.product([0, 1], repeat=7)), dtype=np.float64)
    assert math.isclose(np.exp(model.log_prob(states)).sum(), 1.0, rel_tol=1e-12)


def test_nll_finite_for_extreme_logits():
    model = MADE(6, [7], direct=True)
    model.params["b1"] = np.where(np.arange(6) % 2, 1e4, -1e4)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, grads = model.loss_and_grads(random_binary((4, 6)))
    assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads.values())


def test_float32_by_default_and_no_upcast():
    model = MADE(6, [7], direct=True, cond_mask=True)
    x = random_binary((4, 6)).astype(np.float32)
    assert all(p.dtype == np.float32 for p in model.engine.arrays.values())
    assert all(p.dtype == np.float32 for p in model.params.values())
    assert model.forward(x).dtype == np.float32
    assert model.log_prob(x).dtype == np.float32
    assert all(g.dtype == np.float32 for g in model.loss_and_grads(x)[1].values())


def test_a_parameter_written_takes_effect_and_a_copy_cannot_be_written():
    model = MADE(6, [7])
    x = random_binary((4, 6))
    before = model.log_prob(x).copy()
    model.params["b1"] = model.params["b1"] + 1.0
    assert not np.array_equal(model.log_prob(x), before)
    with pytest.raises(ValueError, match="read-only"):
        model.params["b1"][0] = 5.0  # a copy: writing into it would change nothing, so it refuses
    with pytest.raises(ValueError, match="shape"):
        model.params["W0"] = np.zeros((6, 7))
    with pytest.raises(ValueError, match="not a parameter"):
        model.params["W9"] = np.zeros((7, 6))


@pytest.mark.parametrize("options", [dict(hidden_sizes=[7]), dict(hidden_sizes=[7, 5], direct=True, n_masks=3),
                                     dict(hidden_sizes=[], direct=True), dict(hidden_sizes=[6], cond_mask=True)],
                         ids=["one mask", "cycle", "shallow", "cond"])
def test_the_parameters_are_in_the_datas_numbering(options):
    """Column j of W0 is input j, row d of the output weights is output d: the network written out
    in plain NumPy on model.params and model.masks() gives the model's logits, for weights written
    anywhere (the places the masks remove included), under every mask of the cycle."""
    model = MADE(6, dtype="float64", seed=3, **options)
    fill_params(model, np.random.default_rng(4).standard_normal)
    x = random_binary((5, 6), seed=5)
    for k in range(model.n_masks):
        model.use_mask(k)
        p, m = model.params, {name: backend.to_host(mask) for name, mask in model.masks().items()}
        h, n_hidden = x, len(model.hidden_sizes)
        for layer in range(n_hidden):
            bias = p[f"b{layer}"] + ((p[f"U{layer}"] * m[f"W{layer}"]).sum(1) if model.cond_mask else 0)
            h = np.maximum(h @ (p[f"W{layer}"] * m[f"W{layer}"]).T + bias, 0)
        logits = p[f"b{n_hidden}"] + (h @ (p[f"W{n_hidden}"] * m[f"W{n_hidden}"]).T if n_hidden else 0)
        if model.cond_mask and n_hidden:
            logits = logits + (p[f"U{n_hidden}"] * m[f"W{n_hidden}"]).sum(1)
        if model.direct:
            logits = logits + x @ (p["W_direct"] * m["W_direct"]).T
        np.testing.assert_allclose(model.forward(x), logits, rtol=1e-12, atol=1e-12)


def test_float32_model_agrees_with_float64():
    model64 = MADE(20, [30, 30], direct=True, dtype="float64", seed=14)
    model32 = MADE(20, [30, 30], direct=True, dtype="float32", seed=14)
    x = random_binary((50, 20), seed=15)
    np.testing.assert_allclose(model32.log_prob(x), model64.log_prob(x), rtol=1e-5)


# ----------------------------------------------------------------------------------------------
# Saving and loading


@pytest.mark.parametrize("options", [dict(hidden_sizes=[9, 8], direct=True, cond_mask=True, n_masks=4),
                                     dict(hidden_sizes=[], direct=True, ordering="natural"),
                                     dict(hidden_sizes=[5], activation="softplus", dtype="float64", n_masks=0)])
def test_save_then_load_reproduces_log_prob_exactly(tmp_path, options):
    model = MADE(6, seed=16, **options)
    rng = np.random.default_rng(17)
    for name, param in model.params.items():
        model.params[name] = param + rng.standard_normal(param.shape)
    model.next_mask()
    model.next_mask()
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = MADE.load(path)
    x = random_binary((9, 6), seed=18)
    np.testing.assert_array_equal(loaded.log_prob(x), model.log_prob(x))
    assert loaded.mask_index == model.mask_index and loaded.config == model.config
    assert not list(tmp_path.glob("*.tmp")), "the temporary file of the atomic write stayed behind"


def test_load_refuses_a_file_that_is_not_a_model(tmp_path, small_npz):
    with pytest.raises(CheckpointError, match="not a MADE model"):
        MADE.load(small_npz)
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match="corrupt"):
        MADE.load(tmp_path / "junk.npz")


# ----------------------------------------------------------------------------------------------
# Reading never writes; the masks in the data's numbering


def bits(model):
    return {name: value.tobytes() for name, value in model.engine.arrays.items()}


@pytest.mark.parametrize("options", [dict(hidden_sizes=[9, 8], direct=True, cond_mask=True),
                                     dict(hidden_sizes=[9], n_masks=3), dict(hidden_sizes=[], direct=True, cond_mask=True),
                                     dict(hidden_sizes=[9], n_masks=0, cond_mask=True)],
                         ids=["one mask", "cycle", "shallow", "fresh masks"])
@pytest.mark.parametrize("written", [False, True], ids=["as initialised", "values written where masks remove"])
def test_reading_leaves_every_parameter_bit_identical(options, written):
    import ancestral
    model = MADE(7, seed=20, **options)
    if written:  # whatever a user put anywhere, the places the masks remove included
        fill_params(model, np.random.default_rng(21).standard_normal)
    x = random_binary((600, 7), seed=22)  # enough examples for the sorted copies of a cycle's masks
    before = bits(model)
    model.forward(x), model.forward(x[:3]), model.log_prob(x), model.log_prob(x, n_masks=2)
    model.loss_and_grads(x[:10]), model.reference_loss_and_grads(x[:10]), model.reference_forward(x[:3])
    ancestral.sample(model, 5), ancestral.sample(model, 5, method="naive")
    ancestral.complete(model, x[:4], np.arange(7) < 3, n=2)
    ancestral.log_prob_observed(model, x[:4], np.arange(7) < 3)
    assert bits(model) == before
    np.testing.assert_allclose(model.forward(x[:5]), model.reference_forward(x[:5]), rtol=1e-5, atol=1e-6)


def test_the_masks_are_figure_1s():
    model = MADE(5, [6, 4], direct=True, n_masks=3, seed=23)
    for k in range(3):
        model.use_mask(k)
        degrees = model.degrees()
        masks = model.masks()
        np.testing.assert_array_equal(masks["W0"], degrees[1][:, None] >= degrees[0][None, :])      # eq. 12
        np.testing.assert_array_equal(masks["W1"], degrees[2][:, None] >= degrees[1][None, :])
        np.testing.assert_array_equal(masks["W2"], degrees[0][:, None] > degrees[2][None, :])       # eq. 13
        np.testing.assert_array_equal(masks["W_direct"], degrees[0][:, None] > degrees[0][None, :])
    np.testing.assert_array_equal(model.degrees()[0], input_degrees(model.ordering))


def test_a_one_mask_models_weights_are_zero_where_its_mask_removes_them():
    model = MADE(6, [8], direct=True, cond_mask=True, seed=24)
    masks, params = model.masks(), model.params
    for name, mask in masks.items():
        assert not params[name][mask == 0].any() and params[name][mask == 1].all()
        assert not params["U" + name[1:]][mask == 0].any()


@pytest.mark.parametrize("call", ["log_prob", "forward", "loss_and_grads"])
@pytest.mark.parametrize("x, complaint", [(np.zeros((3, 7)), "shape"), (np.zeros(6), "shape"), (np.zeros((0, 6)), "N ≥ 1"),
                                          (np.full((2, 6), 0.5), "0 and 1"), (np.full((2, 6), 2.0), "0 and 1"),
                                          (np.full((2, 6), np.nan), "0 and 1")],
                         ids=["wider", "1-d", "empty", "half", "two", "nan"])
def test_data_that_is_not_binary_rows_of_the_models_width_is_refused(call, x, complaint):
    model = MADE(6, [8], seed=25)
    if call == "loss_and_grads" and complaint == "0 and 1":
        return  # the training loop's data is checked once, where it is loaded
    with pytest.raises(ValueError, match=complaint):
        getattr(model, call)(x)


@pytest.mark.parametrize("arguments, complaint", [(dict(batch_size=0), "batch_size"), (dict(batch_size=-1), "batch_size"),
                                                  (dict(batch_size=2.5), "batch_size"), (dict(n_masks=0), "n_masks")])
def test_log_prob_refuses_impossible_sizes(arguments, complaint):
    with pytest.raises(ValueError, match=complaint):
        MADE(6, [8], n_masks=2).log_prob(random_binary((3, 6)), **arguments)


def test_a_mask_outside_the_cycle_is_refused():
    with pytest.raises(ValueError, match="cycle"):
        MADE(6, [8], n_masks=2).use_mask(2)
    MADE(6, [8], n_masks=0).use_mask(12345)
