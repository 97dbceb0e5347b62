"""Every forward/backward pair of autograd.py against central finite differences in float64."""
import numpy as np
import pytest

import autograd
from autograd import check_gradient

TOLERANCE = 1e-7  # a right float64 gradient lands near 1e-9; a wrong one near 1


def test_checker_catches_a_wrong_gradient():
    x = np.random.default_rng(0).standard_normal(5)
    assert check_gradient(lambda: (x ** 3).sum(), x, 3 * x ** 2) < TOLERANCE
    assert check_gradient(lambda: (x ** 3).sum(), x, 2 * x ** 2) > 0.1


def test_masked_linear_backward():
    rng = np.random.default_rng(1)
    x, weight, bias = rng.standard_normal((4, 5)), rng.standard_normal((3, 5)), rng.standard_normal(3)
    mask = (rng.random((3, 5)) < 0.5).astype(np.float64)
    upstream = rng.standard_normal((4, 3))  # L = Σ upstream ⊙ y, so ∂L/∂y = upstream

    def loss():
        return (upstream * autograd.linear(x, autograd.mask_weight(weight, mask), bias)).sum()

    grad_x, grad_weight, grad_bias = autograd.linear_backward(upstream, x, autograd.mask_weight(weight, mask), mask)
    assert check_gradient(loss, x, grad_x) < TOLERANCE
    assert check_gradient(loss, weight, grad_weight) < TOLERANCE
    assert check_gradient(loss, bias, grad_bias) < TOLERANCE
    assert np.all(grad_weight[mask == 0] == 0), "a masked-out weight must get no gradient"
    assert autograd.linear_backward(upstream, x, weight * mask, mask, need_grad_x=False)[0] is None


def test_mask_conditioning_backward():
    rng = np.random.default_rng(2)
    cond_weight = rng.standard_normal((3, 5))
    mask = (rng.random((3, 5)) < 0.5).astype(np.float64)
    upstream = rng.standard_normal(3)

    def loss():
        return (upstream * autograd.mask_conditioning(cond_weight, mask)).sum()

    assert check_gradient(loss, cond_weight, autograd.mask_conditioning_backward(upstream, mask)) < TOLERANCE


@pytest.mark.parametrize("name", sorted(autograd.ACTIVATIONS))
def test_activation_backward(name):
    forward, backward = autograd.ACTIVATIONS[name]
    rng = np.random.default_rng(3)
    z = rng.standard_normal((4, 6)) * 3
    z[np.abs(z) < 1e-3] = 0.5  # keep away from relu's kink, where no derivative exists
    upstream = rng.standard_normal((4, 6))
    analytic = backward(upstream, z, forward(z))
    assert check_gradient(lambda: (upstream * forward(z)).sum(), z, analytic) < TOLERANCE


def test_bernoulli_nll_value_and_backward():
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((5, 7)) * 4
    x = (rng.random((5, 7)) < 0.5).astype(np.float64)
    p = 1 / (1 + np.exp(-logits))
    naive = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=1)
    np.testing.assert_allclose(autograd.bernoulli_nll(logits, x), naive, rtol=1e-12)
    grad = autograd.bernoulli_nll_backward(logits, x)
    assert check_gradient(lambda: autograd.bernoulli_nll(logits, x).sum(), logits, grad) < TOLERANCE


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loss_is_finite_and_right_for_extreme_logits(dtype):
    logits = np.array([[1e4, -1e4, 1e4, -1e4, 80.0, -80.0]], dtype=dtype)
    x = np.array([[1, 0, 0, 1, 1, 0]], dtype=dtype)
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # no overflow, no log(0)
        nll = autograd.bernoulli_nll(logits, x)
        grad = autograd.bernoulli_nll_backward(logits, x)
    # right guesses cost ~0; each wrong guess with |a| = 1e4 costs 1e4 nats
    np.testing.assert_allclose(nll, [2e4], rtol=1e-6)
    np.testing.assert_allclose(grad, [[0, 0, 1, -1, 0, 0]], atol=1e-30)
    assert nll.dtype == dtype and grad.dtype == dtype


def test_sigmoid_and_softplus_tails_are_exact():
    z = np.array([-700.0, -40.0, 0.0, 40.0, 700.0])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        np.testing.assert_allclose(autograd.sigmoid(z)[:2], np.exp([-700.0, -40.0]), rtol=1e-12)
        np.testing.assert_allclose(autograd.softplus(z), [np.exp(-700.0), np.exp(-40.0), np.log(2), 40.0, 700.0], rtol=1e-12)


def test_log_mean_exp_matches_a_float64_average_of_probabilities():
    values = np.random.default_rng(5).standard_normal((7, 4)) * 30 - 100
    direct = np.log(np.exp(values.astype(np.longdouble)).mean(axis=0))
    np.testing.assert_allclose(autograd.log_mean_exp(values, axis=0), direct.astype(np.float64), rtol=1e-12)
