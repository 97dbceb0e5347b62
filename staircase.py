"""The CPU engine's products: MADE's masked products computed only where the masks are nonzero.

Read made.py first: there every layer multiplies by W ⊙ M with the whole of W, and about half of
every mask is zero, so half of every product is spent multiplying zeros. This file computes the
same numbers without them (the tests hold it equal to made.py's dense reference); engine.py
decides when to use it.

Sort the units of every layer by degree (the inputs by their position in the ordering, each hidden
layer's units by m(k)). Then row i of every mask is 1 on a prefix of the columns and 0 after it,
and the prefixes grow down the rows: the mask is a staircase.
    hidden layer l:  prefix[k] = #{j : m_{l−1}(j) ≤ m_l(k)}     (eq. 12)
    output layer:    prefix[d] = #{k : m_L(k) < m(d)}           (eq. 13; the direct weights: d)
Cut the rows into a few blocks. Block r (rows r0…r1−1) needs only the columns before
width_r = prefix[r1 − 1], so each product becomes a few dense products of sub-blocks:
    forward          y[:, r0:r1]    = x[:, :width_r] · W[r0:r1, :width_r]ᵀ
    weight gradient  ∂W[r0:r1, :width_r] = g[:, r0:r1]ᵀ · x[:, :width_r]   (then ⊙ M on the edge)
    input gradient   ∂x[:, c0:c1]   = g[:, r0:] · W[r0:, c0:c1]   for the columns c0…c1−1 between
                     two blocks' widths (width_{r−1} and width_r): the blocks above r end before c0
A block's top rows end before width_r: that triangle-like "edge" holds weights the mask removes,
and the products read them. So they must be zero in the array the products multiply: the engine
keeps them zero in a one-mask model's own weights (and checks, before every use, by reading the
edges: removed_are_zero) and sets them to zero in the sorted copies it makes (zero_removed). The
products never write the weights. Everything right of width_r is never read or written, and the
optimizers never update it. With B blocks the products cost about (1 + 1/B)/2 of the dense ones;
B grows with the layer's size (a product of few rows runs below the machine's speed).

Two products share one interface (prepare, forward, backward_input, backward_weight and the
mask-conditioning pair), so Network below is written once:
    Staircase  the blocks above, for weights in the sorted layout of their mask;
    DenseMask  W ⊙ M in full, for any layout (training over a cycle of masks, where sorting the
               weights again for every minibatch would cost more than the blocks save; evaluating
               fewer examples than a sorted copy pays for; and everything on a GPU, where a
               product costs its launch and blocks only add launches).

Network runs the model's layers over one set of products with buffers allocated once per batch
size: a training step allocates nothing of a weight's size. Its gradients live in buffers too and
are valid until its next call. Its loss is autograd.bernoulli_nll and its gradient, arranged for
speed (one exponential per logit, the logarithms folded): the functions just below.
"""
from typing import NamedTuple

import numpy as np

from autograd import ACTIVATIONS
from backend import module_of

ROWS_PER_BLOCK = 128   # a block smaller than this runs below the speed of a matrix product
MAX_BLOCKS = 16        # beyond this, the products saved no longer pay for the extra calls
LONG_ROWS = 2048       # rows shorter than this update faster whole than cut at the block's width


# ----------------------------------------------------------------------------------------------
# The loss, arranged for speed: autograd.bernoulli_nll and bernoulli_nll_backward, with buffers.


def bernoulli_nll_into(logits, x, scratch):
    """autograd.bernoulli_nll with its terms in a buffer, for evaluation (the same sum, arranged for
    speed: see _nll_without_logs and sum_log).  scratch: an array of logits' shape."""
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


def bernoulli_nll_and_backward(logits, x, grad=None, scratch=None):
    """autograd.bernoulli_nll and bernoulli_nll_backward at once, as a training step needs them,
    from one e = e^{−|a|}:
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


# ----------------------------------------------------------------------------------------------
# The products


def prefixes(degrees_out, degrees_in, strict):
    """prefix[i] = #{j : degrees_in[j] ≤ degrees_out[i]} (< when strict), for sorted degrees_in.
    The staircase of a mask M[i, j] = 1[degrees_out[i] ≥ degrees_in[j]] (> when strict)."""
    return np.searchsorted(degrees_in, degrees_out, side="left" if strict else "right")


def dense_mask(degrees_out, degrees_in, strict, xp, dtype):
    """The same mask in full, for units in any order: M[i, j] = 1[degrees_out[i] ≥ degrees_in[j]]
    (> when strict), made.mask_matrices' comparison. (n_out,), (n_in,) → (n_out, n_in)."""
    degrees_out, degrees_in = xp.asarray(degrees_out)[:, None], xp.asarray(degrees_in)[None, :]
    keep = degrees_out > degrees_in if strict else degrees_out >= degrees_in
    return keep.astype(dtype, copy=False)


def block_edges(n, rows_per_block=ROWS_PER_BLOCK, max_blocks=MAX_BLOCKS):
    """Boundaries 0 = e_0 < … < e_B = n of B nearly equal blocks, B = clip(n / rows_per_block, 1, max_blocks)."""
    n_blocks = int(min(max_blocks, max(1, round(n / rows_per_block))))
    return np.linspace(0, n, n_blocks + 1).round().astype(int)


class RowBlock(NamedTuple):
    """Rows first … end−1 of a staircase. They need only the columns before `width` (the last
    row's prefix). Between `edge_start` (the first row's prefix) and `width` lies the edge, where
    the rows keep prefixes of different lengths: there `kept` is 1 where the mask keeps a weight
    and `removed` is 1 where it removes one, both (end − first, width − edge_start), and `scratch`
    is a buffer of that shape for removed_are_zero."""
    first: int
    end: int
    edge_start: int
    width: int
    kept: object
    removed: object
    scratch: object

    def edge(self, weight):
        """The part of a weight (or its gradient) that lies on this block's edge."""
        return weight[self.first:self.end, self.edge_start:self.width]


class ColumnBlock(NamedTuple):
    """Columns first … end−1, fed only by the row blocks from row `first_row` on (the input gradient's blocks)."""
    first: int
    end: int
    first_row: int


class Staircase:
    """A masked weight (n_out, n_in) in sorted layout whose mask keeps row i's columns [0, prefix[i]).

    prefix: (n_out,) nondecreasing.
    """

    needs_buffer = False  # it multiplies the weight itself, not a masked copy

    def __init__(self, prefix, n_in, xp, dtype):
        prefix = np.asarray(prefix, dtype=np.int64)
        if np.any(np.diff(prefix) < 0) or prefix.min(initial=0) < 0 or prefix.max(initial=0) > n_in:
            raise ValueError("a staircase needs nondecreasing prefixes within the columns")
        self.n_out, self.n_in = len(prefix), n_in
        self.row_blocks, edges = [], block_edges(self.n_out)
        for first, end in zip(edges[:-1], edges[1:]):
            edge_start, width = int(prefix[first]), int(prefix[end - 1])
            kept = np.arange(edge_start, width)[None, :] < prefix[first:end, None]
            self.row_blocks.append(RowBlock(int(first), int(end), edge_start, width, xp.asarray(kept.astype(dtype)),
                                            xp.asarray((~kept).astype(dtype)), xp.empty(kept.shape, dtype=dtype)))
        # Cut the columns where the row blocks' widths change: the columns between two widths
        # meet only the row blocks from the wider one on, and lie within each one's width.
        self.column_blocks, first = [], 0
        for block in self.row_blocks:
            if block.width > first:
                self.column_blocks.append(ColumnBlock(first, block.width, block.first))
                first = block.width
        self.unseen = first  # columns from here on feed no row: their input gradient is zero

    def removed_are_zero(self, weight):
        """Whether every weight the mask removes on the blocks' edges is zero in `weight`, which the
        products can then multiply as it is. Reads the edges (about 1/B of the weight), writes nothing."""
        for block in self.row_blocks:
            if block.removed.size:
                module_of(weight).multiply(block.edge(weight), block.removed, out=block.scratch)
                if block.scratch.any():
                    return False
        return True

    def zero_removed(self, weight):
        """Set the removed weights on the edges to zero, in an array the engine owns (a sorted copy)."""
        for block in self.row_blocks:
            block.edge(weight)[...] *= block.kept
        return weight

    def prepare(self, weight, buffer=None):
        """The array the products use: the weight itself (its removed weights must be zero)."""
        return weight

    def forward(self, weight, x, out):
        """out = x (W ⊙ M)ᵀ, block by block.  x: (N, n_in), out: (N, n_out)."""
        xp = module_of(out)
        for block in self.row_blocks:
            rows = slice(block.first, block.end)
            if block.width == 0:
                out[:, rows] = 0
            else:
                xp.matmul(x[:, :block.width], weight[rows, :block.width].T, out=out[:, rows])
        return out

    def backward_input(self, weight, grad_out, out):
        """out = grad_out (W ⊙ M), by blocks of columns.  grad_out: (N, n_out), out: (N, n_in)."""
        xp = module_of(out)
        for block in self.column_blocks:
            columns = slice(block.first, block.end)
            xp.matmul(grad_out[:, block.first_row:], weight[block.first_row:, columns], out=out[:, columns])
        out[:, self.unseen:] = 0
        return out

    def backward_weight(self, grad_out, x, out):
        """out = (grad_outᵀ x) ⊙ M on the blocks; the rest of out is never written (it stays zero)."""
        xp = module_of(out)
        for block in self.row_blocks:
            if block.width:
                rows = slice(block.first, block.end)
                xp.matmul(grad_out[:, rows].T, x[:, :block.width], out=out[rows, :block.width])
                block.edge(out)[...] *= block.kept
        return out

    def conditioning(self, cond, buffer=None):
        """Σ_j U_ij M_ij per row (U's removed entries zero, like W's).  (n_out, n_in) → (n_out,)."""
        result = module_of(cond).zeros(self.n_out, dtype=cond.dtype)
        for block in self.row_blocks:
            if block.width:
                cond[block.first:block.end, :block.width].sum(axis=1, out=result[block.first:block.end])
        return result

    def conditioning_backward(self, grad_bias, out):
        """∂L/∂U = grad_bias_i M_ij on the blocks.  grad_bias: (n_out,)."""
        for block in self.row_blocks:
            out[block.first:block.end, :block.width] = grad_bias[block.first:block.end, None]
            block.edge(out)[...] *= block.kept
        return out

    def regions(self):
        """Index expressions of the blocks: the only parts of the weight a gradient can change.
        An update over a strided block costs two to three and a half times as much per element as
        one over whole rows (NumPy's loops run along rows; BENCHMARKS.md), so short rows are given
        whole, as one band from the first row that has any weight."""
        live = [block for block in self.row_blocks if block.width]
        if self.n_in < LONG_ROWS:
            return [(slice(live[0].first, self.n_out), slice(None))] if live else []
        return [(slice(block.first, block.end), slice(0, block.width)) for block in live]

    def multiply_adds(self, n):
        """Multiply-adds of one forward product for n examples (the same for each backward one)."""
        return n * sum((block.end - block.first) * block.width for block in self.row_blocks)


class DenseMask:
    """A masked weight multiplied in full: W ⊙ M recomputed into a buffer at every prepare. The
    methods are Staircase's, computed the dense way (made.py's reference, with buffers)."""

    needs_buffer = True

    def __init__(self, mask):
        self.mask = mask

    def removed_are_zero(self, weight):
        return True  # it multiplies W ⊙ M, whatever W holds where M is zero

    def zero_removed(self, weight):
        return weight

    def prepare(self, weight, buffer):
        return module_of(weight).multiply(weight, self.mask, out=buffer)

    def forward(self, masked, x, out):
        return module_of(out).matmul(x, masked.T, out=out)

    def backward_input(self, masked, grad_out, out):
        return module_of(out).matmul(grad_out, masked, out=out)

    def backward_weight(self, grad_out, x, out):
        module_of(out).matmul(grad_out.T, x, out=out)
        out *= self.mask
        return out

    def conditioning(self, cond, buffer):
        return module_of(cond).multiply(cond, self.mask, out=buffer).sum(axis=1)

    def conditioning_backward(self, grad_bias, out):
        return module_of(out).multiply(grad_bias[:, None], self.mask, out=out)

    def regions(self):
        return [Ellipsis]

    def multiply_adds(self, n):
        return n * self.mask.size


# ----------------------------------------------------------------------------------------------
# The network


class Network:
    """The model's layers (made.Layer) over weights in one layout, with a product per masked weight.

    weights: name → array (the model's parameters themselves, or a sorted copy for evaluation);
    products: masked weight name → Staircase or DenseMask; input_order: x[:, input_order] is the
    input in this layout (the logits come out in the same order).
    """

    def __init__(self, layers, weights, products, activation, input_order, xp, dtype):
        self.layers, self.weights, self.products = layers, weights, products
        self.activate, self.activation_backward = ACTIVATIONS[activation]
        self.input_order = xp.asarray(input_order)
        self.xp, self.dtype = xp, dtype
        self.masked = {}  # the buffers of W ⊙ M (and U ⊙ M) for the products that need them
        self._buffers, self._grads = {}, None
        self.use(products, input_order)

    def use(self, products, input_order):
        """Change the mask: new products (and input order) over the same weights and buffers."""
        self.products, self.input_order = products, self.xp.asarray(input_order)
        self.regions = {}  # what each gradient can reach: the products' regions (a U shares its W's)
        for layer in self.layers:
            for (name, _), cond in zip(layer.inputs, layer.conds):
                self.regions[name] = products[name].regions()
                if cond is not None:
                    self.regions[cond] = self.regions[name]
                for weight in (name, cond):
                    if weight is not None and products[name].needs_buffer and weight not in self.masked:
                        self.masked[weight] = self.xp.empty_like(self.weights[weight])

    def _buffers_for(self, n, backward=False):
        """Activations and pre-activations for a batch of n (and, for backward, their gradients),
        made once per n."""
        if n not in self._buffers:
            if len(self._buffers) > 2:   # a caller cycling through batch sizes: keep memory bounded
                self._buffers.clear()
            sizes = [self.layers[-1].size] + [layer.size for layer in self.layers[:-1]]  # [D, H_1, …]
            two_inputs = len(self.layers[-1].inputs) > 1  # the direct connection's product needs a buffer
            self._buffers[n] = dict(sizes=sizes, activations=self._empty(n, sizes),  # [x, h_1, …, h_L]
                                    pre=self._empty(n, sizes[1:]), logits=self._empty(n, sizes[:1])[0],
                                    extra=self._empty(n, sizes[:1])[0] if two_inputs else None,
                                    scratch=self._empty(n, sizes[:1])[0])            # the loss's terms
        buffers = self._buffers[n]
        if backward and "grad_h" not in buffers:
            sizes = buffers["sizes"]
            buffers.update(grad_h=[None] + self._empty(n, sizes[1:]),              # ∂L/∂h_l
                           grad_z=self._empty(n, sizes[1:] + sizes[:1]))           # ∂L/∂z_l, then ∂L/∂a
        return buffers

    def drop_buffers(self):
        """Let the batch buffers go (an evaluation's large batches need not outlive it)."""
        self._buffers.clear()

    def _empty(self, n, sizes):
        return [self.xp.empty((n, size), dtype=self.dtype) for size in sizes]

    def layer_bias(self, layer):
        """b + Σ_i 1·(U_i ⊙ M_i)ᵀ (a new (n_out,) vector only when there is mask conditioning)."""
        bias = self.weights[layer.bias]
        for (name, _), cond in zip(layer.inputs, layer.conds):
            if cond is not None:
                bias = bias + self.products[name].conditioning(self.weights[cond], self.masked.get(cond))
        return bias

    def forward(self, x, prepared=None):
        """Logits (N, D) in this layout, in a buffer valid until the next call. x: (N, D) in the
        data's own column order. prepared: name → prepare()d weight (made when None)."""
        if prepared is None:
            prepared = self.prepare()
        buffers = self._buffers_for(x.shape[0])
        activations = buffers["activations"]
        self.xp.take(x, self.input_order, axis=1, out=activations[0])
        for index, layer in enumerate(self.layers):
            z = buffers["pre"][index] if layer.hidden else buffers["logits"]
            (name, source), *others = layer.inputs
            self.products[name].forward(prepared[name], activations[source], z)
            for name, source in others:  # the direct connection into the output layer
                z += self.products[name].forward(prepared[name], activations[source], buffers["extra"])
            z += self.layer_bias(layer)
            if layer.hidden:
                self.activate(z, out=activations[index + 1])
        return buffers["logits"]

    def prepare(self):
        """name → the array each product multiplies by (once per step, shared by its products)."""
        return {name: product.prepare(self.weights[name], self.masked.get(name))
                for name, product in self.products.items()}

    def _weights_and_products(self):
        """(product, weight) for every masked weight, the mask-conditioning U's included."""
        for layer in self.layers:
            for (name, _), cond in zip(layer.inputs, layer.conds):
                yield self.products[name], self.weights[name]
                if cond is not None:
                    yield self.products[name], self.weights[cond]

    def removed_weights_are_zero(self):
        """Whether the products can multiply the weights as they are (Staircase.removed_are_zero)."""
        return all(product.removed_are_zero(weight) for product, weight in self._weights_and_products())

    def zero_removed_weights(self):
        """Make them so, in weights the engine owns (a sorted copy); returns the network."""
        for product, weight in self._weights_and_products():
            product.zero_removed(weight)
        return self

    def log_prob(self, x, prepared=None, columns=None):
        """log p(x) (N,) of a batch: Σ_d log p(x_d | x_<d), over all the outputs or over the given
        columns of this layout. prepared: as for forward (prepare() once for many batches)."""
        logits = self.forward(x, prepared)
        buffers = self._buffers_for(x.shape[0])
        if columns is None:
            return -bernoulli_nll_into(logits, buffers["activations"][0], buffers["scratch"])
        return -bernoulli_nll_into(logits[:, columns], buffers["activations"][0][:, columns],
                                   buffers["scratch"][:, columns])

    def loss_and_grads(self, x):
        """Mean NLL of a minibatch (0-d array) and the gradient buffers keyed like the weights, in
        this layout (self.regions says where each can be nonzero): made.backward_pass, product by product."""
        prepared = self.prepare()
        logits = self.forward(x, prepared)
        buffers = self._buffers_for(x.shape[0], backward=True)
        activations, grads = buffers["activations"], self._gradients()
        nll, grad_z = bernoulli_nll_and_backward(logits, activations[0], buffers["grad_z"][-1], buffers["scratch"])
        grad_z /= x.shape[0]
        for index in reversed(range(len(self.layers))):
            layer = self.layers[index]
            if layer.hidden:
                grad_z = self.activation_backward(buffers["grad_h"][index + 1], buffers["pre"][index],
                                                  activations[index + 1], out=buffers["grad_z"][index])
            grad_z.sum(axis=0, out=grads[layer.bias])
            for (name, source), cond in zip(layer.inputs, layer.conds):
                product = self.products[name]
                product.backward_weight(grad_z, activations[source], grads[name])
                if source > 0:  # each hidden layer feeds exactly one layer: the one above it
                    product.backward_input(prepared[name], grad_z, buffers["grad_h"][source])
                if cond is not None:
                    product.conditioning_backward(grads[layer.bias], grads[cond])
        return nll.mean(), grads

    def _gradients(self):
        """The gradient buffers (zero where never written), keyed like the weights."""
        if self._grads is None:
            self._grads = {name: self.xp.zeros_like(value) for name, value in self.weights.items()}
        return self._grads
