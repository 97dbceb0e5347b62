"""A MADE's weights before it has any: fresh ones (the initialisation) and given ones (checked
against the architecture). made.py builds the model on them; nothing here knows the model.
"""
import numpy as np

import backend
from config import require


def init_weight(shape, kind, rng):
    """'uniform': U(−r, r), r = √(6 / (fan_in + fan_out)) (Glorot & Bengio 2010).
    'orthogonal': rows (or columns) orthonormal, from the QR decomposition of a Gaussian matrix."""
    fan_out, fan_in = shape
    if kind == "uniform":
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape)
    q, r = np.linalg.qr(rng.standard_normal((max(shape), min(shape))))
    q *= np.sign(np.diag(r))  # makes the decomposition unique, so Q is uniformly distributed
    return q if fan_out >= fan_in else q.T


def init_params(shapes, kind, seed):
    """Host float64 weights from init_weight, in the order of `shapes`, from the seed's stream;
    biases zero. Drawn on the host so CPU and GPU runs start from the same numbers."""
    rng = backend.random_generator(seed, "init")
    return {name: np.zeros(shape) if len(shape) == 1 else init_weight(shape, kind, rng)
            for name, shape in shapes.items()}


def check_params(params, shapes, dtype):
    """Given weights must have exactly the names and shapes the architecture defines, and be finite
    in the model's dtype (1e39 is finite in float64, infinite in float32)."""
    require(isinstance(params, dict), f"params must map parameter names to arrays, not {type(params).__name__}")
    require(set(params) == set(shapes), f"parameters {sorted(set(params) ^ set(shapes))} do not match the architecture")
    for name, shape in shapes.items():
        value = params[name]
        require(hasattr(value, "shape") and tuple(value.shape) == shape and value.dtype.kind == "f",
                f"{name} has shape {tuple(getattr(value, 'shape', ()))} ({getattr(value, 'dtype', type(value).__name__)})"
                f", the architecture needs {shape} (float)")
        with np.errstate(over="ignore", invalid="ignore"):  # (what the check is for)
            finite = bool(backend.module_of(value).isfinite(value.astype(dtype, copy=False)).all())
        require(finite, f"{name} holds values that are NaN or infinite in {dtype}")
