"""The engine: how a MADE computes fast, behind one seam.

made.py holds the model as the paper writes it: every layer multiplies by W ⊙ M, in the data's
numbering. MADE.forward, loss_and_grads and log_prob hand their work to an Engine, which computes
the same numbers (the tests hold the two equal) and owns what made.py never sees: the layout of
the weights, the products that skip the masks' zeros (staircase.py), buffers, and the rules for
choosing between them.

The layout. A MADE does not care how its units are numbered, so the engine keeps the model's
parameters (Engine.arrays, which the optimizers update in place) with the units of every layer
sorted by their degree under the model's first mask: the inputs and outputs in mask 0's ordering,
each hidden layer's units by m_l(k). Under that mask every mask is then a staircase. This order is
the engine's own: everything that leaves the engine is in the data's numbering (column j of W0 is
input j), as made.py, the files and the user see the weights. A Store (below) is the one door:
`get`/`set` read and write a parameter in the data's numbering, `export`/`adopt` turn any array
shaped like one (a gradient, an optimizer's state) out of and into the engine's order, and
`pieces` hands an optimizer the arrays to update. Keeping the data's numbering instead would cost
a gather of the weights and a scatter of their gradients at every step: 0.35 + 0.55 ms for W0's
columns and 0.13 + 0.06 ms for W1's rows at 784-500-784 on 2 cores, against about 4 ms for the
whole step (benchmarks/layout_gather.py, BENCHMARKS.md), which is why the engine keeps its own
order and translates only at the door.

The products, chosen for every call (network):
  - a one-mask model under its mask, on the CPU: the staircase over the parameters themselves.
    Their removed weights are zero: set when the engine takes the weights (initialisation,
    loading) and kept so by the optimizers, whose updates are zero where the gradient is. A value
    a user writes there is found by a read of the blocks' edges before every use, and that call
    multiplies densely instead. Nothing is written into the parameters.
  - under a mask of a cycle (or any other ordering): dense products, W ⊙ M into a buffer, for
    training (sorting the weights anew for every minibatch would cost more than the blocks save)
    and for evaluating fewer than SORTED_COPY_PAYS_FROM examples; from there on, a copy of the
    weights sorted for that mask, through its staircase.
  - on a GPU, dense products always: a product of this size costs its launch there, and blocks
    only add launches; they took 2 to 4 times the dense products (H100, BENCHMARKS.md).
"""
import math
from collections.abc import Mapping

import numpy as np

import backend
import staircase

MASK_CACHE_BYTES = 512 * 2 ** 20  # keep a cycle's masks when they fit in this much memory
# Under a mask of a cycle, evaluation sorts a copy of the weights first. That copy costs about what
# the dense products of 500 examples cost more than the staircase's, whatever the model's size
# (both scale with its weights), so smaller calls multiply densely (BENCHMARKS.md).
SORTED_COPY_PAYS_FROM = 500
BAND = 2 ** 18  # elements an optimizer updates at a time: its several passes over them stay in the cache


def mask_dtype(n_masks, weight_shapes, dtype):
    """The dtype the engine keeps a cycle's masks in: its own, the fastest to multiply by, unless
    only booleans let the cycle of n_masks masks (of the given weight shapes) fit in
    MASK_CACHE_BYTES. Where weights are that large their products are bound by memory, and a
    boolean mask multiplies as fast: at 784-8000-784 with 32 masks, booleans take 0.4 GB and save
    rebuilding 50 MB of masks every minibatch."""
    n_elements = (n_masks if n_masks > 1 else 0) * sum(math.prod(shape) for shape in weight_shapes)
    if n_elements * np.dtype(dtype).itemsize <= MASK_CACHE_BYTES or n_elements > MASK_CACHE_BYTES:
        return dtype
    return bool


def parameter_units(layers):
    """name → (the source whose units are its rows, the source whose units are its columns, or None
    for a bias): how each parameter is renumbered when units are (source 0: the inputs/outputs)."""
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


def read_only(array):
    """A new array, on the host, that raises on any write: what the engine hands out is a copy, so
    a write into it could change nothing, and must say so rather than do nothing."""
    array = backend.to_host(array)
    array.flags.writeable = False
    return array


class Store:
    """A model's parameters as an engine keeps them, and the one door to them.

    arrays: name → device array, in the engine's order (this base class: the data's numbering);
    optimizers update them in place (pieces). Every other access goes through the data's
    numbering: get/set a parameter, export/adopt any array shaped like one."""

    def __init__(self, arrays):
        self.arrays = arrays

    def _to_data(self, name, array):
        return array.copy()  # (this store keeps the data's numbering)

    def _from_data(self, name, array):
        return array

    def get(self, name, orders=None):
        """Parameter `name` in the data's numbering, a new array on the model's device; with orders
        (per source s, orders[s][i]: the unit, in the data's numbering, to put at place i), its units
        in those orders instead, for a reader that sorts them (the samplers): then the array may be
        the parameter itself, read-only on the host, when that is already its order."""
        if orders is None:
            return self._to_data(name, self.arrays[name])
        return self._renumber(name, self.arrays[name], orders)

    def _renumber(self, name, array, orders):
        """An array shaped like parameter `name`, its units put in `orders` (per source, as for get)."""
        rows, columns = self.units[name]
        return reorder(array, orders[rows], None if columns is None else orders[columns])

    def set(self, name, value):
        """Write `value` (shaped like the parameter, in the data's numbering) into parameter `name`."""
        target = self.arrays[name]
        target[...] = self.adopt(name, value)

    def export(self, name, array):
        """An array shaped like parameter `name` (its gradient, an optimizer's state), in the
        engine's order → a read-only host array in the data's numbering."""
        return read_only(self._to_data(name, array))

    def adopt(self, name, array):
        """The inverse of export: an array in the data's numbering → the engine's order, on its
        device and in its dtype."""
        target = self.arrays[name]
        return self._from_data(name, backend.module_of(target).asarray(array, dtype=target.dtype))

    def zeros(self):
        """name → zeros shaped like each parameter, on its device: an optimizer's state slot."""
        return {name: backend.module_of(p).zeros_like(p) for name, p in self.arrays.items()}

    def fused_step(self, rule, grads):
        """Apply the rule's step to every parameter in one launch, where the engine can (the GPU
        engine, kernels.py); False: the rule updates piece by piece."""
        return False

    def pieces(self, grads):
        """(name, index expression, gradient in the engine's order) for every piece an optimizer
        updates: the engine's own gradients band by band (Gradients.bands), any other mapping (in
        the data's numbering) parameter by parameter."""
        if isinstance(grads, Gradients) and grads.store is self:
            yield from grads.bands()
            return
        for name, grad in grads.items():
            yield name, Ellipsis, self.adopt(name, grad)


class Gradients(Mapping):
    """∂L/∂θ of every parameter. grads[name] is a read-only host array in the data's numbering,
    made when asked for; the engine's own buffers (its order, valid until its next call) go to an
    optimizer through Store.pieces without a copy. regions[name]: the parts of a buffer that can be
    nonzero (an optimizer skips the rest: its gradient there is zero at every step)."""

    def __init__(self, store, buffers, regions=None):
        self.store, self.buffers, self.regions = store, buffers, regions or {}

    def __getitem__(self, name):
        return self.store.export(name, self.buffers[name])

    def __iter__(self):
        return iter(self.buffers)

    def __len__(self):
        return len(self.buffers)

    def bands(self):
        """(name, index expression, buffer) of the pieces an optimizer updates: each buffer's
        regions cut into bands of whole rows of about BAND elements. A rule makes several passes
        over its arrays; band by band, the later passes find them in the cache (a region cut at its
        block's width is worth it on long rows only, staircase.LONG_ROWS). A GPU streams whole
        regions at once."""
        for name, grad in self.buffers.items():
            if grad.ndim == 0:
                yield name, Ellipsis, grad
                continue
            for region in self.regions.get(name, (Ellipsis,)):
                region = region if isinstance(region, tuple) else (slice(None),)
                rows = range(grad.shape[0])[region[0]]
                if not len(rows):
                    continue
                step = len(rows) if backend.is_device_array(grad) else \
                    max(1, BAND * len(rows) // max(grad[region].size, 1))
                for start in range(rows.start, rows.stop, step):
                    yield name, (slice(start, min(start + step, rows.stop)),) + region[1:], grad


class Engine(Store):
    """A MADE's parameters in the engine's layout, and its products under the current mask.

    layers: made.Layer list; params: name → host array in the data's numbering; degrees: the first
    mask's degrees of each source's units (0: the inputs' positions, l + 1: hidden layer l), in
    the data's numbering; n_masks: the training cycle's length (its masks are kept when they fit);
    one_mask: whether the model only ever trains under its first mask.
    """

    def __init__(self, layers, params, degrees, activation, n_masks, one_mask, gpu, dtype):
        self.layers, self.activation, self.n_masks, self.one_mask = layers, activation, n_masks, one_mask
        self.xp, self.dtype = backend.array_module(gpu), dtype
        self.staircase_blocks = not gpu
        self.order = [np.argsort(d, kind="stable") for d in degrees]  # order[s][i]: the unit at place i
        self.inverse = [np.argsort(order) for order in self.order]
        self.units = parameter_units(layers)
        super().__init__({name: backend.to_device(self._renumber(name, value, self.order), gpu, dtype)
                          for name, value in params.items()})
        self.mask_dtype = mask_dtype(n_masks, [self.arrays[name].shape for layer in layers for name, _ in layer.inputs],
                                     dtype)
        self._cache, self._networks = {}, {}
        self.use_mask(degrees, key=0)
        if one_mask:  # what the staircase needs: W ⊙ M = W (initialisation and loading may write)
            masks = self._masks_of(bool)
            for layer in layers:
                for (name, _), cond in zip(layer.inputs, layer.conds):
                    for weight in filter(None, (name, cond)):
                        self.arrays[weight] *= masks[name]

    # -- the layout ---------------------------------------------------------------------------

    def _to_data(self, name, array):
        """An array shaped like parameter `name`, from the layout to the data's numbering (a new array)."""
        return self._renumber(name, array, self.inverse)

    def get(self, name, orders=None):
        if orders is None:
            return self._to_data(name, self.arrays[name])
        places = [inverse[order] for inverse, order in zip(self.inverse, orders)]  # where each unit is kept
        if all(np.array_equal(places[s], np.arange(len(places[s]))) for s in self.units[name] if s is not None):
            view = self.arrays[name].view()
            if isinstance(view, np.ndarray):
                view.flags.writeable = False
            return view
        return self._renumber(name, self.arrays[name], places)

    def _from_data(self, name, array):
        return self._renumber(name, array, self.order)

    # -- the mask -----------------------------------------------------------------------------

    def use_mask(self, degrees, key=None):
        """Work under the mask these degrees give (per source, in the data's numbering). key: the
        mask's index in the cycle, under which its masks are kept; None for an ordering from outside."""
        self.degrees = [np.asarray(d)[order] for d, order in zip(degrees, self.order)]  # in the layout
        self.key = key
        self._current_masks = self._cache.get(key)  # built when a dense product first needs them

    def _weight_degrees(self, degrees):
        """(name, degrees of its rows' units, degrees of its columns' units, strict) per masked weight."""
        for index, layer in enumerate(self.layers):
            own = degrees[index + 1] if layer.hidden else degrees[0]
            for name, source in layer.inputs:
                yield name, own, degrees[source], not layer.hidden

    def _masks_of(self, dtype):
        return {name: staircase.dense_mask(rows, columns, strict, self.xp, dtype)
                for name, rows, columns, strict in self._weight_degrees(self.degrees)}

    def layout_masks(self):
        """The current mask of every masked weight, in the layout (a cycle's are kept when they fit)."""
        if self._current_masks is None:
            self._current_masks = self._masks_of(self.mask_dtype)
            mask_bytes = sum(mask.nbytes for mask in self._current_masks.values())
            if self.key is not None and self.key < self.n_masks and self.n_masks * mask_bytes <= MASK_CACHE_BYTES:
                self._cache[self.key] = self._current_masks
        return self._current_masks

    # -- the products -------------------------------------------------------------------------

    def _staircase_network(self, weights, degrees, input_order):
        """A staircase.Network over weights sorted by the given (nondecreasing) degrees."""
        products = {name: staircase.Staircase(staircase.prefixes(rows, columns, strict), len(columns),
                                              self.xp, self.dtype)
                    for name, rows, columns, strict in self._weight_degrees(degrees)}
        return staircase.Network(self.layers, weights, products, self.activation, input_order, self.xp, self.dtype)

    def _own_staircase(self):
        """The layout's own staircase, over the parameters themselves (made once)."""
        if "own" not in self._networks:
            self._networks["own"] = self._staircase_network(self.arrays, self.degrees, self.order[0])
        return self._networks["own"]

    @property
    def under_layout_mask(self):
        """Whether the current mask is the one the layout sorts by: a one-mask model under its mask."""
        return self.one_mask and self.key is not None

    def sorted_network(self):
        """The staircase of the current mask: the layout's own (a one-mask model under its mask), or
        over a copy of the weights sorted by the current degrees, its removed weights zeroed (made
        anew at every call: it is only as fresh as the weights it copied)."""
        if self.under_layout_mask:
            return self._own_staircase()
        orders = [np.argsort(d, kind="stable") for d in self.degrees]
        weights = {name: self._renumber(name, value, orders) for name, value in self.arrays.items()}
        network = self._staircase_network(weights, [d[o] for d, o in zip(self.degrees, orders)], self.order[0][orders[0]])
        return network.zero_removed_weights()

    def dense_network(self):
        """Dense products with the current masks, in the layout, over the parameters; its buffers
        (W ⊙ M, activations, gradients) outlive the mask."""
        products = {name: staircase.DenseMask(mask) for name, mask in self.layout_masks().items()}
        if "dense" not in self._networks:
            self._networks["dense"] = staircase.Network(self.layers, self.arrays, products, self.activation,
                                                        self.order[0], self.xp, self.dtype)
        else:
            self._networks["dense"].use(products, self.order[0])
        return self._networks["dense"]

    def network(self, n_examples=None):
        """The products for one call under the current mask (module docstring): n_examples, the
        examples an evaluation holds; None for a training step."""
        if self.staircase_blocks and self.under_layout_mask:
            own = self._own_staircase()
            if own.removed_weights_are_zero():
                return own
        elif self.staircase_blocks and n_examples is not None and n_examples >= SORTED_COPY_PAYS_FROM:
            return self.sorted_network()
        return self.dense_network()

    # -- what made.py calls -------------------------------------------------------------------

    def forward(self, x):
        """Logits (N, D) in the data's column order (a new array). x: (N, D) on the device, in dtype."""
        network = self.network(x.shape[0])
        logits = self.xp.empty(x.shape, dtype=self.dtype)
        logits[:, network.input_order] = network.forward(x)
        return logits

    def loss_and_grads(self, x):
        """Mean NLL of a minibatch and its Gradients (over the network's buffers)."""
        network = self.network()
        loss, buffers = network.loss_and_grads(x)
        return loss, Gradients(self, buffers, network.regions)

    def log_prob(self, x, batch_size, after_batch=None, variables=None):
        """log p(x) (N,) under the current mask, batch by batch; after_batch() is called after each.
        variables: (D,) booleans in the data's numbering, to sum only their conditionals."""
        network = self.network(x.shape[0])
        prepared = network.prepare()  # once per mask, for all its batches
        columns = None if variables is None else self.xp.asarray(np.flatnonzero(
            np.asarray(variables)[backend.to_host(network.input_order)]))  # their places in the network's order
        result = self.xp.empty(x.shape[0], dtype=self.dtype)
        for start in range(0, x.shape[0], batch_size):
            result[start:start + batch_size] = network.log_prob(x[start:start + batch_size], prepared, columns)
            if after_batch is not None:
                after_batch()
        network.drop_buffers()  # (memory: training's next step makes its own small ones again)
        return result
