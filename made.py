"""MADE: a masked autoencoder whose outputs are the conditionals of an autoregressive model.

Section 4 of Germain, Gregor, Murray & Larochelle (ICML 2015), as code.

An ordering puts the D inputs in a sequence. Every unit gets a connectivity number m:
  - input d gets its position in the ordering, m(d) ∈ {0, …, D−1};
  - hidden unit k of layer l gets m_l(k) drawn uniformly from {min_j m_{l−1}(j), …, D−2};
  - a hidden weight from unit j to unit k is kept when m_{l−1}(j) ≤ m_l(k)   (eq. 12),
  - an output weight from hidden unit k to output d is kept when m_L(k) < m(d)  (eq. 13),
  - the optional direct input→output weight from input j to output d when m(j) < m(d).
So every path from input j to output d passes through units whose m never decreases from m(j) and
ends strictly below m(d): output d sees only inputs that come before it in the ordering. Its logit
a_d then defines p(x_d = 1 | x_<d) = σ(a_d), and by the chain rule of probability
    log p(x) = Σ_d log p(x_d | x_<d),
exact and normalised, in one forward pass.

Parameters (model.params, raw and unmasked; the masks are applied at every call):
    W0, b0 … W{L-1}, b{L-1}   hidden layers, W_l of shape (hidden_sizes[l], fan_in)
    W{L}, b{L}                 output layer, (D, hidden_sizes[-1]) and (D,); with no hidden layer
                               (hidden_sizes=[]) only the output bias b0 exists
    W_direct                   direct input→output connection (D, D), when direct=True
    U…                         one per masked weight, same shape, when cond_mask=True
model.masks holds the 0/1 mask of every masked weight under the same name.

Masks: the model has a cycle of n_masks masks (n_masks=0: an endless sequence, a fresh mask for
every minibatch). Mask k is a pure function of (seed, k), so any mask can be recreated exactly.
"""
import numpy as np

import backend
from autograd import (ACTIVATIONS, bernoulli_nll, bernoulli_nll_and_backward, bernoulli_nll_per_variable, linear,
                      linear_backward, log_mean_exp, mask_conditioning, mask_conditioning_backward, mask_weight)

SHUFFLES = ("full", "ordering", "connectivity", "once")
MASK_CACHE_BYTES = 256 * 2 ** 20  # keep a cycle's masks when they fit in this much memory
INITS = ("uniform", "orthogonal")
FORMAT = "made-npz-1"

# Independent random streams derived from the seed: the weights, the masks of the cycle, and the
# masks of orderings given from outside (completion). train.py draws minibatches from stream 2.
_INIT_STREAM, _MASK_STREAM, _CUSTOM_MASK_STREAM = 0, 1, 3


class CheckpointError(ValueError):
    """A model file cannot be used: corrupt, foreign, or inconsistent with its own config."""


# ----------------------------------------------------------------------------------------------
# Orderings, connectivity and masks: plain functions of small integer arrays.


def sample_ordering(n_in, rng):
    """A uniformly random ordering: ordering[p] is the input sampled at position p."""
    return rng.permutation(n_in)


def input_degrees(ordering):
    """m(d) for each input d: its position in the ordering (the inverse permutation). (D,) → (D,)."""
    degrees = np.empty(len(ordering), dtype=np.int64)
    degrees[ordering] = np.arange(len(ordering))
    return degrees


def sample_connectivity(n_in, hidden_sizes, rng):
    """m_l(k) for each hidden layer: uniform on {min m_{l−1}, …, D−2} (paper section 4.2).

    The upper end D−2 (D−1 in the paper's 1-based numbering) keeps every hidden unit useful: a unit
    with m = D−1 could only feed outputs after the last one. The lower end min m_{l−1} keeps it
    from having no inputs at all.
    """
    connectivity, low = [], 0
    for size in hidden_sizes:
        degrees = rng.integers(low, n_in - 1, size=size)
        connectivity.append(degrees)
        low = int(degrees.min())
    return connectivity


def build_masks(ordering, connectivity, direct, xp=np, dtype="float32"):
    """The 0/1 masks of every masked weight, as a dict name → (fan_out, fan_in) array.

    Hidden layer l:  M[k, j] = 1[m_l(k) ≥ m_{l−1}(j)]      (eq. 12)
    Output layer:    M[d, k] = 1[m(d) > m_L(k)]            (eq. 13)
    Direct:          M[d, j] = 1[m(d) > m(j)]              (strictly lower-triangular in the ordering)
    """
    degrees_in = xp.asarray(input_degrees(np.asarray(ordering)))
    degrees = [degrees_in] + [xp.asarray(c) for c in connectivity]
    masks = {}
    for layer in range(len(connectivity)):
        masks[f"W{layer}"] = (degrees[layer + 1][:, None] >= degrees[layer][None, :]).astype(dtype)
    if connectivity:
        masks[f"W{len(connectivity)}"] = (degrees_in[:, None] > degrees[-1][None, :]).astype(dtype)
    if direct:
        masks["W_direct"] = (degrees_in[:, None] > degrees_in[None, :]).astype(dtype)
    return masks


def connected_pairs(masks, hidden_sizes, direct):
    """Which outputs can reach which inputs: the product of the masks along every path, as 0/1.

    (D, D) array, [d, j] = 1 when some path of kept weights leads from input j to output d.
    """
    n_layers = len(hidden_sizes)
    reach = None
    if n_layers:
        reach = np.asarray(backend.to_host(masks["W0"]), dtype=np.float64)
        for layer in range(1, n_layers + 1):
            reach = np.asarray(backend.to_host(masks[f"W{layer}"]), dtype=np.float64) @ reach
    if direct:
        direct_mask = np.asarray(backend.to_host(masks["W_direct"]), dtype=np.float64)
        reach = direct_mask if reach is None else reach + direct_mask
    return (reach > 0).astype(np.int64)


# ----------------------------------------------------------------------------------------------
# Weight initialisation, on the host in float64 so CPU and GPU runs start from the same numbers.


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


# ----------------------------------------------------------------------------------------------


class MADE:
    """A MADE over D binary inputs. See the module docstring for the parameters and masks.

    n_in: D. hidden_sizes: units per hidden layer ([] with direct=True is the shallow MADE, an
    FVSBN). activation: relu | tanh | sigmoid | softplus. direct: add the masked input→output
    weights. cond_mask: add the authors' mask-conditioning term to every masked layer.
    ordering: "random", "natural" or an explicit permutation of range(D) for mask 0.
    n_masks: masks in the training cycle (1: one fixed mask; 0: a fresh mask for every minibatch).
    shuffle: what later masks resample: "full" (ordering and connectivity), "ordering",
    "connectivity", or "once" (never: every mask is mask 0). seed: all randomness of the model.
    dtype: "float32" or "float64". init: "uniform" (Glorot) or "orthogonal". gpu: use CuPy.
    params: existing weights (name → array, as model.params) instead of a fresh initialisation;
    their names and shapes must be exactly those the other arguments define.
    """

    def __init__(self, n_in, hidden_sizes, *, activation="relu", direct=False, cond_mask=False,
                 ordering="random", n_masks=1, shuffle="full", seed=0, dtype="float32",
                 init="uniform", gpu=False, params=None):
        self.config = _check_config(n_in, hidden_sizes, activation, direct, cond_mask, ordering,
                                    n_masks, shuffle, seed, dtype, init)
        self.n_in = n_in
        self.hidden_sizes = list(self.config["hidden_sizes"])
        self.activation, self.direct, self.cond_mask = activation, direct, cond_mask
        self.n_masks, self.shuffle, self.seed = n_masks, shuffle, seed
        self.dtype = self.config["dtype"]
        self.gpu = gpu
        self.xp = backend.array_module(gpu)
        self.params = self._init_params(init) if params is None else self._adopt_params(params)
        self._base_spec = self._draw_base_spec()
        self._mask_cache = {}
        self.use_mask(0)

    # -- parameters and masks -----------------------------------------------------------------

    def _weight_shapes(self):
        """name → shape of every masked weight, in forward order."""
        sizes = [self.n_in] + self.hidden_sizes
        shapes = {f"W{layer}": (sizes[layer + 1], sizes[layer]) for layer in range(len(self.hidden_sizes))}
        if self.hidden_sizes:
            shapes[f"W{len(self.hidden_sizes)}"] = (self.n_in, self.hidden_sizes[-1])
        if self.direct:
            shapes["W_direct"] = (self.n_in, self.n_in)
        return shapes

    def param_shapes(self):
        """name → shape of every parameter, in a fixed order: weights with their biases, then U's."""
        shapes = {}
        for name, shape in self._weight_shapes().items():
            shapes[name] = shape
            if name != "W_direct":
                shapes["b" + name[1:]] = (shape[0],)
        shapes.setdefault(f"b{len(self.hidden_sizes)}", (self.n_in,))  # the shallow MADE's bias
        if self.cond_mask:
            for name, shape in self._weight_shapes().items():
                shapes[_cond_name(name)] = shape
        return shapes

    def _init_params(self, init):
        """Weights from init_weight (in param_shapes order, from the seed's stream), biases zero."""
        rng = backend.random_generator([self.seed, _INIT_STREAM])
        host = {name: np.zeros(shape) if name.startswith("b") else init_weight(shape, init, rng)
                for name, shape in self.param_shapes().items()}
        return {name: backend.to_device(value, self.gpu, self.dtype) for name, value in host.items()}

    def _adopt_params(self, params):
        """Given weights, checked against param_shapes() before any copy is made."""
        expected = self.param_shapes()
        if set(params) != set(expected):
            raise ValueError(f"parameters {sorted(set(params) ^ set(expected))} do not match the architecture")
        for name, shape in expected.items():
            value = params[name]
            if tuple(value.shape) != shape or value.dtype.kind != "f":
                raise ValueError(f"{name} has shape {tuple(value.shape)} ({value.dtype}), the architecture needs {shape} (float)")
            if not bool(backend.module_of(value).isfinite(value).all()):
                raise ValueError(f"{name} holds NaN or infinite values")
        return {name: backend.to_device(params[name], self.gpu, self.dtype) for name in expected}

    @property
    def n_params(self):
        return int(sum(p.size for p in self.params.values()))

    def mask_spec(self, k):
        """(ordering, connectivity) of mask k: a pure function of (seed, k) and the shuffle kind."""
        base_ordering, base_connectivity = self._base_spec
        if k == 0 or self.shuffle == "once":
            return base_ordering, base_connectivity
        rng = backend.random_generator([self.seed, _MASK_STREAM, k])
        ordering = sample_ordering(self.n_in, rng)
        connectivity = sample_connectivity(self.n_in, self.hidden_sizes, rng)
        if self.shuffle == "ordering":
            connectivity = base_connectivity
        elif self.shuffle == "connectivity":
            ordering = base_ordering
        return ordering, connectivity

    def _draw_base_spec(self):
        """Mask 0: the ordering asked for (natural, random or given) and a drawn connectivity."""
        rng = backend.random_generator([self.seed, _MASK_STREAM, 0])
        choice = self.config["ordering"]
        if choice == "natural":
            ordering = np.arange(self.n_in)
        elif choice == "random":
            ordering = sample_ordering(self.n_in, rng)
        else:
            ordering = np.asarray(choice, dtype=np.int64)
        return ordering, sample_connectivity(self.n_in, self.hidden_sizes, rng)

    def use_mask(self, k):
        """Select mask k of the cycle (any k ≥ 0 when n_masks is 0).

        Building a mask costs a comparison per weight; when the whole cycle fits in
        MASK_CACHE_BYTES each mask is built once and kept, so cycling through K masks every
        minibatch costs nothing after the first K minibatches."""
        self.mask_index = int(k)
        if self.mask_index in self._mask_cache:
            self.ordering, self.connectivity, self.masks = self._mask_cache[self.mask_index]
            return
        self.ordering, self.connectivity = self.mask_spec(self.mask_index)
        self.masks = build_masks(self.ordering, self.connectivity, self.direct, self.xp, self.dtype)
        mask_bytes = sum(m.nbytes for m in self.masks.values())
        if self.mask_index < self.n_masks and 1 < self.n_masks and self.n_masks * mask_bytes <= MASK_CACHE_BYTES:
            self._mask_cache[self.mask_index] = (self.ordering, self.connectivity, self.masks)

    def use_ordering(self, ordering, seed=0):
        """A mask outside the cycle: the given ordering, with connectivity drawn from `seed`
        (used for completion, where the observed values must come first). mask_index becomes None;
        use_mask(k) returns to the cycle."""
        ordering = np.asarray(ordering, dtype=np.int64)
        if sorted(ordering.tolist()) != list(range(self.n_in)):
            raise ValueError(f"ordering must be a permutation of range({self.n_in})")
        rng = backend.random_generator([self.seed, _CUSTOM_MASK_STREAM, int(seed)])
        self.mask_index = None
        self.ordering, self.connectivity = ordering, sample_connectivity(self.n_in, self.hidden_sizes, rng)
        self.masks = build_masks(self.ordering, self.connectivity, self.direct, self.xp, self.dtype)

    def next_mask(self):
        """Advance to the next mask of the cycle (called before every minibatch when training over masks)."""
        if self.n_masks == 1 or self.shuffle == "once":
            return  # one mask: nothing to rebuild
        k = self.mask_index + 1
        self.use_mask(k % self.n_masks if self.n_masks > 0 else k)

    # -- forward and backward -----------------------------------------------------------------

    def _as_input(self, x):
        """x on the model's device in the model's dtype (no copy when it already is)."""
        return self.xp.asarray(x, dtype=self.dtype)

    def bias_of(self, name):
        """Bias of the layer with weight `name`, plus its mask-conditioning term when enabled."""
        bias = self.params["b" + name[1:]]
        if self.cond_mask:
            bias = bias + mask_conditioning(self.params[_cond_name(name)], self.masks[name])
        return bias

    def masked_weights(self):
        """W ⊙ M for every masked weight: computed once per minibatch (or per evaluation)."""
        return {name: mask_weight(self.params[name], self.masks[name]) for name in self.masks}

    def _forward(self, x, masked=None):
        """Logits (N, D) and what the backward pass needs: the masked weights and each hidden
        layer's (input, pre-activation, output)."""
        activate = ACTIVATIONS[self.activation][0]
        masked = self.masked_weights() if masked is None else masked
        layers, h = [], x
        for layer in range(len(self.hidden_sizes)):
            name = f"W{layer}"
            z = linear(h, masked[name], self.bias_of(name))
            h_next = activate(z)
            layers.append((h, z, h_next))
            h = h_next
        output = f"W{len(self.hidden_sizes)}"
        if self.hidden_sizes:
            logits = linear(h, masked[output], self.bias_of(output))
            if self.direct:
                logits += x @ masked["W_direct"].T
        else:  # the shallow MADE: the direct connection alone, with the output bias
            logits = linear(x, masked["W_direct"], self.params["b0"])
        if self.direct and self.cond_mask:
            logits += mask_conditioning(self.params["U_direct"], self.masks["W_direct"])
        return logits, masked, layers

    def forward(self, x, masked=None):
        """Output logits a (N, D) under the current mask: p(x_d = 1 | x_<d) = σ(a_d).
        masked: the result of masked_weights(), when the caller reuses it across calls."""
        return self._forward(self._as_input(x), masked)[0]

    def nll_and_grads(self, x):
        """Mean negative log-likelihood of a minibatch (a 0-d array on the model's device, so a GPU
        never waits for the host) and its gradient for every parameter.

        Backpropagation, top to bottom:
            ∂L/∂a = (σ(a) − x) / N                    the loss's gradient (autograd.bernoulli_nll_and_backward)
            output layer and direct connection:      autograd.linear_backward
            ∂L/∂z_l = f'(z_l) ⊙ ∂L/∂h_l               the activation's backward
            hidden layer l:                           autograd.linear_backward, down to layer 0
        """
        x = self._as_input(x)
        logits, masked, layers = self._forward(x)
        nll, grad_logits = bernoulli_nll_and_backward(logits, x)
        loss = nll.mean()
        grad_logits /= x.shape[0]
        grads = {}

        def backward_through(name, grad_y, layer_input, need_grad_x):
            grad_x, grads[name], grad_bias = linear_backward(grad_y, layer_input, masked[name],
                                                             self.masks[name], need_grad_x)
            if name != "W_direct":
                grads["b" + name[1:]] = grad_bias
            if self.cond_mask:
                grads[_cond_name(name)] = mask_conditioning_backward(grad_bias, self.masks[name])
            return grad_x

        n_layers = len(self.hidden_sizes)
        if self.direct:
            backward_through("W_direct", grad_logits, x, need_grad_x=False)
        if not n_layers:
            grads["b0"] = grad_logits.sum(axis=0)
            return loss, grads
        activation_backward = ACTIVATIONS[self.activation][1]
        grad_h = backward_through(f"W{n_layers}", grad_logits, layers[-1][2], need_grad_x=True)
        for layer in reversed(range(n_layers)):
            layer_input, z, h = layers[layer]
            grad_z = activation_backward(grad_h, z, h)
            grad_h = backward_through(f"W{layer}", grad_z, layer_input, need_grad_x=layer > 0)
        return loss, grads

    def loss_and_grads(self, x):
        """(mean NLL as a Python float, dict of gradients keyed like model.params)."""
        loss, grads = self.nll_and_grads(x)
        return float(loss), grads

    def log_prob(self, x, n_masks=None, batch_size=1000):
        """log p(x) in nats, shape (N,), on the model's device.

        n_masks=None: under the current mask. n_masks=K: the ensemble of masks 0…K−1 (paper
        section 4.3), log p(x) = log (1/K) Σ_k p(x | mask k), averaged in probability with
        log-sum-exp; the current mask is restored afterwards. A K larger than the training cycle
        goes round the cycle again (masks outside it were never trained).
        """
        x = self._as_input(x)
        if n_masks is None:
            return self._log_prob_current(x, batch_size)
        if n_masks < 1:
            raise ValueError(f"n_masks must be at least 1 for an ensemble, not {n_masks}")
        current = self.mask_index
        try:
            per_mask = []
            for k in range(n_masks):
                self.use_mask(k % self.n_masks if self.n_masks > 0 else k)
                per_mask.append(self._log_prob_current(x, batch_size))
        finally:
            self.use_mask(current)
        return log_mean_exp(self.xp.stack(per_mask), axis=0)

    def log_prob_observed(self, x, observed, seed=0, batch_size=1000):
        """log p(x_O) of the observed values alone, (N,): exact under an ordering that puts the
        observed variables first (their conditionals then involve nothing unobserved), summed over
        their positions. observed: (N, D) or (D,) booleans. One ordering per distinct pattern,
        drawn from `seed`; the current mask is restored afterwards."""
        x = self._as_input(x)
        observed = np.broadcast_to(np.asarray(backend.to_host(observed), dtype=bool), x.shape)
        result = self.xp.zeros(x.shape[0], dtype=self.dtype)
        current = self.mask_index
        try:
            for group, (pattern, rows) in enumerate(group_by_pattern(observed)):
                self.use_ordering(observed_first_ordering(pattern, backend.random_generator([seed, group])), seed)
                rows_device = self.xp.asarray(rows)
                columns = self.xp.asarray(np.flatnonzero(pattern))
                masked = self.masked_weights()
                for start in range(0, len(rows), batch_size):
                    chunk = rows_device[start:start + batch_size]
                    logits = self._forward(x[chunk], masked)[0]
                    per_variable = bernoulli_nll_per_variable(logits, x[chunk])
                    result[chunk] = -per_variable[:, columns].sum(axis=1)
        finally:
            self.use_mask(current if current is not None else 0)
        return result

    def _log_prob_current(self, x, batch_size):
        masked = self.masked_weights()
        chunks = [-bernoulli_nll(self._forward(x[start:start + batch_size], masked)[0], x[start:start + batch_size])
                  for start in range(0, x.shape[0], batch_size)]
        return self.xp.concatenate(chunks) if chunks else self.xp.zeros(0, dtype=self.dtype)

    # -- saving and loading -------------------------------------------------------------------

    def state_arrays(self):
        """Everything that defines the model, as host arrays: weights, config, current mask."""
        if self.mask_index is None:
            raise ValueError("the model is under a custom ordering (use_ordering); select a mask of "
                             "its cycle with use_mask(k) before saving")
        arrays = {f"param.{name}": backend.to_host(value) for name, value in self.params.items()}
        arrays["config"] = backend.json_array(dict(self.config, format=FORMAT))
        arrays["mask_index"] = np.array(self.mask_index)
        return arrays

    def save(self, path):
        """One .npz (weights, config as JSON, mask index), written atomically."""
        backend.save_npz(path, self.state_arrays())

    @classmethod
    def load(cls, path, gpu=False):
        """The model saved at `path`; a corrupt, foreign or inconsistent file raises CheckpointError."""
        try:
            arrays = backend.read_npz(path)
        except backend.FileFormatError as error:
            raise CheckpointError(str(error)) from None
        return cls.from_state_arrays(arrays, str(path), gpu)

    @classmethod
    def from_state_arrays(cls, arrays, what, gpu=False):
        if "config" not in arrays:
            raise CheckpointError(f"{what}: not a MADE model file (no config)")
        try:
            config = backend.read_json_array(arrays["config"], f"{what}: config")
        except backend.FileFormatError as error:
            raise CheckpointError(str(error)) from None
        if not isinstance(config, dict) or config.pop("format", None) != FORMAT:
            raise CheckpointError(f"{what}: not a MADE model file of format {FORMAT}")
        params = {name[len("param."):]: value for name, value in arrays.items() if name.startswith("param.")}
        try:
            model = cls(**config, gpu=gpu, params=params)
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"{what}: does not hold a consistent MADE ({error})") from None
        mask_index = arrays.get("mask_index", np.array(0))
        if (mask_index.shape != () or mask_index.dtype.kind not in "iu" or int(mask_index) < 0
                or (model.n_masks > 0 and int(mask_index) >= model.n_masks)):
            raise CheckpointError(f"{what}: mask_index must be an integer in the model's cycle of masks")
        model.use_mask(int(mask_index))
        return model


def observed_first_ordering(observed, rng):
    """An ordering with the observed variables first, each group in random order. observed: (D,) bool."""
    observed = np.asarray(observed, dtype=bool)
    return np.concatenate([rng.permutation(np.flatnonzero(observed)), rng.permutation(np.flatnonzero(~observed))])


def group_by_pattern(observed):
    """[(pattern (D,), row indices)] for each distinct row of a boolean (N, D) array, in first-seen order."""
    patterns, first, inverse = np.unique(observed, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    return [(patterns[i], np.flatnonzero(inverse == i)) for i in np.argsort(first)]


def _cond_name(weight_name):
    """The mask-conditioning weights that go with a masked weight: W1 → U1, W_direct → U_direct."""
    return "U" + weight_name[1:]


def _check_config(n_in, hidden_sizes, activation, direct, cond_mask, ordering, n_masks, shuffle,
                  seed, dtype, init):
    """Validate the constructor's arguments; return them as a JSON-able dict (what save() stores)."""
    def is_int(value):
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

    if not is_int(n_in) or n_in < 2:
        raise ValueError(f"n_in must be an integer ≥ 2, not {n_in!r}")
    hidden_sizes = list(hidden_sizes)
    if not all(is_int(size) and size > 0 for size in hidden_sizes):
        raise ValueError(f"hidden_sizes must be positive integers, not {hidden_sizes!r}")
    if not hidden_sizes and not direct:
        raise ValueError("hidden_sizes=[] needs direct=True (the shallow MADE); otherwise no input reaches the output")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, not {activation!r}")
    if isinstance(ordering, str):
        if ordering not in ("random", "natural"):
            raise ValueError(f"ordering must be 'random', 'natural' or a permutation, not {ordering!r}")
    else:
        ordering = [int(i) for i in np.asarray(ordering).reshape(-1)]
        if sorted(ordering) != list(range(n_in)):
            raise ValueError(f"ordering must be a permutation of range({n_in})")
    if not is_int(n_masks) or n_masks < 0:
        raise ValueError(f"n_masks must be an integer ≥ 0 (0: a fresh mask every time), not {n_masks!r}")
    if shuffle not in SHUFFLES:
        raise ValueError(f"shuffle must be one of {SHUFFLES}, not {shuffle!r}")
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, not {init!r}")
    return {"n_in": int(n_in), "hidden_sizes": [int(s) for s in hidden_sizes], "activation": activation,
            "direct": bool(direct), "cond_mask": bool(cond_mask), "ordering": ordering,
            "n_masks": int(n_masks), "shuffle": shuffle, "seed": int(seed),
            "dtype": backend.check_dtype(dtype), "init": init}
