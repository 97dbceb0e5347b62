"""The optimizers' rules in the form that runs fast: in place, through scratch buffers.

optim.py writes each rule as its equations, e.g. Adam's last line

    theta -= self.lr * m_hat / (xp.sqrt(v_hat) + self.eps)

which makes a new array for every operation: five arrays the size of the piece, at every step.
Here the same operations run in the same order, each writing into a buffer kept between steps,
so a step allocates nothing and the numbers are the same, bit for bit (tests/test_optim.py holds
every rule's two forms equal). Optimizer.step uses these unless told to use the equations
(Optimizer(..., fast=False), as train.py --reference does). At 784-500-784 on a 2-core CPU, a
step of Adam takes 1.75 ms as written and 1.26 ms in this form, AdaDelta 2.31 and 1.77, AdaGrad
0.74 and 0.70 (benchmarks/optimizer_step.py, BENCHMARKS.md).

Each function takes the rule (its settings: lr, eps, …, and t), the piece of the parameter θ, its
gradient g, its slots, and scratch(like, k): buffer k shaped like `like`.
"""
import backend


def sgd(rule, theta, g, scratch):
    xp = backend.module_of(theta)
    step = xp.multiply(g, rule.lr / (1 + rule.decrease * rule.t), out=scratch(g))
    theta -= step


def adagrad(rule, theta, g, sum_sq, scratch):
    xp = backend.module_of(theta)
    work = xp.multiply(g, g, out=scratch(g))
    sum_sq += work                    # G + ε ← G + ε + g²
    xp.sqrt(sum_sq, out=work)
    xp.divide(g, work, out=work)
    work *= rule.lr                   # g / √(G + ε) · η
    theta -= work


def adadelta(rule, theta, g, mean_sq_grad, mean_sq_step, scratch):
    xp, rho, eps = backend.module_of(theta), rule.rho, rule.eps
    work, step = scratch(g, 0), scratch(g, 1)
    mean_sq_grad *= rho
    xp.multiply(g, g, out=work)
    work *= 1 - rho
    mean_sq_grad += work              # E[g²] ← ρ E[g²] + (1 − ρ) g²
    xp.add(mean_sq_step, eps, out=step)
    xp.sqrt(step, out=step)
    xp.negative(step, out=step)
    xp.add(mean_sq_grad, eps, out=work)
    xp.sqrt(work, out=work)
    step /= work
    step *= g                         # Δθ = −√(E[Δθ²] + ε) / √(E[g²] + ε) · g
    mean_sq_step *= rho
    xp.multiply(step, step, out=work)
    work *= 1 - rho
    mean_sq_step += work              # E[Δθ²] ← ρ E[Δθ²] + (1 − ρ) Δθ²
    step *= rule.lr
    theta += step


def adam(rule, theta, g, m, v, scratch):
    xp, t, beta1, beta2 = backend.module_of(theta), rule.t + 1, rule.beta1, rule.beta2
    work, step = scratch(g, 0), scratch(g, 1)
    m *= beta1
    xp.multiply(g, 1 - beta1, out=work)
    m += work                         # m ← β₁ m + (1 − β₁) g
    v *= beta2
    xp.multiply(g, g, out=work)
    work *= 1 - beta2
    v += work                         # v ← β₂ v + (1 − β₂) g²
    xp.divide(v, 1 - beta2 ** t, out=work)
    xp.sqrt(work, out=work)
    work += rule.eps                  # √v̂ + ε
    xp.multiply(m, rule.lr / (1 - beta1 ** t), out=step)
    step /= work                      # η m̂ / (√v̂ + ε)
    theta -= step


FORMS = {"SGD": sgd, "AdaGrad": adagrad, "AdaDelta": adadelta, "Adam": adam}


class Scratch:
    """Buffers for temporaries, kept between steps: scratch(like, k) is buffer k shaped like `like`
    (each grows to the largest piece asked for, so after the first step none is made again)."""

    def __init__(self):
        self.buffers = {}

    def __call__(self, like, index=0):
        key = (index, like.dtype)
        if key not in self.buffers or self.buffers[key].size < like.size:
            self.buffers[key] = backend.module_of(like).empty(like.size, dtype=like.dtype)
        return self.buffers[key][:like.size].reshape(like.shape)
