"""MADE: a masked autoencoder whose outputs are the conditionals of an autoregressive model.

Section 4 of Germain, Gregor, Murray & Larochelle (ICML 2015), as code, in the data's numbering.
An ordering puts the D inputs in a sequence, and every unit gets a degree m(·), the most inputs it
may depend on:
  - input d gets its position in the ordering, m(d) ∈ {0, …, D−1};
  - hidden unit k of layer l gets m_l(k) drawn uniformly from {min_j m_{l−1}(j), …, D−2};
  - a hidden weight from unit j to unit k is kept when m_{l−1}(j) ≤ m_l(k)   (eq. 12),
  - an output weight from hidden unit k to output d is kept when m_L(k) < m(d)  (eq. 13),
  - the optional direct input→output weight from input j to output d when m(j) < m(d).
So every path from input j to output d passes through units whose degree never decreases from m(j)
and ends strictly below m(d): output d sees only inputs that come before it in the ordering. Its
logit a_d then defines p(x_d = 1 | x_<d) = σ(a_d), and by the chain rule of probability
    log p(x) = Σ_d log p(x_d | x_<d),
exact and normalised, in one forward pass.

Read top to bottom: orderings and degrees, the masks, the layers, the dense masked pass and
backpropagation, the reference engine (the MADE computed by exactly these), then the MADE itself.
Parameters (param_shapes): W_l, b_l per hidden layer, W_L, b_L for the output, W_direct (D, D) with
direct, a U per masked weight with cond_mask (the mask-conditioning bias 1·(U ⊙ M)ᵀ). model.params
and model.masks() number them as the data is (column j of W0 is input j), as Figure 1 draws them;
engine.py keeps its own order for speed behind its door (engine.Store).
"""
import dataclasses
import math
from contextlib import contextmanager

import numpy as np

import backend
import files
from autograd import (ACTIVATIONS, bernoulli_nll, bernoulli_nll_backward, bernoulli_nll_per_variable, linear,
                      linear_backward, mask_conditioning, mask_conditioning_backward, mask_weight)
from config import Config, count_distinct_masks, is_int, require
from engine import Gradients, Store, parameter_units
from kernels import engine_class
from weights import (CheckpointError, Parameters, check_params, file_arrays, init_params, read_file_arrays,
                     read_model_file)



# ----------------------------------------------------------------------------------------------
# Orderings and degrees: plain functions of small integer arrays


def sample_ordering(n_in, rng):
    """A uniformly random ordering: ordering[p] is the input at position p."""
    return rng.permutation(n_in)


def input_degrees(ordering):
    """m(d) for each input d: its position in the ordering (the inverse permutation). (D,) → (D,)."""
    degrees = np.empty(len(ordering), dtype=np.int64)
    degrees[ordering] = np.arange(len(ordering))
    return degrees


def sample_hidden_degrees(n_in, hidden_sizes, rng):
    """m_l(k) for each hidden layer: uniform on {min m_{l−1}, …, D−2} (paper section 4.2). The
    upper end D−2 (D−1 in the paper's 1-based numbering) keeps every unit useful: one of degree D−1
    could only feed outputs after the last one; the lower end keeps it from having no inputs."""
    hidden_degrees, low = [], 0
    for size in hidden_sizes:
        degrees = rng.integers(low, n_in - 1, size=size)
        hidden_degrees.append(degrees)
        low = int(degrees.min())
    return hidden_degrees


def ordering_and_degrees(config, k):
    """(ordering, hidden degrees) of mask k of a model's cycle: a pure function of the config's seed,
    k, and what config.shuffle resamples. Mask 0 has the ordering config.ordering asks for."""
    rng = backend.random_generator(config.seed, "masks", 0)
    if config.ordering == "natural":
        first_ordering = np.arange(config.n_in)
    elif config.ordering == "random":
        first_ordering = sample_ordering(config.n_in, rng)
    else:
        first_ordering = np.asarray(config.ordering, dtype=np.int64)
    first_degrees = sample_hidden_degrees(config.n_in, config.hidden_sizes, rng)
    if k == 0 or config.shuffle == "once":
        return first_ordering, first_degrees
    rng = backend.random_generator(config.seed, "masks", k)
    ordering = sample_ordering(config.n_in, rng)
    hidden_degrees = sample_hidden_degrees(config.n_in, config.hidden_sizes, rng)
    return {"ordering": (ordering, first_degrees), "connectivity": (first_ordering, hidden_degrees),
            "full": (ordering, hidden_degrees)}[config.shuffle]


# ----------------------------------------------------------------------------------------------
# The masks


def mask_matrices(degrees, layers, xp=np, dtype="float32"):
    """The 0/1 mask of every masked weight, name → (fan_out, fan_in) array. degrees[s]: the degree of
    each unit of source s (0: the inputs' positions m(d); l + 1: hidden layer l's m_l(k))."""
    masks = {}
    for index, layer in enumerate(layers):
        for name, source in layer.inputs:
            m_from = xp.asarray(degrees[source])[None, :]  # the units this weight reads
            if layer.hidden:  # eq. 12: M[k, j] = 1[m_l(k) ≥ m_{l−1}(j)]
                masks[name] = (xp.asarray(degrees[index + 1])[:, None] >= m_from).astype(dtype)
            else:             # eq. 13: M[d, k] = 1[m(d) > m_L(k)], and the direct weights M[d, j] = 1[m(d) > m(j)]
                masks[name] = (xp.asarray(degrees[0])[:, None] > m_from).astype(dtype)
    return masks


# ----------------------------------------------------------------------------------------------
# The layers a configuration (config.py) defines, and their parameters (weights.py initialises them)


@dataclasses.dataclass(frozen=True)
class Layer:
    """One layer: z = b + Σ_i h_i (W_i ⊙ M_i)ᵀ (+ Σ_i 1·(U_i ⊙ M_i)ᵀ), and h = f(z) when hidden.

    inputs: (weight name, source) per incoming weight; source 0 is the data x, source l + 1 the
    output of hidden layer l. conds: the U that goes with each weight (None without cond_mask)."""
    bias: str
    size: int
    inputs: tuple
    conds: tuple
    hidden: bool


def build_layers(config):
    """The hidden layers, then the output layer (from the last hidden layer and/or the data)."""
    n_hidden = len(config.hidden_sizes)

    def conds(inputs):
        return tuple(("U" + name[1:]) if config.cond_mask else None for name, _ in inputs)

    layers = [Layer(f"b{l}", size, ((f"W{l}", l),), conds(((f"W{l}", l),)), hidden=True)
              for l, size in enumerate(config.hidden_sizes)]
    inputs = ((f"W{n_hidden}", n_hidden),) if n_hidden else ()
    inputs += (("W_direct", 0),) if config.direct else ()
    return layers + [Layer(f"b{n_hidden}", config.n_in, inputs, conds(inputs), hidden=False)]


def param_shapes(config, layers):
    """name → shape of every parameter: each layer's weights and bias, then the U's."""
    sizes = [config.n_in] + list(config.hidden_sizes)
    shapes = {}
    for layer in layers:
        shapes.update({name: (layer.size, sizes[source]) for name, source in layer.inputs})
        shapes[layer.bias] = (layer.size,)
    for layer in layers:
        shapes.update({cond: shapes[name] for (name, _), cond in zip(layer.inputs, layer.conds) if cond})
    return shapes


# ----------------------------------------------------------------------------------------------
# The network under one mask, computed densely: the forward pass and backpropagation


def layer_biases(layers, params, masks):
    """Each layer's bias with its mask-conditioning terms: b + Σ_i 1·(U_i ⊙ M_i)ᵀ, name → (n_out,)."""
    return {layer.bias: params[layer.bias] + sum(mask_conditioning(params[cond], masks[name])
                                                 for (name, _), cond in zip(layer.inputs, layer.conds) if cond)
            for layer in layers}


def forward_pass(layers, net, activation, x):
    """The masked forward pass. net: the network under one mask (MADE.masked_network: W ⊙ M for
    every masked weight, each layer's bias with its mask-conditioning term). x: (N, D) → logits a
    (N, D), activations [x, h_1, …, h_L], pre-activations [z_1, …, z_L]."""
    activate = ACTIVATIONS[activation][0]
    activations, pre_activations = [x], []
    for layer in layers:
        (name, source), *others = layer.inputs  # every layer has at least one (Config checks it)
        z = linear(activations[source], net[name], net[layer.bias])
        for name, source in others:  # the direct connection into the output layer
            z += activations[source] @ net[name].T
        if layer.hidden:
            pre_activations.append(z)
            activations.append(activate(z))
    return z, activations, pre_activations


def backward_pass(layers, net, masks, activation, activations, pre_activations, grad_logits):
    """Backpropagation from ∂L/∂a (N, D) down through the layers, one at a time; name → ∂L/∂θ.

        ∂L/∂z_l = f'(z_l) ⊙ ∂L/∂h_l             a hidden layer's activation
        ∂L/∂W_i, ∂L/∂b, ∂L/∂h_i                 each incoming weight (autograd.linear_backward),
        ∂L/∂U_i = ∂L/∂b ⊙ M_i                   its mask-conditioning term
    """
    activation_backward = ACTIVATIONS[activation][1]
    grads, grad_h, grad_z = {}, {}, grad_logits
    for index in reversed(range(len(layers))):
        layer = layers[index]
        if layer.hidden:
            grad_z = activation_backward(grad_h.pop(index + 1), pre_activations[index], activations[index + 1])
        for (name, source), cond in zip(layer.inputs, layer.conds):
            grad_x, grads[name], grads[layer.bias] = linear_backward(  # the same ∂L/∂b for every input
                grad_z, activations[source], net[name], masks[name], need_grad_x=source > 0)
            if source > 0:  # each hidden layer feeds exactly one layer: the one above it
                grad_h[source] = grad_x
            if cond is not None:
                grads[cond] = mask_conditioning_backward(grads[layer.bias], masks[name])
    return grads


def masked_layers(layers, params, masks):
    """The network under one mask as the paper writes it: W ⊙ M for every masked weight, and each
    layer's bias with its mask-conditioning terms (layer_biases); all in the data's numbering."""
    return dict({name: mask_weight(params[name], mask) for name, mask in masks.items()},
                **layer_biases(layers, params, masks))


def dense_loss_and_grads(layers, params, masks, activation, x):
    """Mean NLL L = (1/N) Σ_n −log p(x_n) of a minibatch x (N, D), a 0-d array, and ∂L/∂θ for every
    parameter (name → array): forward_pass, ∂L/∂a = (σ(a) − x) / N, then backward_pass."""
    net = masked_layers(layers, params, masks)
    logits, activations, pre_activations = forward_pass(layers, net, activation, x)
    grad_logits = bernoulli_nll_backward(logits, x) / x.shape[0]
    grads = backward_pass(layers, net, masks, activation, activations, pre_activations, grad_logits)
    return bernoulli_nll(logits, x).mean(), grads


# ----------------------------------------------------------------------------------------------
# The reference engine: a MADE computed by exactly the functions above


class ReferenceEngine(Store):
    """The engine of MADE(..., reference=True) and train.py --reference: the parameters in the data's
    numbering, masked_layers, forward_pass, backward_pass and autograd's plain NLL, so a step is the
    equations; engine.Engine gives the same numbers faster (tests). Arguments as Engine takes them."""

    def __init__(self, layers, params, degrees, activation, gpu, dtype):
        super().__init__({name: backend.to_device(value, gpu, dtype) for name, value in params.items()})
        self.layers, self.activation, self.xp, self.dtype = layers, activation, backend.array_module(gpu), dtype
        self.units = parameter_units(layers)
        self.use_mask(degrees)

    def use_mask(self, degrees, key=None):
        self.masks = mask_matrices(degrees, self.layers, self.xp, self.dtype)

    def forward(self, x):
        return forward_pass(self.layers, masked_layers(self.layers, self.arrays, self.masks), self.activation, x)[0]

    def loss_and_grads(self, x):
        loss, grads = dense_loss_and_grads(self.layers, self.arrays, self.masks, self.activation, x)
        return loss, Gradients(self, grads)

    def log_prob(self, x, batch_size, after_batch=None, variables=None):
        """log p(x) = −Σ_d (softplus(a_d) − x_d a_d), batch by batch (over `variables` only, when given)."""
        kept = slice(None) if variables is None else self.xp.asarray(np.flatnonzero(variables))
        log_p = []
        for start in range(0, x.shape[0], batch_size):
            batch = x[start:start + batch_size]
            log_p.append(-bernoulli_nll_per_variable(self.forward(batch), batch)[:, kept].sum(axis=1))
            if after_batch is not None:
                after_batch()
        return self.xp.concatenate(log_p)


# ----------------------------------------------------------------------------------------------
# The model


class MADE:
    """A MADE over D binary inputs; the arguments are Config's, plus gpu (CuPy), params (weights to
    start from, as model.params holds them) and reference (ReferenceEngine instead of engine.py)."""

    def __init__(self, n_in, hidden_sizes, *, activation="relu", direct=False, cond_mask=False, ordering="random",
                 n_masks=1, shuffle="full", seed=0, dtype="float32", init="uniform", gpu=False, params=None,
                 reference=False):
        self.config = config = Config(n_in, hidden_sizes, activation, direct, cond_mask, ordering,
                                      n_masks, shuffle, seed, dtype, init)
        self.n_in, self.hidden_sizes, self.activation = config.n_in, list(config.hidden_sizes), config.activation
        self.direct, self.cond_mask, self.n_masks = config.direct, config.cond_mask, config.n_masks
        self.shuffle, self.seed, self.dtype = config.shuffle, config.seed, config.dtype
        self.gpu, self.xp = gpu, backend.array_module(gpu)
        self.layers = build_layers(config)
        shapes = param_shapes(config, self.layers)
        params = init_params(shapes, config.init, config.seed) if params is None else params
        check_params(params, shapes, self.dtype)
        ordering, hidden_degrees = ordering_and_degrees(config, 0)
        degrees = [input_degrees(ordering)] + hidden_degrees
        if reference:  # the functions above, as written
            self.engine = ReferenceEngine(self.layers, params, degrees, self.activation, gpu, self.dtype)
        else:  # engine.py's on the CPU, kernels.py's fused one on the GPU
            self.engine = engine_class(gpu)(self.layers, params, degrees, self.activation, self.n_masks,
                                            self.n_distinct_masks == 1, gpu, self.dtype)
        self._cycle = {}  # mask k of the cycle → its (ordering, hidden degrees), once drawn
        self.use_mask(0)

    @property
    def params(self):
        """name → parameter in the data's numbering (Parameters: read-only copies; assign to write)."""
        return Parameters(self)

    @property
    def n_params(self):
        return int(sum(p.size for p in self.engine.arrays.values()))

    n_distinct_masks = property(lambda self: count_distinct_masks(self.n_masks, self.shuffle))

    def _device_params(self):
        """The parameters in the data's numbering, as new arrays on the model's device."""
        return {name: self.engine.get(name) for name in self.engine.arrays}

    # -- masks ----------------------------------------------------------------------------------

    def degrees(self):
        """The current mask's degrees per source: [m(d) of the inputs, m_1(k), …, m_L(k)]."""
        return [input_degrees(self.ordering)] + [np.asarray(d) for d in self.hidden_degrees]

    def masks(self):
        """The current mask of every masked weight, in the data's numbering (eqs. 12–13)."""
        return mask_matrices(self.degrees(), self.layers, self.xp, self.dtype)

    def cycle_index(self, k):
        """The mask of the cycle that the k-th mask of a sequence is (the cycle wraps around)."""
        return k % self.n_masks if self.n_masks > 0 else k

    def use_mask(self, k):
        """Select mask k of the cycle, 0 ≤ k < n_masks (any k ≥ 0 when n_masks is 0)."""
        require(is_int(k) and 0 <= k and (k < self.n_masks or not self.n_masks),
                f"mask {k!r} is not in the model's cycle of {self.n_masks or 'unbounded'} masks")
        spec = self._cycle.get(int(k)) or ordering_and_degrees(self.config, int(k))
        if self.n_masks:  # (a fresh mask every minibatch is never needed again)
            self._cycle[int(k)] = spec
        self._select(int(k), *spec)

    def use_ordering(self, ordering, seed=0):
        """A mask outside the cycle (completion): this ordering, hidden degrees from `seed`; mask_index None."""
        ordering = np.asarray(ordering, dtype=np.int64)
        require(sorted(ordering.tolist()) == list(range(self.n_in)), f"ordering must be a permutation of range({self.n_in})")
        rng = backend.random_generator(self.seed, "custom_masks", int(seed))
        self._select(None, ordering, sample_hidden_degrees(self.n_in, self.hidden_sizes, rng))

    def _select(self, index, ordering, hidden_degrees):
        self.mask_index, self.ordering, self.hidden_degrees = index, ordering, hidden_degrees
        self.engine.use_mask(self.degrees(), index)

    def next_mask(self):
        """Advance to the next mask of the cycle (called after every minibatch when training over masks)."""
        if self.n_distinct_masks != 1:  # (under a custom ordering, back to mask 0 of the cycle)
            self.use_mask(0 if self.mask_index is None else self.cycle_index(self.mask_index + 1))

    @contextmanager
    def keeping_mask(self):
        """Within the block, use_mask or use_ordering freely; afterwards the model is back under its mask."""
        saved = self.mask_index, self.ordering, self.hidden_degrees
        try:
            yield self
        finally:
            self._select(*saved)

    # -- the reference: the equations above, dense, in the data's numbering ----------------------

    def masked_network(self, masks=None):
        """masked_layers under the current mask (masks: masks()), in the data's numbering."""
        return masked_layers(self.layers, self._device_params(), self.masks() if masks is None else masks)

    def reference_forward(self, x, net=None):
        """Logits a (N, D) under the current mask: p(x_d = 1 | x_<d) = σ(a_d). net: masked_network()."""
        net = self.masked_network() if net is None else net
        return forward_pass(self.layers, net, self.activation, self.xp.asarray(x, dtype=self.dtype))[0]

    def reference_loss_and_grads(self, x):
        """dense_loss_and_grads under masks(): the loss and a dict of gradients in the data's numbering."""
        x = self.xp.asarray(x, dtype=self.dtype)
        return dense_loss_and_grads(self.layers, self._device_params(), self.masks(), self.activation, x)

    # -- the same numbers, fast: through engine.py ---------------------------------------------

    def forward(self, x):
        """Logits a (N, D) under the current mask, p(x_d = 1 | x_<d) = σ(a_d). x: (N, D) of 0/1."""
        return self.engine.forward(self._data(x, "x", values=True))

    def loss_and_grads(self, x):
        """reference_loss_and_grads' numbers through the engine: a 0-d loss on the device, and
        engine.Gradients (grads[name]: a host copy in the data's numbering). x's values unchecked."""
        return self.engine.loss_and_grads(self._data(x, "x", values=False))

    def _data(self, x, what, values):
        """x on the device in the model's dtype, checked: (N ≥ 1, D), (values) 0 and 1 as given."""
        given = x if hasattr(x, "ndim") and backend.module_of(x) is self.xp else self.xp.asarray(x)
        require(given.ndim == 2 and given.shape[1] == self.n_in and given.shape[0] > 0,
                f"{what} must be an (N, {self.n_in}) array with N ≥ 1, not of shape {given.shape}")
        if values:  # 0.5, 2, NaN and inf are nonzero but not 1
            require(given.dtype.kind in "biuf" and int(self.xp.count_nonzero(given)) ==
                    int(self.xp.count_nonzero(given == 1)), f"{what} must hold only 0 and 1")
        return self.xp.asarray(given, dtype=self.dtype)

    def log_prob(self, x, n_masks=None, batch_size=1000, progress=None, variables=None, check_values=True):
        """log p(x) in nats, (N,). n_masks=K: the ensemble of masks 0…K−1 (section 4.3), averaged in
        probability, never in logits: log (1/K) Σ_k p(x | mask k), one mask at a time. progress(done,
        total) after every batch; variables, (D,) booleans: their conditionals only."""
        x = self._data(x, "x", values=check_values)
        require(is_int(batch_size) and batch_size > 0, f"batch_size must be a positive integer, not {batch_size!r}")
        require(n_masks is None or (is_int(n_masks) and n_masks > 0),
                f"n_masks must be a positive integer for an ensemble (None: the current mask), not {n_masks!r}")
        done, total_batches = [0], (n_masks or 1) * -(-x.shape[0] // batch_size)

        def after_batch():
            done[0] += 1
            if progress is not None:
                progress(done[0], total_batches)
        if n_masks is None:
            return self.engine.log_prob(x, batch_size, after_batch, variables)
        total = None  # log Σ_k p(x | mask k)
        with self.keeping_mask():
            for k in range(n_masks):
                self.use_mask(self.cycle_index(k))
                log_p = self.engine.log_prob(x, batch_size, after_batch, variables)
                total = log_p if total is None else self.xp.logaddexp(total, log_p, out=total)
        return total - math.log(n_masks)

    def save(self, path):
        """One .npz (model_arrays), written atomically."""
        files.save_npz(path, model_arrays(self))

    @classmethod
    def load(cls, path, gpu=False, reference=False):
        """The model saved at `path`; a corrupt, foreign or inconsistent file raises CheckpointError."""
        return model_from_arrays(read_model_file(path), str(path), gpu, reference)


def model_arrays(model):
    """The host arrays of a model's file (weights.file_arrays), as save and run folders write them."""
    require(model.mask_index is not None, "the model is under a custom ordering (use_ordering); select a mask "
                                           "of its cycle with use_mask(k) before saving")
    return file_arrays(model.config.as_dict(), model.params, model.mask_index)


def model_from_arrays(arrays, what, gpu=False, reference=False):
    """The model held in model_arrays() form; CheckpointError naming `what` when it is not one."""
    config, params, mask_index = read_file_arrays(arrays, what)
    try:
        model = MADE(**config, gpu=gpu, params=params, reference=reference)
        model.use_mask(mask_index)
        return model
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{what}: does not hold a consistent MADE ({error})") from None


def mixture_log_prob(models, x, n_masks=None, **options):
    """log p(x), (N,), of the mixture of models with equal weights: log (1/R) Σ_r p_r(x), where p_r
    is model r's log_prob with n_masks[r] (an int for all; None: its current mask): the ensemble's
    step taken over trained models, exact and normalised. options: as log_prob takes them."""
    counts = n_masks if isinstance(n_masks, (list, tuple)) else [n_masks] * len(models)
    require(len(models) > 0 and len(counts) == len(models), "one n_masks per model (or one for all)")
    total = None  # log Σ_r p_r(x)
    for model, count in zip(models, counts):
        log_p = model.log_prob(x, n_masks=count, **options)
        total = log_p if total is None else model.xp.logaddexp(total, log_p, out=total)
    return total - math.log(len(models))

