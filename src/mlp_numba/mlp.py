"""The public ``MLP``: a softmax net with any number of hidden layers, on the compiled engine.

It runs on the engine of ``TwoLayerNet``, which compiles once per dtype for every depth and
width; everything but the constructor is ``net.CompiledNet``'s and, for ``train`` (the
course's loop in ``_training``), ``_base.NetBase``'s.
"""

from __future__ import annotations

from ._base import DeepNetBase
from .net import CompiledNet

__all__ = ["MLP"]


class MLP(DeepNetBase, CompiledNet):
    """A fully connected softmax net with any number of hidden layers, compiled with Numba.

    input -> (affine -> activation) for each hidden layer -> affine -> softmax, trained by
    minibatch SGD or another optimizer, with L2 regularisation ``reg * sum_l sum(Wl**2)``.
    The API of :class:`mlp_numba.TwoLayerNet` (``loss``, ``train`` with every option,
    ``predict``, ``predict_proba``, ``save`` and ``load``), with ``hidden_sizes`` for
    ``hidden_size``; :class:`mlp_numba.reference.MLP` is the same maths in plain NumPy.

    Parameters
    ----------
    input_size : int
        Number of features D.
    hidden_sizes : sequence of int
        The width of each hidden layer, first to last (one or more).
    output_size : int
        Number of classes C (>= 2).
    std : float, optional
        When given, the initial weights are ``std * randn`` (as ``TwoLayerNet``'s) and
        ``init`` is not used.
    activation : str, default "relu"
        One of :data:`mlp_numba.ACTIVATIONS`, used by every hidden layer.
    activation_params : dict, optional
        Settable parameters of the activation (``{"slope": 0.01}`` for ``leaky_relu``).
    init : {"he", "glorot"}, default "he"
        The scale of each layer's initial weights ``scale * randn``: ``sqrt(2 / fan_in)``
        (He) or ``sqrt(2 / (fan_in + fan_out))`` (Glorot); the biases start at zero.
    dtype : float64 (default) or float32
        The dtype of the params and of every array the net returns.
    seed : None, int or numpy.random.Generator
        As :class:`mlp_numba.TwoLayerNet`'s: None draws from NumPy's global random state.

    Attributes
    ----------
    params : dict
        ``W1`` (D, n1), ``b1`` (n1,), ..., ``W{k+1}`` (nk, C), ``b{k+1}`` (C,): the arrays
        the engine reads and writes, from construction on. Training updates them in place;
        an array assigned to a key (or a whole dict) is copied into them.

    Examples
    --------
    >>> import numpy as np
    >>> from mlp_numba import MLP
    >>> net = MLP(4, (16, 8), 3, seed=0)
    >>> net
    MLP(input_size=4, hidden_sizes=(16, 8), output_size=3, activation='relu', dtype=float64)
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((60, 4)), rng.integers(0, 3, 60)
    >>> stats = net.train(X, y, X, y, learning_rate=0.1, num_iters=30, batch_size=20)
    >>> len(stats["loss_history"]), net.predict(X).shape
    (30, (60,))
    """
