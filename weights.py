"""A MADE's weights: fresh ones (the initialisation), given ones (checked against the
architecture), and saved ones (the file a model is written to and read back from).

    model.save("model.npz");  model = MADE.load("model.npz")

A model file is one .npz (files.py writes it atomically and reads it without pickles): param.NAME
for every parameter in the data's numbering (column j of W0 is input j, whatever layout the engine
keeps), config (the Config as JSON, with the format's name), and mask_index, the mask it was under.
Run folders hold the same arrays in model.npz and checkpoint.npz (runs.py).
"""
import numpy as np

import backend
import files
from config import require

FORMAT = "made-npz-1"


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


# ----------------------------------------------------------------------------------------------
# The file


def state_arrays(model):
    """A model as host arrays: param.NAME in the data's numbering, config (JSON), mask_index."""
    require(model.mask_index is not None, "the model is under a custom ordering (use_ordering); select a mask "
                                           "of its cycle with use_mask(k) before saving")
    arrays = {f"param.{name}": value for name, value in model.natural_params().items()}
    arrays["config"] = files.json_array(dict(model.config.as_dict(), format=FORMAT))
    arrays["mask_index"] = np.array(model.mask_index)
    return arrays


def from_state_arrays(arrays, what, gpu=False, reference=False):
    """The model held in state_arrays() form; CheckpointError naming `what` when it is not one."""
    from made import MADE, CheckpointError  # (made.py imports this file for its weights)
    if "config" not in arrays:
        raise CheckpointError(f"{what}: not a MADE model file (no config)")
    try:
        config = files.read_json_array(arrays["config"], f"{what}: config")
    except files.FileFormatError as error:
        raise CheckpointError(str(error)) from None
    if not isinstance(config, dict) or config.pop("format", None) != FORMAT:
        raise CheckpointError(f"{what}: not a MADE model file of format {FORMAT}")
    params = {name[len("param."):]: value for name, value in arrays.items() if name.startswith("param.")}
    mask_index = arrays.get("mask_index", np.array(0))
    try:
        model = MADE(**config, gpu=gpu, params=params, reference=reference)
        model.use_mask(mask_index[()] if mask_index.shape == () and mask_index.dtype.kind in "iu" else None)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{what}: does not hold a consistent MADE ({error})") from None
    return model


def save(model, path):
    """state_arrays(model) as one .npz, written atomically."""
    files.save_npz(path, state_arrays(model))


def load(path, gpu=False, reference=False):
    """The model saved at `path`; a corrupt, foreign or inconsistent file raises CheckpointError."""
    from made import CheckpointError
    try:
        return from_state_arrays(files.read_npz(path), str(path), gpu, reference)
    except files.FileFormatError as error:
        raise CheckpointError(str(error)) from None
