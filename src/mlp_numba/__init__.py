"""mlp_numba: fast, CS231n-compatible softmax networks on Numba kernels.

The package imports lazily: ``import mlp_numba.reference`` or the command line's ``--help``
load no Numba; the compiled nets and their engines load on first use of ``TwoLayerNet`` or ``MLP``
(any number of hidden layers).

>>> from mlp_numba import TwoLayerNet, ACTIVATIONS
>>> "relu" in ACTIVATIONS
True
"""

from ._activation_spec import ACTIVATIONS
from ._training import TrainingProgress, TrainOptions
from ._validation import TrainingDivergedError
from ._version import __version__

# name -> module that defines it, imported on first access.
_LAZY = {"TwoLayerNet": ".net", "MLP": ".mlp", "MLPNumbaClassifier": ".estimator"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlp_numba' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ACTIVATIONS",
    "MLP",
    "MLPNumbaClassifier",
    "TrainOptions",
    "TrainingDivergedError",
    "TrainingProgress",
    "TwoLayerNet",
    "__version__",
]
