"""A MADE's weights apart from the model: fresh ones (the initialisation), given ones (checked
against the architecture), the view of them a model gives (Parameters), and the arrays of a model
file. made.py builds the model on them; nothing here imports it.

A model file is one .npz (files.py writes it atomically and reads it without pickles): param.NAME
for every parameter in the data's numbering (column j of W0 is input j), config (the Config as
JSON, with the format's name), and mask_index, the mask the model was under.
"""
from collections.abc import Mapping

import numpy as np

import backend
import files
from config import require

FORMAT = "made-npz-1"


class CheckpointError(ValueError):
    """A model file cannot be used: corrupt, foreign, or inconsistent with its own config."""


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


class Parameters(Mapping):
    """model.params: name → the parameter, numbered as the data is (column j of W0 is input j). Each
    is a read-only host copy (a write into it raises: it could change nothing); model.params[name]
    = value writes a parameter, checked as MADE(params=…) checks them."""

    def __init__(self, model):
        self._model = model

    def __getitem__(self, name):
        engine = self._model.engine
        return engine.export(name, engine.arrays[name])

    def __setitem__(self, name, value):
        engine = self._model.engine
        require(name in engine.arrays, f"{name!r} is not a parameter of this model ({', '.join(engine.arrays)})")
        check_params({name: value}, {name: engine.arrays[name].shape}, self._model.dtype)
        engine.set(name, value)

    def __iter__(self):
        return iter(self._model.engine.arrays)

    def __len__(self):
        return len(self._model.engine.arrays)


def file_arrays(config, params, mask_index):
    """The arrays of a model file: config (a dict, as Config.as_dict gives it), params (name →
    array in the data's numbering), the mask index."""
    arrays = {f"param.{name}": value for name, value in params.items()}
    arrays["config"] = files.json_array(dict(config, format=FORMAT))
    arrays["mask_index"] = np.array(mask_index)
    return arrays


def read_file_arrays(arrays, what):
    """(config dict, params, mask index or None) of a model file's arrays; CheckpointError naming
    `what` when they are not one (the model built from them checks the rest)."""
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
    return config, params, mask_index[()] if mask_index.shape == () and mask_index.dtype.kind in "iu" else None


def read_model_file(path):
    """The arrays of the model file at `path` (files.read_npz); CheckpointError when it is unreadable."""
    try:
        return files.read_npz(path)
    except files.FileFormatError as error:
        raise CheckpointError(str(error)) from None
