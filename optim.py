"""Update rules over a dict of parameter arrays, updated in place, and the minibatch loop that
applies them.

    opt = AdaGrad(model.params, lr=0.01)
    loss, grads = model.loss_and_grads(x)
    opt.step(grads)                       # model.params changed in place

Each rule is a small class: its equations in the docstring, its `update` doing them in place on one
parameter (or a piece of one). It keeps its per-parameter state in named slots (arrays shaped like
the parameters) and a step counter t; state_dict() returns all of it as arrays, so a checkpoint
resumes exactly. Temporaries live in scratch buffers made once.

Where the gradients say in which pieces to update (grads.parts(), as MADE's engine gives them: each
parameter cut into bands that stay in the cache, and under a one-mask model only the blocks of its
staircase), step updates only those. Elsewhere the gradient has been zero at every step, so every
rule here would leave the weight and its state as they are.
"""
import math

import numpy as np

import backend


def parts(grads):
    """(name, index expression) of every piece to update: grads.parts() when the gradients have
    them, else every parameter whole."""
    if hasattr(grads, "parts"):
        return grads.parts()
    return ((name, Ellipsis) for name in grads)


class Optimizer:
    """Common machinery: per-parameter state slots, the step counter, saving and restoring."""

    slots = ()  # names of the per-parameter state arrays, set by each rule

    def __init__(self, params):
        self.params = params
        self.t = 0  # number of steps taken
        self.state = {slot: {name: backend.module_of(p).zeros_like(p) for name, p in params.items()}
                      for slot in self.slots}
        self._scratch = {}

    def step(self, grads):
        """Apply one update to every parameter that has a gradient; t counts the steps."""
        for name, piece in parts(grads):
            state = (self.state[slot][name][piece] for slot in self.slots)
            self.update(self.params[name][piece], grads[name][piece], *state)
        self.t += 1

    def scratch(self, like, index=0):
        """A temporary shaped like `like`, from a buffer kept between steps (it grows to the
        largest band asked for, so after the first step it is never made again)."""
        key = (index, like.dtype)
        if key not in self._scratch or self._scratch[key].size < like.size:
            self._scratch[key] = backend.module_of(like).empty(like.size, dtype=like.dtype)
        return self._scratch[key][:like.size].reshape(like.shape)

    def update(self, param, grad, *slots):
        raise NotImplementedError

    def state_dict(self):
        """{'t': step count, 'slot.param': array …} as host arrays."""
        state = {"t": np.array(self.t)}
        for slot in self.slots:
            for name, value in self.state[slot].items():
                state[f"{slot}.{name}"] = backend.to_host(value)
        return state

    def load_state_dict(self, state):
        """Restore what state_dict() returned; a missing or misshapen entry raises ValueError."""
        expected = {f"{slot}.{name}": value for slot in self.slots for name, value in self.state[slot].items()}
        missing = sorted((set(expected) | {"t"}) - set(state))
        if missing:
            raise ValueError(f"optimizer state lacks {missing[:3]}")
        for key, value in expected.items():
            if state[key].shape != value.shape:
                raise ValueError(f"optimizer state {key} has shape {state[key].shape}, expected {value.shape}")
        for key, value in expected.items():
            value[...] = backend.to_device(state[key], backend.is_device_array(value), value.dtype)
        self.t = int(state["t"])


class SGD(Optimizer):
    """θ ← θ − η_t g, with the paper's decreasing learning rate η_t = η / (1 + decrease · t)."""

    def __init__(self, params, lr=0.01, decrease=0.0):
        super().__init__(params)
        self.lr, self.decrease = lr, decrease

    def update(self, param, grad):
        step = backend.module_of(param).multiply(grad, self.lr / (1 + self.decrease * self.t), out=self.scratch(grad))
        param -= step


class AdaGrad(Optimizer):
    """Duchi et al. 2011, as in the MADE authors' code:
        G ← G + g²,   θ ← θ − η g / √(G + ε)
    Each weight's step shrinks with the gradient it has already seen. The slot holds G + ε (it
    starts at ε), which saves one pass over the weights per step."""

    slots = ("sum_sq",)

    def __init__(self, params, lr=0.01, eps=1e-6):
        super().__init__(params)
        self.lr, self.eps = lr, eps
        for sum_sq in self.state["sum_sq"].values():
            sum_sq += eps

    def update(self, param, grad, sum_sq):
        xp = backend.module_of(param)
        scratch = xp.multiply(grad, grad, out=self.scratch(grad))
        sum_sq += scratch                        # G + ε ← G + ε + g²
        xp.sqrt(sum_sq, out=scratch)
        xp.divide(grad, scratch, out=scratch)    # g / √(G + ε)
        scratch *= self.lr
        param -= scratch


class AdaDelta(Optimizer):
    """Zeiler 2012, Algorithm 1 (lr scales the step; 1 is the paper's rule):
        E[g²] ← ρ E[g²] + (1 − ρ) g²
        Δθ = −√(E[Δθ²] + ε) / √(E[g²] + ε) · g
        E[Δθ²] ← ρ E[Δθ²] + (1 − ρ) Δθ²,   θ ← θ + lr · Δθ"""

    slots = ("mean_sq_grad", "mean_sq_step")

    def __init__(self, params, lr=1.0, rho=0.95, eps=1e-6):
        super().__init__(params)
        self.lr, self.rho, self.eps = lr, rho, eps

    def update(self, param, grad, mean_sq_grad, mean_sq_step):
        xp = backend.module_of(param)
        mean_sq_grad *= self.rho
        scratch = xp.multiply(grad, grad, out=self.scratch(grad))
        scratch *= 1 - self.rho
        mean_sq_grad += scratch                  # E[g²]
        step = xp.add(mean_sq_step, self.eps, out=self.scratch(grad, 1))
        xp.sqrt(step, out=step)
        xp.add(mean_sq_grad, self.eps, out=scratch)
        xp.sqrt(scratch, out=scratch)
        step /= scratch
        step *= grad
        xp.negative(step, out=step)              # Δθ = −√(E[Δθ²] + ε) / √(E[g²] + ε) · g
        mean_sq_step *= self.rho
        xp.multiply(step, step, out=scratch)
        scratch *= 1 - self.rho
        mean_sq_step += scratch                  # E[Δθ²]
        step *= self.lr
        param += step


class Adam(Optimizer):
    """Kingma & Ba 2015:
        m ← β₁ m + (1 − β₁) g,   v ← β₂ v + (1 − β₂) g²
        θ ← θ − η m̂ / (√v̂ + ε),  m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ), t counted from 1."""

    slots = ("m", "v")

    def __init__(self, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(params)
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps

    def update(self, param, grad, m, v):
        xp, t = backend.module_of(param), self.t + 1
        m *= self.beta1
        scratch = xp.multiply(grad, 1 - self.beta1, out=self.scratch(grad))
        m += scratch                                         # m
        v *= self.beta2
        xp.multiply(grad, grad, out=scratch)
        scratch *= 1 - self.beta2
        v += scratch                                         # v
        xp.sqrt(v, out=scratch)
        scratch *= 1 / math.sqrt(1 - self.beta2 ** t)       # √v̂
        scratch += self.eps
        xp.divide(m, scratch, out=scratch)
        scratch *= self.lr / (1 - self.beta1 ** t)           # η m̂ / (√v̂ + ε)
        param -= scratch


OPTIMIZERS = {"sgd": SGD, "adagrad": AdaGrad, "adadelta": AdaDelta, "adam": Adam}
DEFAULT_LR = {"sgd": 0.01, "adagrad": 0.01, "adadelta": 1.0, "adam": 1e-3}


def make_optimizer(name, params, lr=None, decrease=0.0, rho=None, eps=None):
    """The optimizer called `name`; lr, rho (AdaDelta) and eps take each rule's default when None."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, not {name!r}")
    options = {"lr": DEFAULT_LR[name] if lr is None else lr}
    if name == "sgd":
        options["decrease"] = decrease
    if name == "adadelta" and rho is not None:
        options["rho"] = rho
    if name != "sgd" and eps is not None:
        options["eps"] = eps
    return OPTIMIZERS[name](params, **options)


def train_epoch(model, optimizer, x, order, batch_size, after_step=None):
    """One pass of minibatch gradient descent over the rows of x (N, D), taken in `order` (a
    permutation of range(N) on the model's device); returns the mean training NLL as a 0-d array.

    Per minibatch: loss and gradients, one update, then the next mask of the cycle (a no-op with
    one mask). The loss is summed on the device, so a GPU never waits for the host.
    after_step(done, N), when given, is called after each minibatch (to report, or to stop).
    """
    n_examples = x.shape[0]
    total = model.xp.zeros((), dtype=np.float64)
    for start in range(0, n_examples, batch_size):
        batch = x[order[start:start + batch_size]]
        loss, grads = model.loss_and_grads(batch)
        optimizer.step(grads)
        total += loss * batch.shape[0]
        model.next_mask()
        if after_step is not None:
            after_step(start + batch.shape[0], n_examples)
    return total / n_examples
