"""Each update rule's first steps against numbers worked out by hand, and exact resume."""
import math

import numpy as np
import pytest

import optim

GRADS = [np.array([0.5, -2.0]), np.array([1.0, 1.0])]  # two steps' gradients for a 2-element θ


def run(optimizer_class, steps=2, **hyper):
    params = {"theta": np.array([1.0, -1.0])}
    optimizer = optimizer_class(params, **hyper)
    for grad in GRADS[:steps]:
        optimizer.step({"theta": grad.copy()})
    return params["theta"], optimizer


def test_sgd_with_decreasing_learning_rate():
    theta, _ = run(optim.SGD, lr=0.1, decrease=0.5)
    # step 0: lr 0.1/(1+0) = 0.1; step 1: lr 0.1/(1+0.5) = 0.0666…
    expected = [1.0 - 0.1 * 0.5 - (0.1 / 1.5) * 1.0, -1.0 - 0.1 * -2.0 - (0.1 / 1.5) * 1.0]
    np.testing.assert_allclose(theta, expected, rtol=1e-15)


def test_adagrad():
    theta, optimizer = run(optim.AdaGrad, lr=0.1, eps=1e-6)
    # G₁ = g₁², θ₁ = θ₀ − 0.1 g₁/√(G₁+ε); G₂ = g₁² + g₂², θ₂ = θ₁ − 0.1 g₂/√(G₂+ε)
    first = 1.0 - 0.1 * 0.5 / math.sqrt(0.25 + 1e-6)
    second = -1.0 - 0.1 * -2.0 / math.sqrt(4.0 + 1e-6)
    expected = [first - 0.1 * 1.0 / math.sqrt(1.25 + 1e-6), second - 0.1 * 1.0 / math.sqrt(5.0 + 1e-6)]
    np.testing.assert_allclose(theta, expected, rtol=1e-14)
    np.testing.assert_allclose(optimizer.state["sum_sq"]["theta"], [1.25 + 1e-6, 5.0 + 1e-6], rtol=1e-15)  # G + ε


def test_adadelta():
    theta, _ = run(optim.AdaDelta, steps=1, rho=0.9, eps=1e-2)
    # E[g²] = 0.1 g²; Δ = −√(0 + ε)/√(E[g²] + ε) g
    step = [-math.sqrt(1e-2) / math.sqrt(0.1 * 0.25 + 1e-2) * 0.5, -math.sqrt(1e-2) / math.sqrt(0.1 * 4.0 + 1e-2) * -2.0]
    np.testing.assert_allclose(theta, [1.0 + step[0], -1.0 + step[1]], rtol=1e-14)
    theta, optimizer = run(optim.AdaDelta, steps=2, rho=0.9, eps=1e-2)
    mean_sq_step = [0.1 * s * s for s in step]
    mean_sq_grad = [0.9 * 0.1 * 0.25 + 0.1 * 1.0, 0.9 * 0.1 * 4.0 + 0.1 * 1.0]
    step2 = [-math.sqrt(mean_sq_step[i] + 1e-2) / math.sqrt(mean_sq_grad[i] + 1e-2) * 1.0 for i in range(2)]
    np.testing.assert_allclose(theta, [1.0 + step[0] + step2[0], -1.0 + step[1] + step2[1]], rtol=1e-14)


def test_adam():
    theta, _ = run(optim.Adam, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8)
    # t = 1: m̂ = g, v̂ = g², so the step is lr · g/(|g| + ε) ≈ lr · sign(g)
    t1 = [1.0 - 0.1 * 0.5 / (0.5 + 1e-8), -1.0 - 0.1 * -2.0 / (2.0 + 1e-8)]
    m = [0.9 * 0.1 * 0.5 + 0.1 * 1.0, 0.9 * 0.1 * -2.0 + 0.1 * 1.0]
    v = [0.999 * 0.001 * 0.25 + 0.001 * 1.0, 0.999 * 0.001 * 4.0 + 0.001 * 1.0]
    expected = [t1[i] - 0.1 * (m[i] / (1 - 0.9 ** 2)) / (math.sqrt(v[i] / (1 - 0.999 ** 2)) + 1e-8) for i in range(2)]
    np.testing.assert_allclose(theta, expected, rtol=1e-13)


@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_state_dict_resumes_exactly(name):
    rng = np.random.default_rng(0)
    grads = [{"w": rng.standard_normal(3).astype(np.float32)} for _ in range(6)]
    straight = {"w": np.ones(3, dtype=np.float32)}
    optimizer = optim.make_optimizer(name, straight, decrease=0.1)
    for grad in grads:
        optimizer.step(grad)
    resumed = {"w": np.ones(3, dtype=np.float32)}
    first = optim.make_optimizer(name, resumed, decrease=0.1)
    for grad in grads[:3]:
        first.step(grad)
    second = optim.make_optimizer(name, resumed, decrease=0.1)
    second.load_state_dict(first.state_dict())
    for grad in grads[3:]:
        second.step(grad)
    np.testing.assert_array_equal(straight["w"], resumed["w"])
    assert straight["w"].dtype == np.float32, "an update must not upcast float32 parameters"


def test_load_state_dict_refuses_a_mismatch():
    optimizer = optim.AdaGrad({"w": np.zeros(3)})
    with pytest.raises(ValueError, match="lacks"):
        optimizer.load_state_dict({"t": np.array(1)})
    with pytest.raises(ValueError, match="shape"):
        optimizer.load_state_dict({"t": np.array(1), "sum_sq.w": np.zeros(4)})


@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_the_fast_form_of_every_rule_gives_its_equations_numbers_bit_for_bit(name):
    """fast_updates.py runs each rule's operations in place, in the order optim.py writes them."""
    rng = np.random.default_rng(3)
    params = {fast: {"W": rng.standard_normal((40, 30)).astype(np.float32)} for fast in (True, False)}
    params[False]["W"][...] = params[True]["W"]
    optimizers = {fast: optim.make_optimizer(name, params[fast], fast=fast) for fast in (True, False)}
    assert optimizers[True].fast_form is not None and optimizers[False].fast_form is None
    for _ in range(5):
        grad = rng.standard_normal((40, 30)).astype(np.float32)
        for fast in (True, False):
            optimizers[fast].step({"W": grad})
    np.testing.assert_array_equal(params[True]["W"], params[False]["W"])
    for key, value in optimizers[True].state_dict().items():
        np.testing.assert_array_equal(value, optimizers[False].state_dict()[key])


@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_weight_decay_adds_its_gradient_to_the_weights_only_in_both_forms(name):
    """weight_decay λ: every rule sees g + λθ for a weight (2-D) and g for a bias, as written and in
    its fast form, bit for bit alike."""
    rng = np.random.default_rng(4)
    start = {"W": rng.standard_normal((6, 5)), "b": rng.standard_normal(6)}
    grads = [{"W": rng.standard_normal((6, 5)), "b": rng.standard_normal(6)} for _ in range(3)]
    results = {}
    for label, (decay, fast) in {"decayed": (0.1, True), "decayed plain": (0.1, False), "by hand": (0.0, False)}.items():
        params = {key: value.copy() for key, value in start.items()}
        optimizer = optim.make_optimizer(name, params, fast=fast, weight_decay=decay)
        for grad in grads:
            if label == "by hand":  # the penalty's gradient added to the weight's gradient, before the step
                grad = dict(grad, W=grad["W"] + 0.1 * params["W"])
            optimizer.step(grad)
        results[label] = params
    np.testing.assert_array_equal(results["decayed"]["W"], results["decayed plain"]["W"])
    np.testing.assert_allclose(results["decayed"]["W"], results["by hand"]["W"], rtol=1e-12)
    np.testing.assert_array_equal(results["decayed"]["b"], results["by hand"]["b"])
    with pytest.raises(ValueError, match="weight_decay"):
        optim.make_optimizer(name, start, weight_decay=-1)
