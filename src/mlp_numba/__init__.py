"""mlp_numba: a fast, CS231n-compatible two-layer softmax network on Numba kernels.

>>> from mlp_numba import TwoLayerNet, ACTIVATIONS
>>> "relu" in ACTIVATIONS
True
"""

from ._activation_spec import ACTIVATIONS
from ._validation import TrainingDivergedError
from ._version import __version__
from .net import TrainingProgress, TwoLayerNet


def __getattr__(name):
    # scikit-learn is optional: import the estimator only when it is asked for.
    if name == "MLPNumbaClassifier":
        from .estimator import MLPNumbaClassifier

        return MLPNumbaClassifier
    raise AttributeError(f"module 'mlp_numba' has no attribute {name!r}")


__all__ = [
    "ACTIVATIONS",
    "MLPNumbaClassifier",
    "TrainingDivergedError",
    "TrainingProgress",
    "TwoLayerNet",
    "__version__",
]
