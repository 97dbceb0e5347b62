"""The fast path: MADE's masked products computed only where the masks are nonzero.

Read made.py first: there every layer multiplies by W ⊙ M with the whole of W, and about half of
every mask is zero, so half of every product is spent multiplying zeros. This file computes the
same numbers without them (the tests hold it equal to made.py's dense reference).

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
A block's top rows end before width_r: that triangle-like "edge" holds weights the mask removes.
prepare sets them to zero in W itself before the products (they can never matter; whatever was
written there, the model stays autoregressive; and it costs a pass over the edges only, about 1/B
of the weight), and their gradient is masked to zero there. Everything right of width_r is never
read or written, and the optimizers never update it. With B blocks the products cost about
(1 + 1/B)/2 of the dense ones; B grows with the layer's size (a product of few rows runs below
the machine's speed).

Two products share one interface (prepare, forward, backward_input, backward_weight and the
mask-conditioning pair), so Network below is written once:
    Staircase  the blocks above, for weights in the sorted layout of their mask;
    DenseMask  W ⊙ M in full, for any layout (training over a cycle of masks, where sorting the
               weights again for every minibatch would cost more than the blocks save; evaluating
               fewer examples than a sorted copy pays for, made.SORTED_COPY_PAYS_FROM; and
               everything on a GPU, where a product costs its launch and blocks only add launches).

Network runs the model's layers over one set of products with buffers allocated once per batch
size: a training step allocates nothing of a weight's size. Its gradients live in buffers too and
are valid until its next call.
"""
import numpy as np

from autograd import ACTIVATIONS, bernoulli_nll_and_backward, bernoulli_nll_into
from backend import module_of

ROWS_PER_BLOCK = 128   # a block smaller than this runs below the speed of a matrix product
MAX_BLOCKS = 16        # beyond this, the products saved no longer pay for the extra calls
LONG_ROWS = 2048       # rows shorter than this update faster whole than cut at the block's width


def prefixes(degrees_out, degrees_in, strict):
    """prefix[i] = #{j : degrees_in[j] ≤ degrees_out[i]} (< when strict), for sorted degrees_in.
    The staircase of a mask M[i, j] = 1[degrees_out[i] ≥ degrees_in[j]] (> when strict)."""
    return np.searchsorted(degrees_in, degrees_out, side="left" if strict else "right")


def block_edges(n, rows_per_block=ROWS_PER_BLOCK, max_blocks=MAX_BLOCKS):
    """Boundaries 0 = e_0 < … < e_B = n of B nearly equal blocks, B = clip(n / rows_per_block, 1, max_blocks)."""
    n_blocks = int(min(max_blocks, max(1, round(n / rows_per_block))))
    return np.linspace(0, n, n_blocks + 1).round().astype(int)


class Staircase:
    """A masked weight (n_out, n_in) in sorted layout whose mask keeps row i's columns [0, prefix[i]).

    prefix: (n_out,) nondecreasing.
    """

    def __init__(self, prefix, n_in, xp, dtype):
        prefix = np.asarray(prefix, dtype=np.int64)
        if np.any(np.diff(prefix) < 0) or prefix.min(initial=0) < 0 or prefix.max(initial=0) > n_in:
            raise ValueError("a staircase needs nondecreasing prefixes within the columns")
        self.n_out, self.n_in = len(prefix), n_in
        edges = block_edges(self.n_out)
        # row blocks: (r0, r1, start, width, edge mask (r1 − r0, width − start) of the staircase's edge)
        self.row_blocks = []
        for r0, r1 in zip(edges[:-1], edges[1:]):
            start, width = int(prefix[r0]), int(prefix[r1 - 1])
            edge = (np.arange(start, width)[None, :] < prefix[r0:r1, None]).astype(dtype)
            self.row_blocks.append((r0, r1, start, width, xp.asarray(edge)))
        # column blocks for the input gradient, cut where the row blocks' widths change:
        # (c0, c1, first row): columns c0…c1−1 meet only the row blocks from `first` on, and lie
        # within each one's width, so what they read there is kept or zeroed edge
        self.column_blocks, c0 = [], 0
        for r0, _, _, width, _ in self.row_blocks:
            if width > c0:
                self.column_blocks.append((c0, width, r0))
                c0 = width
        self.unseen = c0  # columns from here on feed no row: their input gradient is zero

    needs_buffer = False

    def prepare(self, weight, buffer=None):
        """The array the products use: the weight itself, its edges' removed entries set to zero."""
        for r0, r1, start, width, edge in self.row_blocks:
            weight[r0:r1, start:width] *= edge
        return weight

    def forward(self, weight, x, out):
        """out = x (W ⊙ M)ᵀ, block by block.  x: (N, n_in), out: (N, n_out)."""
        xp = module_of(out)
        for r0, r1, _, width, _ in self.row_blocks:
            if width == 0:
                out[:, r0:r1] = 0
            else:
                xp.matmul(x[:, :width], weight[r0:r1, :width].T, out=out[:, r0:r1])
        return out

    def backward_input(self, weight, grad_out, out):
        """out = grad_out (W ⊙ M), by blocks of columns.  grad_out: (N, n_out), out: (N, n_in)."""
        xp = module_of(out)
        for c0, c1, first in self.column_blocks:
            xp.matmul(grad_out[:, first:], weight[first:, c0:c1], out=out[:, c0:c1])
        out[:, self.unseen:] = 0
        return out

    def backward_weight(self, grad_out, x, out):
        """out = (grad_outᵀ x) ⊙ M on the blocks; the rest of out is never written (it stays zero)."""
        xp = module_of(out)
        for r0, r1, start, width, edge in self.row_blocks:
            if width:
                xp.matmul(grad_out[:, r0:r1].T, x[:, :width], out=out[r0:r1, :width])
                out[r0:r1, start:width] *= edge
        return out

    def conditioning(self, cond, buffer=None):
        """Σ_j U_ij M_ij per row (U prepare()d like W).  (n_out, n_in) → (n_out,)."""
        xp = module_of(cond)
        self.prepare(cond)
        result = xp.zeros(self.n_out, dtype=cond.dtype)
        for r0, r1, _, width, _ in self.row_blocks:
            if width:
                cond[r0:r1, :width].sum(axis=1, out=result[r0:r1])
        return result

    def conditioning_backward(self, grad_bias, out):
        """∂L/∂U = grad_bias_i M_ij on the blocks.  grad_bias: (n_out,)."""
        for r0, r1, start, width, edge in self.row_blocks:
            out[r0:r1, :width] = grad_bias[r0:r1, None]
            out[r0:r1, start:width] *= edge
        return out

    def regions(self):
        """Index expressions of the blocks: the only parts of the weight a gradient can change.
        An update over a strided block costs two to three and a half times as much per element as
        one over whole rows (NumPy's loops run along rows; BENCHMARKS.md), so short rows are given
        whole, as one band from the first row that has any weight."""
        live = [(r0, r1, width) for r0, r1, _, width, _ in self.row_blocks if width]
        if self.n_in < LONG_ROWS:
            return [(slice(live[0][0], self.n_out), slice(None))] if live else []
        return [(slice(r0, r1), slice(0, width)) for r0, r1, width in live]

    def multiply_adds(self, n):
        """Multiply-adds of one forward product for n examples (the same for each backward one)."""
        return n * sum((r1 - r0) * width for r0, r1, _, width, _ in self.row_blocks)


class DenseMask:
    """A masked weight multiplied in full: W ⊙ M recomputed into a buffer at every prepare. The
    methods are Staircase's, computed the dense way (made.py's reference, with buffers)."""

    needs_buffer = True

    def __init__(self, mask):
        self.mask = mask

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


class Gradients(dict):
    """Gradients keyed like the parameters; .regions[name] lists the parts of each that can be
    nonzero (an optimizer may skip the rest: its gradient there is zero at every step)."""

    def __init__(self, arrays, regions):
        super().__init__(arrays)
        self.regions = regions


class Network:
    """The model's layers (made.Layer) over weights in one layout, with a product per masked weight.

    weights: name → array (the model's parameters themselves, or a sorted copy for evaluation);
    products: masked weight name → Staircase or DenseMask; input_order: x[:, input_order] is the
    input in this layout (the logits come out in the same order); degrees: the sorted degrees of
    each source's units, when the layout is a mask's sorted one (the fast sampler reads them).
    """

    def __init__(self, layers, weights, products, activation, input_order, xp, dtype, degrees=None):
        self.layers, self.weights, self.products, self.degrees = layers, weights, products, degrees
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

    def log_prob(self, x, columns=slice(None), prepared=None):
        """log p(x) (N,) of a batch: the sum of log p(x_d | x_<d) over the given columns of this
        layout (all of them by default; in a mask's sorted layout a slice is a range of positions).
        prepared: as for forward (prepare() once for many batches under one mask)."""
        logits = self.forward(x, prepared)
        buffers = self._buffers_for(x.shape[0])
        return -bernoulli_nll_into(logits[:, columns], buffers["activations"][0][:, columns],
                                   buffers["scratch"][:, columns])

    def loss_and_grads(self, x):
        """Mean NLL of a minibatch (0-d array) and Gradients keyed like the weights, in this layout:
        the backward pass of made.MADE.reference_loss_and_grads, product by product."""
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
        """The gradient buffers (zero where never written), with the products' regions."""
        if self._grads is None:
            self._grads = {name: self.xp.zeros_like(value) for name, value in self.weights.items()}
        return Gradients(self._grads, self.regions)
