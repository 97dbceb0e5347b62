"""Update rules over a dict of parameter arrays, updated in place, and the minibatch loop that
applies them.

    opt = AdaGrad(model, lr=0.01)         # a MADE, or a dict name → array
    loss, grads = model.loss_and_grads(x)
    opt.step(grads)                       # the model's weights changed in place

Each rule is a small class: its equations in the docstring, and its `update` writing them as
they read, on one array (a parameter θ, or a piece of one, its gradient g and its state). It keeps
its per-parameter state in named slots (arrays shaped like the parameters) and a step counter t;
state_dict() returns all of it as host arrays in the data's numbering, so a checkpoint resumes
exactly. Every rule here is elementwise, so it runs the same on the parameters in whatever order
the model's engine keeps them: the optimizer updates them through the engine's door
(engine.Store.pieces) and asks it to translate only its state_dict. Optimizer.step says which
pieces it updates, and why in pieces: the one speed form here.
"""
import math

import numpy as np

import backend
import fast_updates
from engine import Store


def require_number(name, value, low, high=math.inf, low_open=True, high_open=True):
    """A ValueError naming the argument unless low < value < high (≤ where not open), finite."""
    inside = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and \
        math.isfinite(value) and (value > low if low_open else value >= low) and \
        (value < high if high_open else value <= high)
    if not inside:
        bounds = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a finite number in {bounds}, not {value!r}")


class Optimizer:
    """Common machinery: per-parameter state slots, the step counter, saving and restoring.

    A rule (a subclass) names its state slots and writes its equations in update(), on one array:
    the parameter θ, its gradient g and its slots, each updated in place. step() applies update()
    to every piece of every parameter that the gradients name (Store.pieces): for the engine's
    gradients, bands of about a megabyte, so that a rule's several passes find the piece in the
    cache, and under a one-mask model only the blocks of its staircase, where the gradient is not
    always zero (elsewhere every rule here would leave the weight and its state as they are).

    fast=True (the default) runs each rule of this file in its fast form (fast_updates.py: the same
    operations in the same order, in place, so the same numbers without a new array per
    operation); fast=False runs update() as written here.

    weight_decay λ adds an L2 penalty (λ/2)‖W‖² on the weights, not the biases: every rule then sees
    the gradient g + λθ of each weight."""

    slots = ()  # names of the per-parameter state arrays, set by each rule

    def __init__(self, params, fast=True, weight_decay=0.0):
        require_number("weight_decay", weight_decay, 0, low_open=False)
        store = getattr(params, "engine", None)  # a MADE: its parameters, through its engine's door
        if store is None:
            if not isinstance(params, dict) or not all(hasattr(p, "shape") and hasattr(p, "dtype") and
                                                       p.dtype.kind == "f" for p in params.values()):
                raise ValueError("params must be a MADE or a dict of float arrays (name → array), not "
                                 f"{type(params).__name__}" + (" of lists" if isinstance(params, dict) else ""))
            store = Store(params)
        self.store = store
        self.weight_decay = weight_decay
        self.t = 0  # number of steps taken
        self.state = {slot: store.zeros() for slot in self.slots}
        self.fast_form = fast_updates.FORMS.get(type(self).__name__) if fast else None  # None for other rules
        self.scratch = fast_updates.Scratch()

    def require_representable(self, **settings):
        """A ValueError naming the setting that the parameters' dtype cannot hold (float32 turns 1e-50
        into 0 and 1e39 into inf, which would make the rule divide by zero or overflow)."""
        dtypes = {p.dtype for p in self.store.arrays.values()}
        for name, value in settings.items():
            for dtype in dtypes:
                with np.errstate(over="ignore"):
                    held = dtype.type(value)
                if value and not (np.isfinite(held) and held != 0):
                    raise ValueError(f"{name} {value!r} is {held} in {dtype}, the parameters' dtype")

    def step(self, grads):
        """Apply one update to every parameter that has a gradient; t counts the steps. The GPU
        engine runs a rule of this file in one kernel over all the parameters (kernels.py)."""
        if self.fast_form is not None and self.store.fused_step(self, grads):
            self.t += 1
            return
        for name, piece, grad in self.store.pieces(grads):
            theta, g = self.store.arrays[name][piece], grad[piece]
            state = [self.state[slot][name][piece] for slot in self.slots]
            if self.weight_decay and theta.ndim == 2:  # a weight (biases are vectors): the penalty's gradient
                g = self.decayed(theta, g)
            if self.fast_form is not None:
                self.fast_form(self, theta, g, *state, self.scratch)
            else:
                self.update(theta, g, *state)
        self.t += 1

    def decayed(self, theta, g):
        """g + λθ: the gradient with the L2 penalty's (in a scratch buffer for the fast forms)."""
        if self.fast_form is None:
            return g + self.weight_decay * theta
        work = backend.module_of(theta).multiply(theta, self.weight_decay, out=self.scratch(g, 2))
        work += g
        return work

    def update(self, theta, g, *slots):
        raise NotImplementedError

    def state_dict(self):
        """{'t': step count, 'slot.param': array …} as host arrays in the data's numbering."""
        state = {"t": np.array(self.t)}
        for slot in self.slots:
            for name, value in self.state[slot].items():
                state[f"{slot}.{name}"] = self.store.export(name, value)
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
            value[...] = self.store.adopt(key.split(".", 1)[1], state[key])
        self.t = int(state["t"])


class SGD(Optimizer):
    """θ ← θ − η_t g, with the paper's decreasing learning rate η_t = η / (1 + decrease · t)."""

    def __init__(self, params, lr=0.01, decrease=0.0, fast=True, weight_decay=0.0):
        require_number("lr", lr, 0)
        require_number("decrease", decrease, 0, low_open=False)
        super().__init__(params, fast, weight_decay)
        self.lr, self.decrease = lr, decrease
        self.require_representable(lr=lr, decrease=decrease, weight_decay=weight_decay)

    def update(self, theta, g):
        theta -= self.lr / (1 + self.decrease * self.t) * g


class AdaGrad(Optimizer):
    """Duchi et al. 2011, as in the MADE authors' code:
        G ← G + g²,   θ ← θ − η g / √(G + ε)
    Each weight's step shrinks with the gradient it has already seen. The slot holds G + ε (it
    starts at ε), which saves a pass over the weights at every step."""

    slots = ("sum_sq",)

    def __init__(self, params, lr=0.01, eps=1e-6, fast=True, weight_decay=0.0):
        require_number("lr", lr, 0)
        require_number("eps", eps, 0)
        super().__init__(params, fast, weight_decay)
        self.lr, self.eps = lr, eps
        self.require_representable(lr=lr, eps=eps, weight_decay=weight_decay)
        for sum_sq in self.state["sum_sq"].values():
            sum_sq += eps

    def update(self, theta, g, sum_sq):
        xp = backend.module_of(theta)
        sum_sq += g * g                          # G + ε ← G + ε + g²
        theta -= g / xp.sqrt(sum_sq) * self.lr   # θ ← θ − η g / √(G + ε)


class AdaDelta(Optimizer):
    """Zeiler 2012, Algorithm 1 (lr scales the step; 1 is the paper's rule):
        E[g²] ← ρ E[g²] + (1 − ρ) g²
        Δθ = −√(E[Δθ²] + ε) / √(E[g²] + ε) · g
        E[Δθ²] ← ρ E[Δθ²] + (1 − ρ) Δθ²,   θ ← θ + lr · Δθ"""

    slots = ("mean_sq_grad", "mean_sq_step")

    def __init__(self, params, lr=1.0, rho=0.95, eps=1e-6, fast=True, weight_decay=0.0):
        require_number("lr", lr, 0)
        require_number("rho", rho, 0, 1, low_open=False)
        require_number("eps", eps, 0)
        super().__init__(params, fast, weight_decay)
        self.lr, self.rho, self.eps = lr, rho, eps
        self.require_representable(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)

    def update(self, theta, g, mean_sq_grad, mean_sq_step):
        xp, rho, eps = backend.module_of(theta), self.rho, self.eps
        mean_sq_grad[...] = rho * mean_sq_grad + (1 - rho) * (g * g)
        step = -xp.sqrt(mean_sq_step + eps) / xp.sqrt(mean_sq_grad + eps) * g
        mean_sq_step[...] = rho * mean_sq_step + (1 - rho) * (step * step)
        theta += self.lr * step


class Adam(Optimizer):
    """Kingma & Ba 2015:
        m ← β₁ m + (1 − β₁) g,   v ← β₂ v + (1 − β₂) g²
        θ ← θ − η m̂ / (√v̂ + ε),  m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ), t counted from 1."""

    slots = ("m", "v")

    def __init__(self, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, fast=True, weight_decay=0.0):
        require_number("lr", lr, 0)
        require_number("beta1", beta1, 0, 1, low_open=False)
        require_number("beta2", beta2, 0, 1, low_open=False)
        require_number("eps", eps, 0)
        super().__init__(params, fast, weight_decay)
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.require_representable(lr=lr, eps=eps, weight_decay=weight_decay)

    def update(self, theta, g, m, v):
        xp, t, beta1, beta2 = backend.module_of(theta), self.t + 1, self.beta1, self.beta2
        m[...] = beta1 * m + (1 - beta1) * g
        v[...] = beta2 * v + (1 - beta2) * (g * g)
        v_hat = v / (1 - beta2 ** t)
        theta -= self.lr / (1 - beta1 ** t) * m / (xp.sqrt(v_hat) + self.eps)  # η m̂ / (√v̂ + ε), m̂ = m / (1 − β₁ᵗ)


OPTIMIZERS = {"sgd": SGD, "adagrad": AdaGrad, "adadelta": AdaDelta, "adam": Adam}
DEFAULT_LR = {"sgd": 0.01, "adagrad": 0.01, "adadelta": 1.0, "adam": 1e-3}


def make_optimizer(name, params, lr=None, decrease=0.0, rho=None, eps=None, fast=True, weight_decay=0.0):
    """The optimizer called `name`; lr, rho (AdaDelta) and eps take each rule's default when None;
    fast=False: the rules as written (Optimizer); weight_decay: λ of an L2 penalty on the weights."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, not {name!r}")
    options = {"lr": DEFAULT_LR[name] if lr is None else lr, "fast": fast, "weight_decay": weight_decay}
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
