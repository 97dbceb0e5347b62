"""What defines a MADE but its weights: its configuration, validated on creation, saved as JSON.

made.py builds the model from it; train.py's flags map onto it one to one.
"""
import dataclasses

import numpy as np

import backend
from autograd import ACTIVATIONS

SHUFFLES = ("full", "ordering", "connectivity", "once")
INITS = ("uniform", "orthogonal")


def is_int(value):
    """An integer, NumPy's included, but not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def count_distinct_masks(n_masks, shuffle):
    """How many different masks a cycle of n_masks holds: 1, n_masks, or None (n_masks=0: unbounded)."""
    return 1 if n_masks == 1 or shuffle == "once" else n_masks or None


def require(condition, message):
    """A ValueError with this message unless the condition holds."""
    if not condition:
        raise ValueError(message)


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
        def fix(name, value):
            object.__setattr__(self, name, value)  # how a frozen dataclass normalises its own fields
        require(is_int(self.n_in) and self.n_in >= 2, f"n_in must be an integer ≥ 2, not {self.n_in!r}")
        sizes = self.hidden_sizes
        require(not isinstance(sizes, (str, bytes)) and np.iterable(sizes) and all(is_int(s) and s > 0 for s in sizes),
                 f"hidden_sizes must be a list of positive integers, not {sizes!r}")
        require(len(sizes) or self.direct,
                 "hidden_sizes=[] needs direct=True (the shallow MADE); otherwise no input reaches the output")
        if isinstance(self.ordering, str):
            require(self.ordering in ("random", "natural"),
                     f"ordering must be 'random', 'natural' or a permutation, not {self.ordering!r}")
        else:
            ordering = np.asarray(self.ordering)
            require(ordering.ndim == 1 and ordering.dtype.kind in "iu",
                    f"ordering must be 'random', 'natural' or a permutation of range({self.n_in}) as integers, "
                    f"not {self.ordering!r}")
            fix("ordering", tuple(int(i) for i in ordering))
            require(sorted(self.ordering) == list(range(self.n_in)), f"ordering must be a permutation of range({self.n_in})")
        for name in ("direct", "cond_mask"):
            require(isinstance(getattr(self, name), (bool, np.bool_)), f"{name} must be True or False, not "
                                                                       f"{getattr(self, name)!r}")
        require(self.activation in ACTIVATIONS, f"activation must be one of {sorted(ACTIVATIONS)}, not {self.activation!r}")
        require(is_int(self.n_masks) and self.n_masks >= 0,
                 f"n_masks must be an integer ≥ 0 (0: a fresh mask every time), not {self.n_masks!r}")
        require(self.shuffle in SHUFFLES, f"shuffle must be one of {SHUFFLES}, not {self.shuffle!r}")
        require(is_int(self.seed) and self.seed >= 0, f"seed must be a non-negative integer, not {self.seed!r}")
        require(self.init in INITS, f"init must be one of {INITS}, not {self.init!r}")
        for name, kind in (("n_in", int), ("n_masks", int), ("seed", int), ("direct", bool), ("cond_mask", bool)):
            fix(name, kind(getattr(self, name)))
        fix("hidden_sizes", tuple(int(size) for size in sizes))
        fix("dtype", backend.check_dtype(self.dtype))

    def as_dict(self):
        """The JSON form (lists for tuples), as MADE(**config.as_dict()) takes it back."""
        value = dataclasses.asdict(self)
        value["hidden_sizes"] = list(self.hidden_sizes)
        if not isinstance(self.ordering, str):
            value["ordering"] = list(self.ordering)
        return value
