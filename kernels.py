"""The GPU engine: a training step of MADE in a few fused CUDA kernels (CuPy).

engine.Engine runs on a GPU as it runs on the CPU, one array operation after another, and on a
GPU every operation is a kernel launch: about 73 for a training step at 784-500-784, each costing
its launch more than its work, so the GPU idles while Python launches. This file computes the same
numbers (the tests hold them equal) in as few launches as the step allows, with cuBLAS for the
matrix products and a kernel of its own for everything between them:

  masked_weight        W ⊙ M per masked weight, M made from the two degree vectors inside the
                       kernel: no mask is stored, none is rebuilt (784-8000-784 included)
  (cuBLAS)             z = h (W ⊙ M)ᵀ, and backwards ∂L/∂W = gᵀh, ∂L/∂h = g (W ⊙ M)
  bias_activation      z ← z + b, h = f(z), in one pass
  bernoulli_rows       a = z + b; −log p(x_d | x_<d) summed per example; ∂L/∂a = (σ(a) − x)/N
  activation_backward  ∂L/∂z = f'(z) ∂L/∂h
  (CuPy)               ∂L/∂b = Σ_n ∂L/∂z and the loss's mean: one reduction each
  <rule>_step          the optimizer's rule over every parameter at once: parameters, gradients
                       and the rule's state are views of one flat buffer each; the mask is folded
                       into the update (∂L/∂W stays unmasked until then: an optimizer sees 0 where
                       the mask removes a weight, as engine.Engine's masked gradients give it)

So a step at 784-500-784 is 14 launches (masked_weight twice, 5 cuBLAS products, 2 bias sums,
the loss's mean, one each of bias_activation, bernoulli_rows, activation_backward, adagrad_step),
17 in train.py's epoch (its minibatch gather and its running loss sum, total += loss · n); an
evaluation batch is 4 (bench.py --gpu-standin counts them). Orderings, degrees and the
cycle's degree vectors stay on the device (a mask of the cycle is copied over once), so a step
copies nothing between host and device (but with --masks 0, a fresh mask every minibatch drawn
on the host, whose degrees are one small copy a step). The weights keep the data's numbering here: dense
products do not care how units are numbered, so nothing is sorted and nothing gathered.

Every kernel has a NumPy twin, the same operation in NumPy. On a real GPU the kernels run (CUDA C
below, compiled by NVRTC through cupy.RawModule); on standin.py's NumPy stand-in the twins run, one
counted launch each. tests/test_kernels.py holds the twins equal to engine.Engine (float32 and
float64, every rule, one mask and a cycle), compiles the CUDA source with NVRTC where it is
installed, and runs the source's per-element functions, compiled for the host by the system's
C++ compiler, against the twins. Set MADE_GPU_UNFUSED=1 to run engine.Engine on the GPU instead
(the unfused path, for comparison).
"""
import os
import types

import numpy as np

import backend
import fast_updates
from autograd import ACTIVATIONS
from engine import Engine, Gradients, Store, parameter_units

THREADS = 256          # threads per block (a power of two: bernoulli_rows halves it to reduce)
MAX_BLOCKS = 8192      # a grid-stride loop covers the rest: more blocks than this only queue
ALIGN = 64             # each parameter's place in the flat buffer starts at a multiple of 64 elements
ACTIVATION_CODES = {"relu": 0, "tanh": 1, "sigmoid": 2, "softplus": 3}
ACTIVATION_NAMES = {code: name for name, code in ACTIVATION_CODES.items()}
RULE_KERNELS = {"SGD": "sgd_step", "AdaGrad": "adagrad_step", "AdaDelta": "adadelta_step", "Adam": "adam_step"}
NVRTC_OPTIONS = ("--std=c++14", "--fmad=false")  # no fused multiply-add: each operation rounds as NumPy's does


def fused():
    """Whether a model on the GPU uses this engine (unless MADE_GPU_UNFUSED is set to 1)."""
    return os.environ.get("MADE_GPU_UNFUSED", "0") in ("", "0")


def engine_class(gpu):
    """The engine a model uses: this file's FusedEngine on the GPU (engine.Engine there when
    MADE_GPU_UNFUSED=1), engine.Engine on the CPU. Both take the same arguments."""
    return FusedEngine if gpu and fused() else Engine


# ----------------------------------------------------------------------------------------------
# The CUDA source. ELEMENTS holds the arithmetic of one element, the part a host compiler can
# check too; KERNELS the loops over threads. `real` is float or double (cuda_source).

ELEMENTS = r"""
// M[i, j] = 1[m_out(i) >= m_in(j)] (kind 1, eq. 12), 1[m_out(i) > m_in(j)] (kind 2, eq. 13), 1 (kind 0)
DEVICE bool keeps(int kind, int degree_out, int degree_in) {
    return kind == 0 || (kind == 1 ? degree_out >= degree_in : degree_out > degree_in);
}

// autograd.ACTIVATIONS, forward: 0 relu, 1 tanh, 2 sigmoid, 3 softplus, written as autograd's are
DEVICE real activate(int code, real z) {
    real zero = 0, one = 1;
    if (code == 0) return z > zero ? z : zero;
    if (code == 1) return tanh(z);
    real tail = exp(-fabs(z));
    if (code == 2) return exp(z < zero ? z : zero) / (tail + one);
    return (z > zero ? z : zero) + log1p(tail);
}

// and backward: dL/dz from dL/dh, z and h = f(z)
DEVICE real activate_backward(int code, real grad_h, real z, real h) {
    real zero = 0, one = 1;
    if (code == 0) return grad_h * (h > zero ? one : zero);
    if (code == 1) return grad_h * (one - h * h);
    if (code == 2) return grad_h * ((one - h) * h);
    return grad_h * activate(2, z);
}

// -log p(x_d | x_<d) = softplus(a) - x a, and (its derivative) sigma(a) - x as
// staircase.bernoulli_nll_and_backward writes it: step(a) - x - sign(a) q, q = e / (1 + e), e = exp(-|a|)
DEVICE real bernoulli(real a, real x, real& grad) {
    real zero = 0, one = 1, two = 2;
    real e = exp(-fabs(a));
    real q = e / (e + one);
    real sign = a > zero ? one : (a < zero ? -one : zero);
    grad = ((sign + one) / two - x) - sign * q;
    return ((a > zero ? a : zero) - x * a) + log1p(e);
}

// The rules of fast_updates.py, operation for operation, on one element (g: its gradient)
DEVICE void sgd(real& theta, real g, real lr) {
    theta = theta - g * lr;
}

DEVICE void adagrad(real& theta, real g, real& sum_sq, real lr) {
    sum_sq = sum_sq + g * g;                                  // G + eps <- G + eps + g^2
    theta = theta - (g / sqrt(sum_sq)) * lr;                  // theta <- theta - lr g / sqrt(G + eps)
}

DEVICE void adadelta(real& theta, real g, real& mean_sq_grad, real& mean_sq_step,
                     real rho, real one_minus_rho, real eps, real lr) {
    mean_sq_grad = mean_sq_grad * rho + (g * g) * one_minus_rho;
    real step = (-sqrt(mean_sq_step + eps) / sqrt(mean_sq_grad + eps)) * g;
    mean_sq_step = mean_sq_step * rho + (step * step) * one_minus_rho;
    theta = theta + step * lr;
}

DEVICE void adam(real& theta, real g, real& m, real& v, real beta1, real one_minus_beta1, real beta2,
                 real one_minus_beta2, real bias2, real eps, real lr_over_bias1) {
    m = m * beta1 + g * one_minus_beta1;
    v = v * beta2 + (g * g) * one_minus_beta2;
    theta = theta - (m * lr_over_bias1) / (sqrt(v / bias2) + eps);
}

// The gradient a rule sees at element i of the flat buffer: dL/dtheta_i where the mask keeps theta_i,
// else 0; plus lambda theta_i on a weight (optim.Optimizer.decayed). False between parameters.
// A segment: {offset, size, columns, where its rows' degrees start, its columns', mask kind, decayed}.
DEVICE bool rule_gradient(const long long* segments, int n_segments, const int* degrees, long long i,
                          const real* grad, const real* theta, real weight_decay, real& g) {
    for (int s = 0; s < n_segments; ++s) {
        const long long* segment = segments + 7 * s;
        long long local = i - segment[0];
        if (local < 0 || local >= segment[1]) continue;
        long long row = local / segment[2], column = local - row * segment[2];
        bool kept = segment[5] == 0 ||
                    keeps((int)segment[5], degrees[segment[3] + row], degrees[segment[4] + column]);
        real zero = 0;
        g = kept ? grad[i] : zero;
        if (segment[6] && weight_decay != zero) g = theta[i] * weight_decay + g;
        return true;
    }
    return false;
}
"""

KERNELS = r"""
#define EACH(i, n) for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); \
                        i += (long long)blockDim.x * gridDim.x)

// out = W (.) M, M from the degrees; twin: masked_weight_twin
extern "C" __global__ void masked_weight(const real* weight, const int* degrees, long long rows_at,
        long long columns_at, int kind, long long rows, long long columns, real* out) {
    EACH(i, rows * columns) {
        long long row = i / columns;
        real zero = 0;
        out[i] = keeps(kind, degrees[rows_at + row], degrees[columns_at + i - row * columns]) ? weight[i] : zero;
    }
}

// z <- z + b, h = f(z); twin: bias_activation_twin
extern "C" __global__ void bias_activation(real* z, const real* bias, real* h, long long columns, long long n,
                                           int code) {
    EACH(i, n) {
        real value = z[i] + bias[i % columns];
        z[i] = value;
        h[i] = activate(code, value);
    }
}

// dL/dz = f'(z) dL/dh; twin: activation_backward_twin
extern "C" __global__ void activation_backward(const real* grad_h, const real* z, const real* h, real* out,
                                               long long n, int code) {
    EACH(i, n) out[i] = activate_backward(code, grad_h[i], z[i], h[i]);
}

// One block per example (grid-stride over them): its terms summed by the block, times `sign`, into
// rows_out[row]; only the columns where counted[d] != 0 when use_counted; the gradient / divisor into
// grad when want_grad. Twin: bernoulli_rows_twin
extern "C" __global__ void bernoulli_rows(const real* z, const real* bias, const real* x, const real* counted,
        int use_counted, real* grad, int want_grad, real divisor, real* rows_out, real sign,
        long long n_rows, long long columns) {
    extern __shared__ unsigned char shared[];
    real* partial = (real*)shared;
    for (long long row = blockIdx.x; row < n_rows; row += gridDim.x) {
        real sum = 0;
        for (long long d = threadIdx.x; d < columns; d += blockDim.x) {
            long long i = row * columns + d;
            real g;
            real term = bernoulli(z[i] + bias[d], x[i], g);
            if (want_grad) grad[i] = g / divisor;
            if (!use_counted || counted[d] != 0) sum += term;
        }
        partial[threadIdx.x] = sum;
        __syncthreads();
        for (int half = blockDim.x / 2; half > 0; half /= 2) {
            if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
            __syncthreads();
        }
        if (threadIdx.x == 0) rows_out[row] = sign * partial[0];
        __syncthreads();
    }
}

// One rule of optim.py over the flat buffers, the mask folded in (rule_gradient); twin: rule_step_twin
#define RULE(name, state, settings, call) \
extern "C" __global__ void name(real* theta, const real* grad, state const long long* segments, int n_segments, \
        const int* degrees, real weight_decay, settings long long n) { \
    EACH(i, n) { \
        real g; \
        if (rule_gradient(segments, n_segments, degrees, i, grad, theta, weight_decay, g)) call; \
    } \
}
RULE(sgd_step, , real lr COMMA, sgd(theta[i], g, lr))
RULE(adagrad_step, real* sum_sq COMMA, real lr COMMA, adagrad(theta[i], g, sum_sq[i], lr))
RULE(adadelta_step, real* mean_sq_grad COMMA real* mean_sq_step COMMA,
     real rho COMMA real one_minus_rho COMMA real eps COMMA real lr COMMA,
     adadelta(theta[i], g, mean_sq_grad[i], mean_sq_step[i], rho, one_minus_rho, eps, lr))
RULE(adam_step, real* m COMMA real* v COMMA,
     real beta1 COMMA real one_minus_beta1 COMMA real beta2 COMMA real one_minus_beta2 COMMA real bias2 COMMA
     real eps COMMA real lr_over_bias1 COMMA,
     adam(theta[i], g, m[i], v[i], beta1, one_minus_beta1, beta2, one_minus_beta2, bias2, eps, lr_over_bias1))
"""

KERNEL_NAMES = ("masked_weight", "bias_activation", "activation_backward", "bernoulli_rows") + \
    tuple(RULE_KERNELS.values())


def cuda_source(dtype):
    """The whole CUDA source for float32 or float64 parameters."""
    real = {"float32": "float", "float64": "double"}[np.dtype(dtype).name]
    return (f"typedef {real} real;\n#define DEVICE __device__ __forceinline__\n#define COMMA ,\n"
            + ELEMENTS + KERNELS)


# ----------------------------------------------------------------------------------------------
# The twins: each kernel's operation in NumPy, on NumPy arrays (on the stand-in, the arrays under
# its DeviceArrays).


def keeps_twin(kind, degrees_out, degrees_in):
    """The mask M (n_out, n_in) of `kind` from two degree vectors (staircase.dense_mask's rule)."""
    if kind == 0:
        return np.ones((len(degrees_out), len(degrees_in)), dtype=bool)
    return (degrees_out[:, None] >= degrees_in[None, :]) if kind == 1 else (degrees_out[:, None] > degrees_in[None, :])


def masked_weight_twin(weight, degrees_out, degrees_in, kind, out):
    """out = W ⊙ M, M from the degrees (engine.Engine: staircase.DenseMask.prepare)."""
    out[...] = np.where(keeps_twin(kind, degrees_out, degrees_in), weight, 0)


def bias_activation_twin(z, bias, h, code):
    """z ← z + b, h = f(z) (staircase.Network.forward: z += bias, then autograd's activation)."""
    z += bias
    ACTIVATIONS[ACTIVATION_NAMES[code]][0](z, out=h)


def activation_backward_twin(grad_h, z, h, out, code):
    """∂L/∂z = f'(z) ∂L/∂h (autograd's activation backward)."""
    ACTIVATIONS[ACTIVATION_NAMES[code]][1](grad_h, z, h, out=out)


def bernoulli_rows_twin(z, bias, x, counted, grad, divisor, rows_out, sign):
    """rows_out = sign · Σ_d [softplus(a) − x a] per example (over the columns counted != 0 when
    given), a = z + b; grad = (σ(a) − x) / divisor when given (staircase.bernoulli_nll_and_backward)."""
    a = z + bias
    e = np.exp(-np.abs(a))
    terms = (np.maximum(a, 0) - x * a) + np.log1p(e)
    if grad is not None:
        sign_a = np.sign(a)
        grad[...] = (((sign_a + 1) / 2 - x) - sign_a * (e / (e + 1))) / divisor
    if counted is not None:
        terms = terms * (counted != 0)
    rows_out[...] = sign * terms.sum(axis=1)


def rule_step_twin(rule_name, rule, theta, grad, states, segments, degrees, weight_decay, scratch):
    """One step of the rule over the flat buffers: per parameter (segment), its gradient masked by
    the degrees and decayed, then fast_updates' form of the rule (optim.Optimizer.step)."""
    for offset, size, columns, rows_at, columns_at, kind, decayed in segments:
        piece = slice(offset, offset + size)
        g = grad[piece].copy()
        if kind:
            rows = size // columns
            g *= keeps_twin(kind, degrees[rows_at:rows_at + rows], degrees[columns_at:columns_at + columns]).ravel()
        if decayed and weight_decay:
            g = theta[piece] * g.dtype.type(weight_decay) + g
        fast_updates.FORMS[rule_name](rule, theta[piece], g, *(state[piece] for state in states), scratch)


def rule_settings(rule_name, rule):
    """The scalars a rule's kernel takes, computed as fast_updates.py computes them (in Python, then
    rounded to the parameters' dtype where they meet an array)."""
    if rule_name == "SGD":
        return (rule.lr / (1 + rule.decrease * rule.t),)
    if rule_name == "AdaGrad":
        return (rule.lr,)
    if rule_name == "AdaDelta":
        return (rule.rho, 1 - rule.rho, rule.eps, rule.lr)
    t = rule.t + 1
    return (rule.beta1, 1 - rule.beta1, rule.beta2, 1 - rule.beta2, 1 - rule.beta2 ** t, rule.eps,
            rule.lr / (1 - rule.beta1 ** t))


# ----------------------------------------------------------------------------------------------
# Launching: the compiled kernel on a GPU, its twin on the stand-in


def _host(value):
    """The NumPy array under a stand-in's DeviceArray (the array itself otherwise)."""
    return value.view(np.ndarray) if isinstance(value, np.ndarray) else value


class Kernels:
    """The kernels for one dtype, each a method with the kernel's arguments as arrays."""

    def __init__(self, xp, dtype):
        self.xp, self.real = xp, np.dtype(dtype).type
        self.module = xp.RawModule(code=cuda_source(dtype), options=NVRTC_OPTIONS) \
            if hasattr(xp, "RawModule") else None  # None: the stand-in runs the twins
        self.count = getattr(xp, "count_launch", lambda name: None)
        self.functions, self.scratch = {}, fast_updates.Scratch()

    def _launch(self, name, n, args, blocks=None, shared=0):
        """Kernel `name` over n elements (a grid-stride loop over at most MAX_BLOCKS blocks)."""
        if name not in self.functions:
            self.functions[name] = self.module.get_function(name)
        blocks = blocks or int(max(1, min(-(-n // THREADS), MAX_BLOCKS)))
        self.functions[name]((blocks,), (THREADS,), args, shared_mem=shared)

    def _twin(self, name, twin, *args):
        self.count(name)
        twin(*(_host(arg) for arg in args))

    def masked_weight(self, weight, degrees, rows_at, columns_at, kind, out):
        """out = W ⊙ M: M of `kind` from degrees[rows_at:…] (the rows' units) and degrees[columns_at:…]."""
        rows, columns = weight.shape
        if self.module is None:
            degrees = _host(degrees)
            return self._twin("masked_weight", masked_weight_twin, weight, degrees[rows_at:rows_at + rows],
                              degrees[columns_at:columns_at + columns], kind, out)
        self._launch("masked_weight", weight.size, (weight, degrees, np.int64(rows_at), np.int64(columns_at),
                                                    np.int32(kind), np.int64(rows), np.int64(columns), out))

    def bias_activation(self, z, bias, h, code):
        if self.module is None:
            return self._twin("bias_activation", bias_activation_twin, z, bias, h, code)
        self._launch("bias_activation", z.size, (z, bias, h, np.int64(z.shape[1]), np.int64(z.size), np.int32(code)))

    def activation_backward(self, grad_h, z, h, out, code):
        if self.module is None:
            return self._twin("activation_backward", activation_backward_twin, grad_h, z, h, out, code)
        self._launch("activation_backward", z.size, (grad_h, z, h, out, np.int64(z.size), np.int32(code)))

    def bernoulli_rows(self, z, bias, x, counted, grad, divisor, rows_out, sign):
        """rows_out[n] = sign · Σ_d −log p(x_nd | x_<d) (over `counted` columns, None: all), and
        grad = (σ(a) − x) / divisor (None: no gradient)."""
        if self.module is None:
            return self._twin("bernoulli_rows", bernoulli_rows_twin, z, bias, x, counted, grad, divisor, rows_out, sign)
        n_rows, columns = z.shape
        self._launch("bernoulli_rows", n_rows,
                     (z, bias, x, bias if counted is None else counted, np.int32(counted is not None),
                      z if grad is None else grad, np.int32(grad is not None), self.real(divisor), rows_out,
                      self.real(sign), np.int64(n_rows), np.int64(columns)),
                     blocks=int(min(max(n_rows, 1), 65535)), shared=THREADS * np.dtype(self.real).itemsize)

    def rule_step(self, rule_name, rule, theta, grad, states, segments, degrees, weight_decay):
        """One step of the rule over the flat buffers (segments: FusedEngine.segments)."""
        if self.module is None:
            return self._twin(RULE_KERNELS[rule_name], rule_step_twin, rule_name, rule, theta, grad,
                              tuple(_host(state) for state in states), segments.rows, degrees, weight_decay,
                              self.scratch)
        settings = tuple(self.real(value) for value in rule_settings(rule_name, rule))
        self._launch(RULE_KERNELS[rule_name], theta.size,
                     (theta, grad, *states, segments.device, np.int32(len(segments.rows)), degrees,
                      self.real(weight_decay), *settings, np.int64(theta.size)))


_COMPILED = {}


def kernels_for(xp, dtype):
    """The Kernels of this module and dtype, compiled once per process."""
    key = (xp, np.dtype(dtype).name)
    if key not in _COMPILED:
        _COMPILED[key] = Kernels(xp, dtype)
    return _COMPILED[key]


# ----------------------------------------------------------------------------------------------
# The engine


class FlatArrays(dict):
    """name → a view of one flat buffer (`flat`), shaped like each parameter."""

    def __init__(self, xp, shapes, dtype):
        offsets, end = {}, 0
        for name, shape in shapes.items():
            offsets[name] = end
            end += -(-int(np.prod(shape)) // ALIGN) * ALIGN
        self.flat = xp.zeros(end, dtype=dtype)
        self.offsets = offsets
        super().__init__({name: self.flat[offsets[name]:offsets[name] + int(np.prod(shape))].reshape(shape)
                          for name, shape in shapes.items()})


class FusedGradients(Gradients):
    """The gradients of one step: buffers unmasked (the rule's kernel masks them as it updates),
    and the mask's degrees they were computed under; grads[name] is masked, as everywhere."""

    def __init__(self, store, buffers, degrees):
        super().__init__(store, buffers)
        self.degrees = degrees

    def __getitem__(self, name):
        return self.store.export(name, self.store.masked_gradient(name, self.buffers[name], self.degrees))


class FusedEngine(Store):
    """A MADE's parameters on the GPU in the data's numbering, as views of one flat buffer, and its
    products in the kernels above. Arguments as engine.Engine takes them (gpu must be True)."""

    def __init__(self, layers, params, degrees, activation, n_masks, one_mask, gpu, dtype):
        if not gpu:
            raise ValueError("FusedEngine runs on the GPU only (engine.Engine is the CPU's)")
        xp = backend.array_module(True)
        self.layers, self.n_masks, self.xp, self.dtype = layers, n_masks, xp, dtype
        self.code, self.kernels = ACTIVATION_CODES[activation], kernels_for(xp, dtype)
        self.units = parameter_units(layers)
        shapes = {name: np.shape(value) for name, value in params.items()}
        arrays = FlatArrays(xp, shapes, dtype)
        for name, value in params.items():
            arrays[name][...] = xp.asarray(value, dtype=dtype)
        super().__init__(arrays)
        self.grads = FlatArrays(xp, shapes, dtype)
        sizes = [layers[-1].size] + [layer.size for layer in layers[:-1]]  # of each source: [D, H_1, …]
        self.degrees_at = np.concatenate([[0], np.cumsum(sizes)])[:-1]   # where its degrees start
        self.mask_of = {}  # masked weight (a U too) → (its rows' source, its columns' source, kind)
        for index, layer in enumerate(layers):
            own, kind = (index + 1, 1) if layer.hidden else (0, 2)
            for (name, source), cond in zip(layer.inputs, layer.conds):
                self.mask_of.update({weight: (own, source, kind) for weight in (name, cond) if weight})
        self.segments = self._segments(arrays, shapes)
        self.masked = {name: xp.empty(shapes[name], dtype=dtype) for name in self.mask_of}
        self._degree_cache, self._buffers = {}, {}
        self.use_mask(degrees, key=0)
        if one_mask:  # as engine.Engine: the removed weights start at zero (and the rules keep them so)
            for name in self.mask_of:
                self._mask(self.arrays[name], name, self.mask_degrees, self.arrays[name])

    def _segments(self, arrays, shapes):
        """The rule kernels' table: per parameter (offset, size, columns, where its rows' and columns'
        degrees start, mask kind, whether weight decay applies), on the host and on the device."""
        rows = []
        for name, shape in shapes.items():
            size = int(np.prod(shape))
            if name in self.mask_of:
                own, source, kind = self.mask_of[name]
                rows.append((arrays.offsets[name], size, shape[1], self.degrees_at[own], self.degrees_at[source],
                             kind, 1))
            else:
                rows.append((arrays.offsets[name], size, 1, 0, 0, 0, int(len(shape) == 2)))
        rows = [tuple(int(value) for value in row) for row in rows]
        return types.SimpleNamespace(rows=rows, device=self.xp.asarray(np.array(rows, dtype=np.int64)))

    # -- the mask -------------------------------------------------------------------------------

    def use_mask(self, degrees, key=None):
        """Work under the mask these degrees give (per source, in the data's numbering): one int32
        vector on the device, copied over once per mask of the cycle (key), kept for the next cycles."""
        cached = self._degree_cache.get(key) if key is not None else None
        if cached is None:
            cached = self.xp.asarray(np.concatenate([np.asarray(d) for d in degrees]).astype(np.int32))
            if key is not None and key < self.n_masks:
                self._degree_cache[key] = cached
        self.mask_degrees = cached

    def _mask(self, array, name, degrees, out):
        rows, columns, kind = self.mask_of[name]
        self.kernels.masked_weight(array, degrees, self.degrees_at[rows], self.degrees_at[columns], kind, out)
        return out

    def masked_gradient(self, name, grad, degrees):
        """A gradient buffer with the mask applied (a new array), as Gradients hand it out."""
        return self._mask(grad, name, degrees, self.xp.empty_like(grad)) if name in self.mask_of else grad

    def _prepare(self):
        """W ⊙ M (and U ⊙ M) of every masked weight under the current mask, into its buffer."""
        for name in self.mask_of:
            self._mask(self.arrays[name], name, self.mask_degrees, self.masked[name])
        return self.masked

    # -- the passes -----------------------------------------------------------------------------

    def _buffers_for(self, n, backward=False):
        """The activations of a batch of n (and their gradients, for backward), made once per n."""
        if n not in self._buffers:
            if len(self._buffers) > 2:  # a caller cycling through batch sizes: keep memory bounded
                self._buffers.clear()
            hidden = [layer.size for layer in self.layers[:-1]]
            empty = lambda *shape: self.xp.empty(shape, dtype=self.dtype)  # noqa: E731
            self._buffers[n] = types.SimpleNamespace(
                pre=[empty(n, size) for size in hidden], h=[None] + [empty(n, size) for size in hidden],
                logits=empty(n, self.layers[-1].size), extra=empty(n, self.layers[-1].size), rows=empty(n),
                grad_logits=None)
        buffers = self._buffers[n]
        if backward and buffers.grad_logits is None:
            buffers.grad_logits = self.xp.empty_like(buffers.logits)
            buffers.grad_h = [None] + [self.xp.empty_like(pre) for pre in buffers.pre]
            buffers.grad_z = [self.xp.empty_like(pre) for pre in buffers.pre]
        return buffers

    def _bias(self, layer):
        """b + Σ_i 1·(U_i ⊙ M_i)ᵀ (a new vector only with mask conditioning)."""
        bias = self.arrays[layer.bias]
        for cond in filter(None, layer.conds):
            bias = bias + self.masked[cond].sum(axis=1)
        return bias

    def _forward(self, x, buffers):
        """The hidden layers and the output's logits before its bias: [x, h_1, …], z_out (N, D)."""
        activations = [x] + buffers.h[1:]
        for index, layer in enumerate(self.layers):
            z = buffers.pre[index] if layer.hidden else buffers.logits
            (name, source), *others = layer.inputs
            self.xp.matmul(activations[source], self.masked[name].T, out=z)
            for name, source in others:  # the direct connection into the output layer
                z += self.xp.matmul(activations[source], self.masked[name].T, out=buffers.extra)
            if layer.hidden:
                self.kernels.bias_activation(z, self._bias(layer), activations[index + 1], self.code)
        return activations, buffers.logits

    def _contiguous(self, x):
        return x if x.flags.c_contiguous else self.xp.ascontiguousarray(x)

    def forward(self, x):
        """Logits (N, D), a new array. x: (N, D) on the device, in dtype."""
        x = self._contiguous(x)
        self._prepare()
        _, logits = self._forward(x, self._buffers_for(x.shape[0]))
        return logits + self._bias(self.layers[-1])

    def loss_and_grads(self, x):
        """Mean NLL of a minibatch (0-d) and its FusedGradients: made.backward_pass, kernel by kernel."""
        x, xp = self._contiguous(x), self.xp
        buffers = self._buffers_for(x.shape[0], backward=True)
        self._prepare()
        activations, logits = self._forward(x, buffers)
        grad_z, grads = buffers.grad_logits, self.grads
        self.kernels.bernoulli_rows(logits, self._bias(self.layers[-1]), x, None, grad_z, x.shape[0], buffers.rows, 1)
        for index in reversed(range(len(self.layers))):
            layer = self.layers[index]
            if layer.hidden:
                grad_z = buffers.grad_z[index]
                self.kernels.activation_backward(buffers.grad_h[index + 1], buffers.pre[index], activations[index + 1],
                                                 grad_z, self.code)
            grad_z.sum(axis=0, out=grads[layer.bias])
            for (name, source), cond in zip(layer.inputs, layer.conds):
                xp.matmul(grad_z.T, activations[source], out=grads[name])  # unmasked: the rule masks it
                if source > 0:  # each hidden layer feeds exactly one layer: the one above it
                    xp.matmul(grad_z, self.masked[name], out=buffers.grad_h[source])
                if cond is not None:  # ∂L/∂U = ∂L/∂b (⊙ M, by the rule)
                    grads[cond][...] = grads[layer.bias][:, None]
        return buffers.rows.mean(), FusedGradients(self, dict(grads), self.mask_degrees)

    def log_prob(self, x, batch_size, after_batch=None, variables=None):
        """log p(x) (N,) under the current mask, batch by batch (engine.Engine.log_prob's arguments)."""
        x = self._contiguous(x)
        self._prepare()
        counted = None if variables is None else self.xp.asarray(np.asarray(variables, dtype=self.dtype))
        bias = self._bias(self.layers[-1])
        result = self.xp.empty(x.shape[0], dtype=self.dtype)
        for start in range(0, x.shape[0], batch_size):
            batch = x[start:start + batch_size]
            _, logits = self._forward(batch, self._buffers_for(batch.shape[0]))
            self.kernels.bernoulli_rows(logits, bias, batch, counted, None, 1, result[start:start + batch.shape[0]], -1)
            if after_batch is not None:
                after_batch()
        self._buffers.clear()  # (memory: training's next step makes its own small ones again)
        return result

    # -- the optimizer's door -------------------------------------------------------------------

    def zeros(self):
        return FlatArrays(self.xp, {name: array.shape for name, array in self.arrays.items()}, self.dtype)

    def fused_step(self, rule, grads):
        """One launch of the rule's kernel over every parameter, when the rule and gradients allow."""
        name = type(rule).__name__
        states = [rule.state[slot] for slot in rule.slots]
        if name not in RULE_KERNELS or not isinstance(grads, FusedGradients) or grads.store is not self or \
                not all(isinstance(state, FlatArrays) for state in states):
            return False
        self.kernels.rule_step(name, rule, self.arrays.flat, self.grads.flat, [state.flat for state in states],
                               self.segments, grads.degrees, rule.weight_decay)
        return True

    def pieces(self, grads):
        """For a rule without a kernel: this engine's gradients masked first (in place), whole."""
        if isinstance(grads, FusedGradients) and grads.store is self:
            for name, grad in grads.buffers.items():
                if name in self.mask_of:
                    self._mask(grad, name, grads.degrees, grad)
                yield name, Ellipsis, grad
            return
        yield from super().pieces(grads)
