"""A MADE on the disk: the arrays a model is saved as, and the model read back from them.

    model.save("model.npz");  model = MADE.load("model.npz")

A model file is one .npz (files.py writes it atomically and reads it without pickles): param.NAME
for every parameter in the data's numbering (column j of W0 is input j, whatever layout the engine
keeps), config (the Config as JSON, with the format's name), and mask_index, the mask it was under.
Run folders hold the same arrays in model.npz and checkpoint.npz (runs.py).
"""
import numpy as np

import files
from config import require
from made import MADE, CheckpointError

FORMAT = "made-npz-1"


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
    try:
        return from_state_arrays(files.read_npz(path), str(path), gpu, reference)
    except files.FileFormatError as error:
        raise CheckpointError(str(error)) from None
