"""Hand-derived backpropagation: the only calculus in the project. There is no graph and no tape.

Despite the file's name, nothing here differentiates automatically: each function is a forward
pass written next to its backward pass, derived by hand with the chain rule. A backward takes the
gradient of the loss with respect to the forward's output and returns the gradients with respect to
its inputs; MADE.loss_and_grads calls them in reverse order, one layer at a time. Shapes: N
examples in a minibatch, n_in inputs and n_out outputs of a layer, D = number of visible units.
Arrays may be NumPy or CuPy: every function works through the array's own methods and operators,
so it runs on whichever device its inputs are on.

The gradient checker at the bottom is what proves each backward right (see tests/).
"""
import numpy as np

from backend import module_of

# ----------------------------------------------------------------------------------------------
# Masked linear layer (MADE, eq. 8-10): an ordinary linear layer whose weight matrix is multiplied
# elementwise by a fixed 0/1 mask. The mask is what makes the autoencoder autoregressive.


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


def bernoulli_nll_into(logits, x, scratch):
    """bernoulli_nll with its terms in a buffer, for evaluation.  scratch: an array of logits' shape.
    The same sum, arranged for speed: see _nll_without_logs and sum_log."""
    nll, e = _nll_without_logs(logits, x, scratch)
    e += 1
    nll += sum_log(e)
    return nll


def _nll_without_logs(logits, x, out):
    """softplus(a) − x a = max(a, 0) − x a + log(1 + e) with e = e^{−|a|}: the first two terms summed
    per example (N,), as Σ_d max(a, 0) = Σ_d (|a| + a) / 2 (sums run faster than a max on random
    signs), and e (N, D), written into `out`, whose log(1 + e) remain to be added."""
    xp = module_of(logits)
    e = xp.abs(logits, out=out)
    nll = e.sum(axis=1)
    nll += logits.sum(axis=1)
    nll /= 2
    nll -= xp.einsum("nd,nd->n", x, logits)
    xp.negative(e, out=e)
    return nll, xp.exp(e, out=e)


def sum_log(values, folds=6):
    """Σ_d log v_d of each row (N,) for values v in [1, 2] (N, D), overwriting them.

    The logarithm is the dearest step of the NLL (in float32 it costs as much as ten additions),
    so take fewer of them: Σ log v = log Π v. The row is folded onto itself `folds` times, each
    column of its first half multiplied by one of its second half; a column then holds the product
    of at most 2^folds values in [1, 2], at most 2^64, far inside float32's range. The products
    add a rounding of at most 2^folds ε each, so the sum moves by about D ε (5e-5 nats for a
    784-pixel image in float32), and D / 2^folds logarithms are left to take.
    """
    xp = module_of(values)
    width = values.shape[1]
    for _ in range(folds):
        half = width // 2
        if half == 0:
            break
        xp.multiply(values[:, :half], values[:, width - half:width], out=values[:, :half])
        width -= half  # an odd row keeps its middle column for the next fold
    return xp.log(values[:, :width], out=values[:, :width]).sum(axis=1)


def bernoulli_nll_backward(logits, x):
    """∂/∂a_d of the per-example NLL: σ(a_d) − x_d.  (N, D) → (N, D)."""
    return sigmoid(logits) - x


def bernoulli_nll_and_backward(logits, x, grad=None, scratch=None):
    """Both of the above at once, as the training step needs them, from one e = e^{−|a|}:
        q = σ(−|a|) = e / (1 + e),   σ(a) = step(a) − sign(a) q   (step: 1, ½ at 0, 0 below),
    so σ(a) − x = step(a) − x − sign(a) q, with no second exp. The small results (σ(a) for a ≪ 0,
    σ(a) − 1 for a ≫ 0) come from q alone, so they keep their relative precision.
    (N, D), (N, D) → per-example NLL (N,), gradient (N, D). grad and scratch, when given, are
    (N, D) buffers used instead of new arrays; the gradient is written into grad."""
    xp = module_of(logits)
    nll, e = _nll_without_logs(logits, x, grad)
    one_plus_e = xp.add(e, 1, out=scratch)
    q = xp.divide(e, one_plus_e, out=e)
    nll += sum_log(one_plus_e)
    sign = xp.sign(logits, out=one_plus_e)
    q *= sign
    step = sign
    step += 1
    step /= 2
    step -= x
    return nll, xp.subtract(step, q, out=q)


def log_mean_exp(values, axis):
    """log((1/K) Σ_k exp(v_k)) along axis, stably: m + log(mean(exp(v − m))) with m = max v.

    This is how an ensemble of K masks is averaged: in probability, never in logits.
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
    """Relative error between an analytic gradient of f at x and its central-difference estimate."""
    return relative_error(analytic, numerical_gradient(f, x, eps))
