"""mlp_numba: a fast, CS231n-compatible two-layer softmax network on Numba kernels.

>>> from mlp_numba import TwoLayerNet, ACTIVATIONS
>>> "relu" in ACTIVATIONS
True
"""

from ._activation_spec import ACTIVATIONS
from ._validation import TrainingDivergedError
from ._version import __version__
from .net import TrainingProgress, TwoLayerNet

__all__ = ["ACTIVATIONS", "TrainingDivergedError", "TrainingProgress", "TwoLayerNet", "__version__"]
