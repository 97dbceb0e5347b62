"""Hand-derived backpropagation: the only calculus in the project. There is no graph and no tape.

Despite the file's name, nothing here differentiates automatically: each function is a forward
pass written next to its backward pass, derived by hand with the chain rule. A backward takes the
gradient of the loss with respect to the forward's output and returns the gradients with respect to
its inputs; made.backward_pass calls them in reverse order, one layer at a time. Shapes: N
examples in a minibatch, n_in inputs and n_out outputs of a layer, D = number of visible units.
Arrays may be NumPy or CuPy: every function works through the array's own methods and operators,
so it runs on whichever device its inputs are on.

These are the plain forms, the ones to read. The engine computes the same numbers with buffers
and a few tricks (staircase.py: the loss with one exponential per logit, its logarithms folded);
the tests hold the two equal. The gradient checker at the bottom is what proves each backward
right (see tests/).
"""
import numpy as np

from backend import module_of

# ----------------------------------------------------------------------------------------------
# Masked linear layer: an ordinary linear layer whose weight matrix is multiplied elementwise by a
# fixed 0/1 mask, as in the paper's section 4: h(x) = g(b + (W ⊙ M^W) x), x̂ = sigm(c + (V ⊙ M^V) h(x)).
# The mask is what makes the autoencoder autoregressive.


def mask_weight(weight, mask):
    """W ⊙ M: the weights the layer actually uses. weight, mask: (n_out, n_in)."""
    return weight * mask


def linear(x, masked_weight, bias):
    """y = x (W ⊙ M)ᵀ + b.  x: (N, n_in), masked_weight: (n_out, n_in), bias: (n_out,) → (N, n_out)."""
    y = x @ masked_weight.T
    y += bias
    return y


def linear_backward(grad_y, x, masked_weight, mask, need_grad_x=True):
    """Gradients of y = x (W ⊙ M)ᵀ + b, given grad_y = ∂L/∂y of shape (N, n_out).

        ∂L/∂x = grad_y (W ⊙ M)            (N, n_in)   (None when need_grad_x is False)
        ∂L/∂W = (grad_yᵀ x) ⊙ M           (n_out, n_in): the chain rule through ⊙M masks it too,
                                           so a weight that is masked out never moves
        ∂L/∂b = Σ_n grad_y[n]             (n_out,)
    """
    grad_x = grad_y @ masked_weight if need_grad_x else None
    grad_weight = grad_y.T @ x
    grad_weight *= mask
    grad_bias = grad_y.sum(axis=0)
    return grad_x, grad_weight, grad_bias


def mask_conditioning(cond_weight, mask):
    """The authors' mask-conditioning term 1·(U ⊙ M)ᵀ: a bias that depends on the mask.

    With a row of ones as input, unit k receives c_k = Σ_j U_kj M_kj, the same for every example,
    so the network can tell which mask it is running under. cond_weight, mask: (n_out, n_in) → (n_out,).
    """
    return (cond_weight * mask).sum(axis=1)


def mask_conditioning_backward(grad_bias, mask):
    """∂L/∂U_kj = (Σ_n ∂L/∂y_nk) M_kj = grad_bias_k M_kj.  grad_bias: (n_out,) → (n_out, n_in)."""
    return grad_bias[:, None] * mask


# ----------------------------------------------------------------------------------------------
# Hidden activations h = f(z). Each backward gets the upstream gradient, the input z and the output
# h, and uses whichever makes the derivative cheapest. out, when given, is an array of z's shape
# that receives the result (the training step reuses its buffers; out must not be grad_h).


def relu(z, out=None):
    """h = max(z, 0)."""
    return module_of(z).maximum(z, 0, out=out)


def relu_backward(grad_h, z, h, out=None):
    """∂h/∂z = 1 where z > 0, else 0. (h > 0 exactly where z > 0.)"""
    return module_of(z).multiply(grad_h, h > 0, out=out)


def tanh(z, out=None):
    """h = tanh(z)."""
    return module_of(z).tanh(z, out=out)


def tanh_backward(grad_h, z, h, out=None):
    """∂h/∂z = 1 − h²."""
    xp = module_of(z)
    out = xp.multiply(h, h, out=out)
    xp.subtract(1, out, out=out)
    return xp.multiply(grad_h, out, out=out)


def sigmoid(z, out=None):
    """σ(z) = 1 / (1 + e^{−z}) = e^{min(z, 0)} / (1 + e^{−|z|}): nothing overflows, both tails are
    exact, and there is no branch (a `where` on the sign runs several times slower when signs mix)."""
    xp = module_of(z)
    denominator = xp.exp(-abs(z))
    denominator += 1
    out = xp.minimum(z, 0, out=out)
    xp.exp(out, out=out)
    return xp.divide(out, denominator, out=out)


def sigmoid_backward(grad_h, z, h, out=None):
    """∂σ/∂z = σ(1 − σ) = h (1 − h)."""
    xp = module_of(z)
    out = xp.subtract(1, h, out=out)
    out *= h
    return xp.multiply(grad_h, out, out=out)


def softplus(z, out=None):
    """softplus(z) = log(1 + e^z) = max(z, 0) + log(1 + e^{−|z|}): no overflow for any z."""
    xp = module_of(z)
    tail = xp.log1p(xp.exp(-abs(z)))
    out = xp.maximum(z, 0, out=out)
    return xp.add(out, tail, out=out)


def softplus_backward(grad_h, z, h, out=None):
    """∂ softplus/∂z = σ(z)."""
    out = sigmoid(z, out=out)
    return module_of(z).multiply(grad_h, out, out=out)


ACTIVATIONS = {
    "relu": (relu, relu_backward),
    "tanh": (tanh, tanh_backward),
    "sigmoid": (sigmoid, sigmoid_backward),
    "softplus": (softplus, softplus_backward),
}

# ----------------------------------------------------------------------------------------------
# The loss. MADE's outputs are logits a_d of p(x_d = 1 | x_<d) = σ(a_d), so
#   −log p(x) = −Σ_d [x_d log σ(a_d) + (1 − x_d) log(1 − σ(a_d))] = Σ_d [softplus(a_d) − x_d a_d]
# (using log σ(a) = a − softplus(a) and log(1 − σ(a)) = −softplus(a)). The right-hand form never
# takes log(0) and never overflows, whatever the size of a.


def bernoulli_nll_per_variable(logits, x):
    """−log p(x_d | x_<d) = softplus(a_d) − x_d a_d for every variable.  (N, D), (N, D) → (N, D)."""
    return softplus(logits) - x * logits


def bernoulli_nll(logits, x):
    """Per-example negative log-likelihood Σ_d softplus(a_d) − x_d a_d.  (N, D), (N, D) → (N,)."""
    return bernoulli_nll_per_variable(logits, x).sum(axis=1)


def bernoulli_nll_backward(logits, x):
    """∂/∂a_d of the per-example NLL: σ(a_d) − x_d.  (N, D) → (N, D)."""
    return sigmoid(logits) - x


def log_mean_exp(values, axis):
    """log((1/K) Σ_k exp(v_k)) along axis, stably: m + log(mean(exp(v − m))) with m = max v.

    This is how an ensemble of K masks is averaged: in probability, never in logits
    (MADE.log_prob takes the same sum one mask at a time, as a running log-sum-exp).
    """
    xp = module_of(values)
    peak = values.max(axis=axis, keepdims=True)
    mean = xp.exp(values - peak).mean(axis=axis, keepdims=True)
    return (peak + xp.log(mean)).squeeze(axis)


# ----------------------------------------------------------------------------------------------
# Gradient checking: the proof that every backward above is right.


def numerical_gradient(f, x, eps=1e-6):
    """Central differences ∂f/∂x_i ≈ (f(x + ε e_i) − f(x − ε e_i)) / 2ε for every element of x.

    f: a function of no arguments returning a scalar, reading x (changed in place, then restored).
    Slow (two calls of f per element): for small float64 arrays in tests only.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    flat_x = x.reshape(-1)  # a view: writing to it changes x, which f reads
    flat_grad = grad.reshape(-1)
    for i in range(flat_x.size):
        original = flat_x[i].item()
        flat_x[i] = original + eps
        f_plus = float(f())
        flat_x[i] = original - eps
        f_minus = float(f())
        flat_x[i] = original
        flat_grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def relative_error(analytic, numeric):
    """‖a − n‖ / (‖a‖ + ‖n‖): about 1e-9 for a right float64 gradient, order 1 for a wrong one."""
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    scale = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return float(np.linalg.norm(analytic - numeric) / max(scale, 1e-300))


def check_gradient(f, x, analytic, eps=1e-6):
    """Relative error between an analytic gradient of f at x and its central-difference estimate.

    A ReLU exactly at its kink breaks the estimate, not the gradient: a hidden unit whose inputs
    are all zero (a unit that sees no input under its mask) with a zero bias has z = 0, where the
    two sides of the difference see two different slopes, and the error comes out large. Check at
    random biases, or away from z = 0, as the tests do."""
    return relative_error(analytic, numerical_gradient(f, x, eps))
