"""MADE: a masked autoencoder whose outputs are the conditionals of an autoregressive model.

Section 4 of Germain, Gregor, Murray & Larochelle (ICML 2015), as code.

An ordering puts the D inputs in a sequence. Every unit gets a degree m(·) (the paper's
"connectivity" number: the most inputs it may depend on):
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

The network is a list of layers (build_layers); each computes z = b + Σ_i h_i (W_i ⊙ M_i)ᵀ over
its incoming weights, and hidden layers apply the activation. Its parameters (model.params, raw;
the masks are applied at every call), all listed by param_shapes:
    W0, b0 … W{L-1}, b{L-1}   hidden layer l: W_l of shape (hidden_sizes[l], fan_in)
    W{L}, b{L}                 output layer: (D, hidden_sizes[-1]) and (D,); with no hidden layer
                               (hidden_sizes=[], the shallow MADE) only the bias b0
    W_direct                   direct input→output weights (D, D) into the output layer, when direct
    U0 …, U_direct             with cond_mask, one per masked weight, same shape: the authors'
                               mask-conditioning term 1·(U ⊙ M)ᵀ, a bias that depends on the mask
model.masks holds the 0/1 mask of every masked weight under the weight's name (in the model's
dtype, or as booleans where a cycle's masks are kept compactly: see mask_dtype).

The model's layout. A MADE does not care how its units are numbered, so the model stores them in
the order that makes its masks simple: the inputs (and outputs) in the order mask 0 visits them,
each hidden layer's units by increasing degree under mask 0 (unit_orders). Under mask 0 every mask
is then a staircase, which staircase.py turns into a few dense blocks. Column j of model.params
["W0"] is therefore input model.unit_order[0][j] of the data; the model permutes x on the way in
and the logits on the way out, and saves its weights numbered as the data is (natural_params).
Under that mask the fast path sets the removed weights inside its blocks to zero in model.params
itself (they can never matter; see staircase.py).

Masks: the model has a cycle of n_masks masks (n_masks=0: an endless sequence, a fresh mask for
every minibatch). Mask k is a pure function of (seed, k), so any mask can be recreated exactly.

Two ways to compute: the reference (reference_forward, reference_loss_and_grads) is the paper's
equations in plain code, dense products with the masked weights; forward, loss_and_grads and
log_prob run the same computation through staircase.py, multiplying only what the masks keep.
The tests hold the two equal.
"""
import dataclasses
import math
from contextlib import contextmanager

import numpy as np

import backend
import staircase
from autograd import (ACTIVATIONS, bernoulli_nll_and_backward, linear,
                      linear_backward, mask_conditioning, mask_conditioning_backward, mask_weight)

SHUFFLES = ("full", "ordering", "connectivity", "once")
INITS = ("uniform", "orthogonal")
FORMAT = "made-npz-1"
MASK_CACHE_BYTES = 512 * 2 ** 20  # keep a cycle's masks when they fit in this much memory
# Under a mask of a cycle, evaluation sorts a copy of the weights first (a one-mask model's own
# layout needs none). That copy costs about what the dense products of 500 examples cost more than
# the staircase's, whatever the model's size (both scale with its weights), so smaller calls
# multiply densely (BENCHMARKS.md).
SORTED_COPY_PAYS_FROM = 500


class CheckpointError(ValueError):
    """A model file cannot be used: corrupt, foreign, or inconsistent with its own config."""


# ----------------------------------------------------------------------------------------------
# Orderings, degrees and masks: plain functions of small integer arrays.


def sample_ordering(n_in, rng):
    """A uniformly random ordering: ordering[p] is the input sampled at position p."""
    return rng.permutation(n_in)


def input_degrees(ordering):
    """m(d) for each input d: its position in the ordering (the inverse permutation). (D,) → (D,)."""
    degrees = np.empty(len(ordering), dtype=np.int64)
    degrees[ordering] = np.arange(len(ordering))
    return degrees


def sample_hidden_degrees(n_in, hidden_sizes, rng):
    """m_l(k) for each hidden layer: uniform on {min m_{l−1}, …, D−2} (paper section 4.2).

    The upper end D−2 (D−1 in the paper's 1-based numbering) keeps every hidden unit useful: a unit
    of degree D−1 could only feed outputs after the last one. The lower end min m_{l−1} keeps it
    from having no inputs at all.
    """
    hidden_degrees, low = [], 0
    for size in hidden_sizes:
        degrees = rng.integers(low, n_in - 1, size=size)
        hidden_degrees.append(degrees)
        low = int(degrees.min())
    return hidden_degrees


def unit_orders(ordering, hidden_degrees):
    """Which unit sits at each place when a mask's units are sorted, per source: the inputs in the
    ordering (source 0), then each hidden layer's units by increasing degree (stable)."""
    return [np.asarray(ordering)] + [np.argsort(np.asarray(d), kind="stable") for d in hidden_degrees]


def build_masks(degrees, layers, xp=np, dtype="float32"):
    """The 0/1 masks of every masked weight, as a dict name → (fan_out, fan_in) array.

    degrees[s]: the degree of each unit of source s (0: the inputs' positions m(d); l + 1: hidden
    layer l's m_l(k)), numbered as the weights are.
        Hidden layer l:  M[k, j] = 1[m_l(k) ≥ m_{l−1}(j)]      (eq. 12)
        Output layer:    M[d, k] = 1[m(d) > m_L(k)]            (eq. 13)
        Direct:          M[d, j] = 1[m(d) > m(j)]              (strictly lower-triangular in the ordering)
    """
    degrees = [xp.asarray(d) for d in degrees]
    masks = {}
    for index, layer in enumerate(layers):
        own = degrees[index + 1] if layer.hidden else degrees[0]
        for name, source in layer.inputs:
            before = own[:, None] >= degrees[source][None, :] if layer.hidden else own[:, None] > degrees[source][None, :]
            masks[name] = before.astype(dtype, copy=False)
    return masks


def mask_dtype(n_masks, weight_shapes, dtype):
    """The dtype a model builds its masks in: its own, the fastest to multiply by, unless only
    booleans let its cycle of n_masks masks (of the given weight shapes) fit in MASK_CACHE_BYTES.
    Where weights are that large their products are bound by memory, and a boolean mask multiplies
    as fast: at 784-8000-784 with 32 masks, booleans take 0.4 GB and save rebuilding 50 MB of masks
    every minibatch."""
    n_elements = (n_masks if n_masks > 1 else 0) * sum(math.prod(shape) for shape in weight_shapes)
    if n_elements * np.dtype(dtype).itemsize <= MASK_CACHE_BYTES or n_elements > MASK_CACHE_BYTES:
        return dtype
    return bool


def mask_spec(config, k):
    """(ordering, hidden degrees) of mask k of a model's sequence: a pure function of the config's
    seed, k, and what config.shuffle resamples. Mask 0 has the ordering config.ordering asks for."""
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
    if config.shuffle == "ordering":
        return ordering, first_degrees
    if config.shuffle == "connectivity":
        return first_ordering, hidden_degrees
    return ordering, hidden_degrees


def connected_pairs(masks, hidden_sizes, direct):
    """Reference for the tests: which outputs can reach which inputs, from the product of the masks
    along every path. (D, D) 0/1 array, [d, j] = 1 when some path of kept weights leads from j to d."""
    reach = None
    if hidden_sizes:
        reach = np.asarray(backend.to_host(masks["W0"]), dtype=np.float64)
        for layer in range(1, len(hidden_sizes) + 1):
            reach = np.asarray(backend.to_host(masks[f"W{layer}"]), dtype=np.float64) @ reach
    if direct:
        direct_mask = np.asarray(backend.to_host(masks["W_direct"]), dtype=np.float64)
        reach = direct_mask if reach is None else reach + direct_mask
    return (reach > 0).astype(np.int64)


def observed_first_ordering(observed, rng):
    """An ordering with the observed variables first, each group in random order. observed: (D,) bool."""
    observed = np.asarray(observed, dtype=bool)
    return np.concatenate([rng.permutation(np.flatnonzero(observed)), rng.permutation(np.flatnonzero(~observed))])


def distinct_masks(n_masks, shuffle):
    """How many different masks a cycle of n_masks holds: 1, n_masks, or None (n_masks=0: unbounded)."""
    if n_masks == 1 or shuffle == "once":
        return 1
    return n_masks or None


def trained_on_one_ordering(model):
    """True when an ordering other than the first is outside what the model learned (completion
    and log p(x_O) need orderings with the observed values first)."""
    return model.n_masks == 1 or model.shuffle in ("connectivity", "once")


def puts_first(ordering, pattern):
    """Whether `ordering` lists every observed variable (pattern: (D,) bool) before any other."""
    return bool(np.all(pattern[np.asarray(ordering)[:int(pattern.sum())]]))


def completes_in_own_ordering(model, observed):
    """Whether each observation pattern in `observed` ((N, D) or (D,) bool) comes first in an ordering
    the model trained on: always for a model trained over orderings, and for a model of one ordering
    when that ordering puts every pattern's observed values first (a raster ordering and a top half)."""
    if not trained_on_one_ordering(model):
        return True
    ordering = mask_spec(model.config, 0)[0]
    observed = np.asarray(observed, dtype=bool).reshape(-1, model.n_in)
    return all(puts_first(ordering, pattern) for pattern, _ in group_by_pattern(observed))


def group_by_pattern(observed):
    """[(pattern (D,), row indices)] for each distinct row of a boolean (N, D) array, in first-seen order."""
    patterns, first, inverse = np.unique(observed, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    return [(patterns[i], np.flatnonzero(inverse == i)) for i in np.argsort(first)]


# ----------------------------------------------------------------------------------------------
# The configuration and the layers it defines


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that defines a MADE but its weights; validated on creation, saved as JSON.

    n_in: D. hidden_sizes: units per hidden layer (() with direct=True is the shallow MADE, an
    FVSBN). activation: relu | tanh | sigmoid | softplus. direct: add the masked input→output
    weights. cond_mask: add the mask-conditioning term to every masked layer. ordering: "random",
    "natural" or a permutation of range(D), for mask 0. n_masks: masks in the training cycle (1: one
    fixed mask; 0: a fresh mask for every minibatch). shuffle: what later masks resample: "full"
    (ordering and degrees), "ordering", "connectivity" (the hidden degrees), or "once" (never).
    seed: all randomness of the model. dtype: "float32" or "float64". init: "uniform" (Glorot's
    range) or "orthogonal".
    """
    n_in: int
    hidden_sizes: tuple
    activation: str = "relu"
    direct: bool = False
    cond_mask: bool = False
    ordering: object = "random"
    n_masks: int = 1
    shuffle: str = "full"
    seed: int = 0
    dtype: str = "float32"
    init: str = "uniform"

    def __post_init__(self):
        self._check_shape()
        self._check_choices()

    def _fix(self, name, value):
        object.__setattr__(self, name, value)  # how a frozen dataclass normalises its own fields

    def _check_shape(self):
        """n_in, hidden_sizes and ordering: the network's shape and mask 0's ordering."""
        fix = self._fix
        if not _is_int(self.n_in) or self.n_in < 2:
            raise ValueError(f"n_in must be an integer ≥ 2, not {self.n_in!r}")
        fix("n_in", int(self.n_in))
        if isinstance(self.hidden_sizes, (str, bytes)) or not np.iterable(self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be a list of positive integers, not {self.hidden_sizes!r}")
        if not all(_is_int(size) and size > 0 for size in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive integers, not {self.hidden_sizes!r}")
        fix("hidden_sizes", tuple(int(size) for size in self.hidden_sizes))
        if not self.hidden_sizes and not self.direct:
            raise ValueError("hidden_sizes=[] needs direct=True (the shallow MADE); otherwise no input reaches the output")
        if isinstance(self.ordering, str):
            if self.ordering not in ("random", "natural"):
                raise ValueError(f"ordering must be 'random', 'natural' or a permutation, not {self.ordering!r}")
        else:
            ordering = tuple(int(i) for i in np.asarray(self.ordering).reshape(-1))
            if sorted(ordering) != list(range(self.n_in)):
                raise ValueError(f"ordering must be a permutation of range({self.n_in})")
            fix("ordering", ordering)

    def _check_choices(self):
        """The options: activation, masks, shuffle, seed, init, dtype."""
        fix = self._fix
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, not {self.activation!r}")
        if not _is_int(self.n_masks) or self.n_masks < 0:
            raise ValueError(f"n_masks must be an integer ≥ 0 (0: a fresh mask every time), not {self.n_masks!r}")
        if self.shuffle not in SHUFFLES:
            raise ValueError(f"shuffle must be one of {SHUFFLES}, not {self.shuffle!r}")
        if not _is_int(self.seed) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, not {self.seed!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, not {self.init!r}")
        fix("direct", bool(self.direct))
        fix("cond_mask", bool(self.cond_mask))
        fix("n_masks", int(self.n_masks))
        fix("seed", int(self.seed))
        fix("dtype", backend.check_dtype(self.dtype))

    def as_dict(self):
        """The JSON form (lists for tuples), as MADE(**config.as_dict()) takes it back."""
        value = dataclasses.asdict(self)
        value["hidden_sizes"] = list(self.hidden_sizes)
        if not isinstance(self.ordering, str):
            value["ordering"] = list(self.ordering)
        return value


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
    weights = {name: (layer.size, sizes[source]) for layer in layers for name, source in layer.inputs}
    shapes = {}
    for layer in layers:
        shapes.update({name: weights[name] for name, _ in layer.inputs})
        shapes[layer.bias] = (layer.size,)
    shapes.update({cond: weights[name] for layer in layers for (name, _), cond in zip(layer.inputs, layer.conds)
                   if cond is not None})
    return shapes


def param_units(layers):
    """name → (source whose units its rows are, source whose units its columns are, or None for a
    bias): how each parameter is renumbered when the units are (source 0: the inputs/outputs)."""
    units = {}
    for index, layer in enumerate(layers):
        own = index + 1 if layer.hidden else 0
        units[layer.bias] = (own, None)
        for (name, source), cond in zip(layer.inputs, layer.conds):
            units[name] = (own, source)
            if cond is not None:
                units[cond] = (own, source)
    return units


def reorder(array, rows, columns=None):
    """array[rows][:, columns]: a weight (or bias) with its units renumbered, as a new array."""
    xp = backend.module_of(array)
    array = xp.take(array, xp.asarray(rows), axis=0)
    return array if columns is None else xp.take(array, xp.asarray(columns), axis=1)


def init_weight(shape, kind, rng):
    """'uniform': U(−r, r), r = √(6 / (fan_in + fan_out)) (Glorot & Bengio 2010).
    'orthogonal': rows (or columns) orthonormal, from the QR decomposition of a Gaussian matrix."""
    fan_out, fan_in = shape
    if kind == "uniform":
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape)
    gaussian = rng.standard_normal((max(shape), min(shape)))
    q, r = np.linalg.qr(gaussian)
    q *= np.sign(np.diag(r))  # makes the decomposition unique, so Q is uniformly distributed
    return q if fan_out >= fan_in else q.T


def init_params(shapes, kind, seed):
    """Host float64 weights from init_weight, in the order of `shapes`, from the seed's stream;
    biases zero. Drawn on the host so CPU and GPU runs start from the same numbers."""
    rng = backend.random_generator(seed, "init")
    return {name: np.zeros(shape) if len(shape) == 1 else init_weight(shape, kind, rng)
            for name, shape in shapes.items()}


def check_params(params, shapes):
    """Given weights must have exactly the names and shapes the architecture defines, and be finite."""
    if set(params) != set(shapes):
        raise ValueError(f"parameters {sorted(set(params) ^ set(shapes))} do not match the architecture")
    for name, shape in shapes.items():
        value = params[name]
        if tuple(value.shape) != shape or value.dtype.kind != "f":
            raise ValueError(f"{name} has shape {tuple(value.shape)} ({value.dtype}), the architecture needs {shape} (float)")
        if not bool(backend.module_of(value).isfinite(value).all()):
            raise ValueError(f"{name} holds NaN or infinite values")


# ----------------------------------------------------------------------------------------------


class MADE:
    """A MADE over D binary inputs; the arguments are those of Config (read it for each one), plus
    gpu (use CuPy) and params (existing weights, name → array numbered as the data is, as
    natural_params() returns them, instead of a fresh initialisation; their names and shapes must
    be those the configuration defines)."""

    def __init__(self, n_in, hidden_sizes, *, activation="relu", direct=False, cond_mask=False,
                 ordering="random", n_masks=1, shuffle="full", seed=0, dtype="float32",
                 init="uniform", gpu=False, params=None):
        self.config = config = Config(n_in, hidden_sizes, activation, direct, cond_mask, ordering,
                                      n_masks, shuffle, seed, dtype, init)
        self.n_in, self.hidden_sizes, self.activation = config.n_in, list(config.hidden_sizes), config.activation
        self.direct, self.cond_mask, self.n_masks = config.direct, config.cond_mask, config.n_masks
        self.shuffle, self.seed, self.dtype = config.shuffle, config.seed, config.dtype
        self.gpu, self.xp = gpu, backend.array_module(gpu)
        # Staircase blocks pay on the CPU, where a product costs its multiply-adds. On a GPU a
        # product of this size costs its launch, and the blocks' many small products and updates
        # took 2 to 4 times the dense ones (H100, BENCHMARKS.md): there every mask is multiplied in.
        self.staircase_blocks = not gpu
        self.layers = build_layers(config)
        shapes = param_shapes(config, self.layers)
        if params is None:
            params = init_params(shapes, config.init, config.seed)
        check_params(params, shapes)
        self.unit_order = unit_orders(*mask_spec(config, 0))  # the model's layout (module docstring)
        self._inverse_order = [np.argsort(order) for order in self.unit_order]
        self._units = param_units(self.layers)
        self.params = {name: backend.to_device(self._renumber(name, params[name], self.unit_order), gpu, self.dtype)
                       for name in shapes}
        self.mask_dtype = mask_dtype(self.n_masks, [shapes[name] for layer in self.layers for name, _ in layer.inputs],
                                     self.dtype)
        self._mask_cache, self._networks = {}, {}
        self.use_mask(0)

    @property
    def n_params(self):
        return int(sum(p.size for p in self.params.values()))

    def _renumber(self, name, array, orders):
        """A parameter with its rows and columns taken in the given unit orders (one per source)."""
        rows, columns = self._units[name]
        return reorder(array, orders[rows], None if columns is None else orders[columns])

    def to_natural(self, name, array):
        """An array shaped like params[name] (a parameter, its gradient, an optimizer's state),
        from the model's layout to the data's numbering, as a host array."""
        return backend.to_host(self._renumber(name, array, self._inverse_order))

    def from_natural(self, name, array):
        """The inverse of to_natural: a host array numbered as the data is, in the model's layout."""
        return self._renumber(name, array, self.unit_order)

    def natural_params(self):
        """The parameters as host arrays numbered as the data is: column j of W0 is input j, hidden
        units in the order mask_spec draws their degrees (what files hold)."""
        return {name: self.to_natural(name, value) for name, value in self.params.items()}

    # -- masks ----------------------------------------------------------------------------------

    @property
    def distinct_masks(self):
        """How many different masks training used: 1, n_masks, or None (n_masks=0: unbounded)."""
        return distinct_masks(self.n_masks, self.shuffle)

    @property
    def fixed_mask(self):
        """True when the model is under the one mask it was built for: its layout's staircase."""
        return self.distinct_masks == 1 and self.mask_index is not None

    def cycle_index(self, k):
        """The mask of the cycle that the k-th mask of a sequence is (the cycle wraps around)."""
        return k % self.n_masks if self.n_masks > 0 else k

    def use_mask(self, k):
        """Select mask k of the cycle (any k ≥ 0 when n_masks is 0). A cycle whose masks fit in
        MASK_CACHE_BYTES keeps them, so cycling every minibatch builds each mask only once."""
        k = int(k)
        if k in self._mask_cache:
            self.mask_index, (self.ordering, self.hidden_degrees, self.unit_degrees, self.masks) = k, self._mask_cache[k]
            return
        self._set_mask(k, *mask_spec(self.config, k))
        mask_bytes = sum(m.nbytes for m in self.masks.values())
        if k < self.n_masks and 1 < self.n_masks and self.n_masks * mask_bytes <= MASK_CACHE_BYTES:
            self._mask_cache[k] = (self.ordering, self.hidden_degrees, self.unit_degrees, self.masks)

    def _set_mask(self, index, ordering, hidden_degrees):
        """The mask given by an ordering and hidden degrees (numbered as mask_spec numbers the units);
        unit_degrees[s] are the degrees of source s's units in the model's layout."""
        self.mask_index, self.ordering, self.hidden_degrees = index, ordering, hidden_degrees
        natural = [input_degrees(ordering)] + [np.asarray(d) for d in hidden_degrees]
        self.unit_degrees = [degrees[order] for degrees, order in zip(natural, self.unit_order)]
        self.masks = build_masks(self.unit_degrees, self.layers, self.xp, self.mask_dtype)

    def use_ordering(self, ordering, seed=0):
        """A mask outside the cycle: the given ordering, with hidden degrees drawn from `seed` (used
        for completion, where the observed values must come first). mask_index becomes None."""
        ordering = np.asarray(ordering, dtype=np.int64)
        if sorted(ordering.tolist()) != list(range(self.n_in)):
            raise ValueError(f"ordering must be a permutation of range({self.n_in})")
        rng = backend.random_generator(self.seed, "custom_masks", int(seed))
        self._set_mask(None, ordering, sample_hidden_degrees(self.n_in, self.hidden_sizes, rng))

    def use_observed_first(self, pattern, seed=0, group=0):
        """A mask whose ordering puts the observed variables (pattern: (D,) bool) first, as completion
        and log p(x_O) need. A model of one ordering that already does so keeps it (under mask `seed`
        of its cycle, when the connectivity was resampled): that is what it learned. Any other model
        gets observed_first_ordering drawn from [seed, group] (stream "pattern_orderings"), with
        hidden degrees from `seed`: the observed in random order, then the rest."""
        pattern = np.asarray(pattern, dtype=bool)
        if trained_on_one_ordering(self) and puts_first(mask_spec(self.config, 0)[0], pattern):
            self.use_mask(self.cycle_index(seed))
        else:
            rng = backend.random_generator(seed, "pattern_orderings", group)
            self.use_ordering(observed_first_ordering(pattern, rng), seed)

    def next_mask(self):
        """Advance to the next mask of the cycle (called after every minibatch when training over masks)."""
        if self.distinct_masks != 1:  # (under a custom ordering, back to mask 0 of the cycle)
            self.use_mask(0 if self.mask_index is None else self.cycle_index(self.mask_index + 1))

    @contextmanager
    def keeping_mask(self):
        """Within the block, use_mask or use_ordering freely; afterwards the model is back under
        the mask it had, whatever it was (a mask of the cycle or a custom ordering)."""
        saved = self.mask_index, self.ordering, self.hidden_degrees, self.unit_degrees, self.masks
        try:
            yield self
        finally:
            self.mask_index, self.ordering, self.hidden_degrees, self.unit_degrees, self.masks = saved

    # -- the reference: the paper's equations, dense ---------------------------------------------

    def masked_weights(self):
        """W ⊙ M for every masked weight: computed once per minibatch (or per evaluation)."""
        return {name: mask_weight(self.params[name], self.masks[name]) for name in self.masks}

    def layer_bias(self, layer):
        """The layer's bias b, plus its mask-conditioning terms Σ_i 1·(U_i ⊙ M_i)ᵀ when enabled."""
        bias = self.params[layer.bias]
        for (name, _), cond in zip(layer.inputs, layer.conds):
            if cond is not None:
                bias = bias + mask_conditioning(self.params[cond], self.masks[name])
        return bias

    def _reference_pass(self, x, masked):
        """Logits (N, D), and per hidden layer its pre-activation z; activations[s] is source s
        (activations[0] = x, then each hidden layer's output h). All in the model's layout."""
        activate = ACTIVATIONS[self.activation][0]
        activations, pre_activations = [x], []
        for layer in self.layers:
            (name, source), *others = layer.inputs  # every layer has at least one (Config checks it)
            z = linear(activations[source], masked[name], self.layer_bias(layer))
            for name, source in others:
                z += activations[source] @ masked[name].T
            if layer.hidden:
                pre_activations.append(z)
                activations.append(activate(z))
        return z, activations, pre_activations

    def _in_layout(self, x):
        """x (N, D) on the model's device in its dtype, columns in the model's layout."""
        return self.xp.asarray(x, dtype=self.dtype)[:, self.xp.asarray(self.unit_order[0])]

    def reference_forward(self, x, masked=None):
        """Output logits a (N, D) under the current mask, in the data's column order, computed
        densely: p(x_d = 1 | x_<d) = σ(a_d). masked: masked_weights(), when reused across calls."""
        logits = self._reference_pass(self._in_layout(x), self.masked_weights() if masked is None else masked)[0]
        return logits[:, self.xp.asarray(self._inverse_order[0])]

    def reference_loss_and_grads(self, x):
        """Mean negative log-likelihood of a minibatch x (N, D) (0-d array), and its gradient for every
        parameter, keyed like model.params (in the model's layout). Dense, allocating, plain.

        Backpropagation, from the top, one layer at a time:
            ∂L/∂a = (σ(a) − x) / N                  the loss (autograd.bernoulli_nll_and_backward)
            ∂L/∂z_l = f'(z_l) ⊙ ∂L/∂h_l             a hidden layer's activation
            ∂L/∂W_i, ∂L/∂b, ∂L/∂h_i                 each incoming weight (autograd.linear_backward),
                                                    ∂L/∂U_i from the bias's gradient
        """
        x = self._in_layout(x)
        masked = self.masked_weights()
        logits, activations, pre_activations = self._reference_pass(x, masked)
        nll, grad_z = bernoulli_nll_and_backward(logits, x)
        grad_z /= x.shape[0]
        activation_backward = ACTIVATIONS[self.activation][1]
        grads, grad_h = {}, {}
        for index in reversed(range(len(self.layers))):
            layer = self.layers[index]
            if layer.hidden:
                grad_z = activation_backward(grad_h.pop(index + 1), pre_activations[index], activations[index + 1])
            for (name, source), cond in zip(layer.inputs, layer.conds):
                grad_x, grads[name], grads[layer.bias] = linear_backward(  # the same ∂L/∂b for every input
                    grad_z, activations[source], masked[name], self.masks[name], need_grad_x=source > 0)
                if source > 0:  # each hidden layer feeds exactly one layer: the one above it
                    grad_h[source] = grad_x
                if cond is not None:
                    grads[cond] = mask_conditioning_backward(grads[layer.bias], self.masks[name])
        return nll.mean(), grads

    # -- the fast path: the same numbers through staircase.py ------------------------------------

    def sorted_network(self):
        """A staircase.Network for the current mask, its units sorted by their degrees under it.
        Under the fixed mask this is the model's own layout, over model.params themselves (kept
        and reused); under any other mask, over sorted copies of the weights (made anew each call:
        it is only as fresh as the weights it copied).
        .degrees holds the sorted degrees of each source's units."""
        if self.fixed_mask and "fixed" in self._networks:
            return self._networks["fixed"]
        orders = [np.argsort(degrees, kind="stable") for degrees in self.unit_degrees]
        degrees = [d[order] for d, order in zip(self.unit_degrees, orders)]
        products = {}
        for index, layer in enumerate(self.layers):
            own = degrees[index + 1] if layer.hidden else degrees[0]
            for name, source in layer.inputs:
                products[name] = staircase.Staircase(
                    staircase.prefixes(own, degrees[source], strict=not layer.hidden), len(degrees[source]),
                    self.xp, self.dtype)
        if self.fixed_mask:
            weights = self.params
        else:
            weights = {name: self._renumber(name, value, orders) for name, value in self.params.items()}
        network = staircase.Network(self.layers, weights, products, self.activation,
                                    self.unit_order[0][orders[0]], self.xp, self.dtype, degrees)
        if self.fixed_mask:
            self._networks["fixed"] = network
        return network

    def _training_network(self):
        """The network loss_and_grads runs: on the CPU under the fixed mask, the staircase;
        otherwise dense products (on a GPU always; for a cycle, sorting the weights anew for every
        minibatch costs more than the blocks save)."""
        if self.fixed_mask and self.staircase_blocks:
            return self.sorted_network()
        return self.dense_network()

    def dense_network(self):
        """A staircase.Network of dense products with the current masks, in the model's layout,
        over model.params; its buffers outlive the mask."""
        products = {name: staircase.DenseMask(mask) for name, mask in self.masks.items()}
        if "dense" not in self._networks:
            self._networks["dense"] = staircase.Network(self.layers, self.params, products, self.activation,
                                                        self.unit_order[0], self.xp, self.dtype)
        else:
            self._networks["dense"].use(products, self.unit_order[0])
        return self._networks["dense"]

    def _evaluation_network(self, n_examples):
        """The network that evaluates n_examples under the current mask: the staircase of a one-mask
        model (its own layout), or of a cycle's mask for at least SORTED_COPY_PAYS_FROM examples
        (its sorted copy of the weights then pays); dense products otherwise, and always on a GPU."""
        if self.staircase_blocks and (self.fixed_mask or n_examples >= SORTED_COPY_PAYS_FROM):
            return self.sorted_network()
        return self.dense_network()

    def forward(self, x):
        """Output logits a (N, D) under the current mask, in the data's column order:
        p(x_d = 1 | x_<d) = σ(a_d)."""
        network = self._evaluation_network(x.shape[0])
        logits = self.xp.empty((x.shape[0], self.n_in), dtype=self.dtype)
        logits[:, network.input_order] = network.forward(self._as_input(x))
        return logits

    def loss_and_grads(self, x):
        """Mean negative log-likelihood of a minibatch x (N, D), and its gradient for every parameter,
        keyed like model.params: reference_loss_and_grads' numbers, through staircase.py.

        The loss is a 0-d array on the model's device (float(loss) reads it; on a GPU that waits for
        the device, so a loop that sums losses should sum arrays). The gradients are the model's
        own buffers, valid until its next loss_and_grads: copy one to keep it. grads.regions lists
        the blocks of each weight that can be nonzero; the optimizers update only those.
        """
        return self._training_network().loss_and_grads(self._as_input(x))

    def _as_input(self, x):
        """x on the model's device in the model's dtype (no copy when it already is)."""
        return self.xp.asarray(x, dtype=self.dtype)

    # -- log-likelihoods ------------------------------------------------------------------------

    def log_prob(self, x, n_masks=None, batch_size=1000, progress=None):
        """log p(x) in nats, shape (N,), on the model's device.

        n_masks=None: under the current mask. n_masks=K: the ensemble of masks 0…K−1 (paper
        section 4.3), log p(x) = log (1/K) Σ_k p(x | mask k), averaged in probability by a running
        log-sum-exp, so memory holds one mask's results at a time; the current mask is restored
        afterwards. A K larger than the training cycle goes round it again. progress(done, total),
        when given, is called after every batch of every mask (to report, or to stop).
        """
        x = self._as_input(x)
        n_batches = -(-x.shape[0] // batch_size)  # per mask
        if n_masks is None:
            return self._log_prob_current(x, batch_size, progress, 0, n_batches)
        if n_masks < 1:
            raise ValueError(f"n_masks must be at least 1 for an ensemble, not {n_masks}")
        total = None
        with self.keeping_mask():
            for k in range(n_masks):
                self.use_mask(self.cycle_index(k))
                log_p = self._log_prob_current(x, batch_size, progress, k * n_batches, n_masks * n_batches)
                total = log_p if total is None else self.xp.logaddexp(total, log_p, out=total)
        total -= math.log(n_masks)
        return total

    def _log_prob_current(self, x, batch_size, progress, done, total):
        """log p(x) under the current mask, batch by batch."""
        network = self._evaluation_network(x.shape[0])
        prepared = network.prepare()  # once per mask, for all its batches
        result = self.xp.empty(x.shape[0], dtype=self.dtype)
        for start in range(0, x.shape[0], batch_size):
            result[start:start + batch_size] = network.log_prob(x[start:start + batch_size], prepared=prepared)
            if progress is not None:
                done += 1
                progress(done, total)
        network.drop_buffers()  # (memory: training's next step makes its own small ones again)
        return result

    def log_prob_observed(self, x, observed, seed=0, batch_size=1000, progress=None):
        """log p(x_O) of the observed values alone, (N,): exact under an ordering that puts the
        observed variables first (their conditionals then involve nothing unobserved), summed over
        their positions. observed: (N, D) or (D,) booleans. One ordering per distinct pattern
        (use_observed_first, from `seed`); the current mask is restored afterwards.
        progress(done, total), if given, is called with the examples scored so far."""
        return self._log_prob_in_two_parts(x, observed, seed, batch_size, True, progress)

    def log_prob_unobserved(self, x, observed, seed=0, batch_size=1000, progress=None):
        """log p(x_U | x_O), (N,): how well the model completes the unobserved values from the
        observed ones. Under the same orderings as log_prob_observed, the sum of the conditionals
        at the positions after the observed ones; log p(x_O) + log p(x_U | x_O) = log p(x) under
        that ordering. progress as in log_prob_observed."""
        return self._log_prob_in_two_parts(x, observed, seed, batch_size, False, progress)

    def _log_prob_in_two_parts(self, x, observed, seed, batch_size, first_part, progress):
        """The conditionals of the observed-first positions (first_part) or of the rest, summed."""
        x = self._as_input(x)
        observed = np.broadcast_to(np.asarray(backend.to_host(observed), dtype=bool), x.shape)
        result = self.xp.zeros(x.shape[0], dtype=self.dtype)
        done = 0  # examples scored (one ordering per pattern: scattered patterns take long)
        with self.keeping_mask():
            for group, (pattern, rows) in enumerate(group_by_pattern(observed)):
                self.use_observed_first(pattern, seed, group)
                network, rows = self.sorted_network(), self.xp.asarray(rows)
                n_observed = int(pattern.sum())  # the observed come first in the sorted layout
                columns = slice(None, n_observed) if first_part else slice(n_observed, None)
                prepared = network.prepare()
                for start in range(0, len(rows), batch_size):
                    chunk = rows[start:start + batch_size]
                    result[chunk] = network.log_prob(x[chunk], columns, prepared)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, x.shape[0])
        return result

    # -- saving and loading -------------------------------------------------------------------

    def save(self, path):
        """One .npz (weights, config as JSON, mask index), written atomically."""
        import files  # the disk is files.py's business: only save and load reach it
        files.save_npz(path, state_arrays(self))

    @classmethod
    def load(cls, path, gpu=False):
        """The model saved at `path`; a corrupt, foreign or inconsistent file raises CheckpointError."""
        import files
        try:
            arrays = files.read_npz(path)
        except files.FileFormatError as error:
            raise CheckpointError(str(error)) from None
        return from_state_arrays(arrays, str(path), gpu)


# ----------------------------------------------------------------------------------------------
# A model as arrays (what save writes and a checkpoint holds)


def state_arrays(model):
    """Everything that defines a model, as host arrays: param.NAME weights, its config as JSON
    (with the format's name), the current mask's index."""
    if model.mask_index is None:
        raise ValueError("the model is under a custom ordering (use_ordering); select a mask of "
                         "its cycle with use_mask(k) before saving")
    arrays = {f"param.{name}": value for name, value in model.natural_params().items()}
    import files  # the JSON-in-an-array format is files.py's
    arrays["config"] = files.json_array(dict(model.config.as_dict(), format=FORMAT))
    arrays["mask_index"] = np.array(model.mask_index)
    return arrays


def from_state_arrays(arrays, what, gpu=False):
    """The model held in state_arrays() form; CheckpointError naming `what` when it is not one."""
    import files  # the JSON-in-an-array format is files.py's, like the .npz around it
    if "config" not in arrays:
        raise CheckpointError(f"{what}: not a MADE model file (no config)")
    try:
        config = files.read_json_array(arrays["config"], f"{what}: config")
    except files.FileFormatError as error:
        raise CheckpointError(str(error)) from None
    if not isinstance(config, dict) or config.pop("format", None) != FORMAT:
        raise CheckpointError(f"{what}: not a MADE model file of format {FORMAT}")
    params = {name[len("param."):]: value for name, value in arrays.items() if name.startswith("param.")}
    try:
        model = MADE(**config, gpu=gpu, params=params)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{what}: does not hold a consistent MADE ({error})") from None
    mask_index = arrays.get("mask_index", np.array(0))
    if (mask_index.shape != () or mask_index.dtype.kind not in "iu" or int(mask_index) < 0
            or (model.n_masks > 0 and int(mask_index) >= model.n_masks)):
        raise CheckpointError(f"{what}: mask_index must be an integer in the model's cycle of masks")
    model.use_mask(int(mask_index))
    return model
