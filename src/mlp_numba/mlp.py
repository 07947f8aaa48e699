"""The public ``MLP``: a softmax net with any number of hidden layers, on the compiled engine.

Its params, gradients and optimizer state are each packed in one vector for the engine
(``_engine.stack_engine``), which compiles once per dtype for every depth and width; the rest
(validation, scoring in chunks, ``train``) is ``TwoLayerNet``'s.
"""

from __future__ import annotations

from . import _validation as v
from ._activation_spec import param_vector
from ._base import DeepNetBase
from ._engine import stack_engine
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
        ``W1`` (D, n1), ``b1`` (n1,), ..., ``W{k+1}`` (nk, C), ``b{k+1}`` (C,). They are
        views of one vector that training updates in place; an array assigned in their place
        is copied into a new such vector at the next call, and the dict then holds its views.

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

    _ENGINE_KIND = stack_engine.StackEngine

    def _model(self):
        """The params packed in one vector, and the activation (``bundles.Stack``)."""
        v.check_params(self.params, self.sizes, self.dtype)
        vector = stack_engine.pack(self.params, v.param_shapes(self.sizes), self.dtype)
        ap = param_vector(self.activation, self.activation_params, self.dtype)
        return stack_engine.stack(vector, self.sizes, self.activation, ap)

    def _workspace(self, n_rows, batch=False):
        return stack_engine.workspace(n_rows, self.sizes, self.dtype, batch=batch)

    def _scoring_workspace(self, n_rows):
        return stack_engine.scoring_workspace(n_rows, self.sizes, self.dtype)

    def _rows_of(self, work, n_rows):
        return stack_engine.rows_of(work, n_rows)

    def _gradients(self, work):
        return stack_engine.views(work.grads, v.param_shapes(self.sizes))

    def _steps(self, batches, rates, reg, step0, dropout):
        return stack_engine.steps(batches, rates, reg, step0, dropout)

    def _optimizer(self, code, hyper, buffers):
        shapes = v.param_shapes(self.sizes)
        states = [stack_engine.pack(b, shapes, self.dtype) for b in buffers]
        return stack_engine.stack_optimizer(code, hyper, states, self.dtype)
