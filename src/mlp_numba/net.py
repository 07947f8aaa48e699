"""The public ``TwoLayerNet``: a drop-in for the CS231n class, on the compiled engine.

:class:`CompiledNet` is what every compiled net shares (``TwoLayerNet``, and ``MLP`` of any
depth): it validates and prepares inputs, keeps the params live in the engine's packed vector
(``_params``) and lends the engine its buffers. A ``TwoLayerNet`` is a net of one hidden layer
on the same engine. The course's bookkeeping (histories, epochs, decay, verbose lines) is
``_training``'s, shared with the reference, and every numerical loop runs in ``_engine``.
"""

from __future__ import annotations

import numpy as np

from . import _validation as v
from ._activation_spec import param_vector
from ._base import NetBase
from ._engine import engine_for
from ._optimizer_spec import OPTIMIZERS, hyper_vector
from ._params import pack, views
from ._training import TrainingProgress

__all__ = ["CompiledNet", "TrainingProgress", "TwoLayerNet"]

# Rows scored per compiled call by predict, predict_proba and loss(X). It bounds the scratch
# memory, and small buffers stay in cache from one chunk to the next and cost few page faults
# (predict on 10,000 MNIST rows took 1.37x its first product with 8192 and 1.14x with 2048).
_SCORE_ROWS = 2048


class CompiledNet(NetBase):
    """What the compiled nets share: validation, scoring in chunks, the loss and training on
    the engine of their dtype, which reads and writes the params' packed vector."""

    @property
    def _engine(self):
        return engine_for(self.dtype)

    def _check_features(self, name, X):
        return v.check_features(name, X, self.input_size, self.dtype, self._engine.all_finite)

    def _scored(self, X, score, out):
        """Run the engine's scoring method ``score`` over the rows of ``X`` in chunks, into
        ``out(n_rows)``, an array with a row per row of X.

        X is converted but not checked for NaN and inf first: the engine reports whether the
        hidden pre-activations were finite, and only when not is X itself checked (raising
        ValueError when X is to blame).
        """
        X, given = v.features_as("X", X, self.input_size, self.dtype)
        out = out(len(X))
        model = self._model()
        work = self._scoring_workspace(min(len(X), _SCORE_ROWS))
        finite = True
        for start in range(0, len(X), _SCORE_ROWS):
            rows = slice(start, start + _SCORE_ROWS)
            chunk = X[rows]
            finite &= score(chunk, model, self._engine.rows_of(work, len(chunk)), out[rows])
        if not finite:
            v.check_finite("X", X, given, self._engine.all_finite)
        return out

    def loss(self, X, y=None, reg=0.0):
        """Class scores, or the loss and its gradients, on a batch.

        Parameters
        ----------
        X : array_like, shape (N, D)
            The inputs; integer (e.g. uint8) arrays are converted to the net's dtype.
        y : array_like of int, shape (N,), optional
            Class labels in [0, C).
        reg : float, default 0.0
            L2 regularisation strength.

        Returns
        -------
        scores : ndarray, shape (N, C)
            Without ``y``.
        loss, grads : scalar, dict
            With ``y``: the mean softmax cross-entropy plus ``reg * (sum(W1**2) + sum(W2**2))``,
            and its gradients with the keys of ``params``. All of the net's dtype.

        Examples
        --------
        >>> import numpy as np
        >>> from mlp_numba import TwoLayerNet
        >>> net = TwoLayerNet(3, 5, 2, seed=0)
        >>> net.loss(np.eye(3)).shape
        (3, 2)
        >>> loss, grads = net.loss(np.eye(3), [0, 1, 1], reg=0.1)
        >>> sorted(grads), grads["W1"].shape
        (['W1', 'W2', 'b1', 'b2'], (3, 5))
        """
        if y is None:
            v.check_float("reg", reg, minimum=0.0)
            return self._scored(X, self._engine.scores, self._new_scores)
        X = self._check_features("X", X)
        reg = v.check_float("reg", reg, minimum=0.0)
        y = v.check_labels("y", y, len(X), self.output_size)
        work = self._workspace(len(X))
        loss, _ = self._engine.loss_and_grads(X, y, self._model(), reg, work)
        return loss, self._gradients(work)

    def predict(self, X):
        """Predicted class of each row of X: the argmax of its scores, shape (N,).

        Examples
        --------
        >>> import numpy as np
        >>> from mlp_numba import TwoLayerNet
        >>> TwoLayerNet(3, 5, 2, seed=0).predict(np.eye(3)).shape
        (3,)
        """
        return self._scored(X, self._engine.predict, lambda n: np.empty(n, np.intp))

    def predict_proba(self, X):
        """Softmax probabilities of the classes for each row of X, shape (N, C).

        Examples
        --------
        >>> import numpy as np
        >>> from mlp_numba import TwoLayerNet
        >>> p = TwoLayerNet(3, 5, 2, seed=0).predict_proba(np.eye(3))
        >>> bool(np.allclose(p.sum(axis=1), 1))
        True
        """
        return self._scored(X, self._engine.predict_proba, self._new_scores)

    def _new_scores(self, n_rows):
        return np.empty((n_rows, self.output_size), self.dtype)

    def _step_runner(self, X, y, reg, batch_size, state, dropout=None):
        """The engine's runner of blocks of training steps on (X, y) (``engine.TrainingSteps``)."""
        code = OPTIMIZERS[state["name"]][0]
        hyper = hyper_vector(state["name"], state["params"])
        optimizer = self._optimizer(code, hyper, state["buffers"])
        work = self._workspace(batch_size, batch=True)
        return self._engine.training_steps(X, y, self._model(), optimizer, work, reg, dropout)

    # The engine's bundles (``_engine.bundles``) of this net.

    def _model(self):
        """The packed params and the activation (``bundles.Model``)."""
        ap = param_vector(self.activation, self.activation_params, self.dtype)
        return self._engine.model(self._params.vector, self.sizes, self.activation, ap)

    def _workspace(self, n_rows, batch=False):
        return self._engine.workspace(n_rows, self.sizes, batch=batch)

    def _scoring_workspace(self, n_rows):
        return self._engine.scoring_workspace(n_rows, self.sizes)

    def _gradients(self, work):
        return views(work.grads, v.param_shapes(self.sizes))

    def _optimizer(self, code, hyper, buffers):
        shapes = v.param_shapes(self.sizes)
        states = [pack(b, shapes, self.dtype) for b in buffers]
        return self._engine.optimizer(code, hyper, states)


class TwoLayerNet(CompiledNet):
    """A two-layer fully connected net with a softmax cross-entropy loss, compiled with Numba.

    input -> affine -> activation -> affine -> softmax, trained by minibatch SGD with L2
    regularisation ``reg * (sum(W1**2) + sum(W2**2))``. Same API and same numbers as the
    ``TwoLayerNet`` of CS231n assignment 1; :class:`mlp_numba.reference.TwoLayerNet` is the
    same maths in plain NumPy.

    Parameters
    ----------
    input_size : int
        Number of features D.
    hidden_size : int
        Number of hidden units H.
    output_size : int
        Number of classes C (>= 2).
    std : float, default 1e-4
        The initial weights are ``std * randn``; the biases start at zero.
    activation : str, default "relu"
        One of :data:`mlp_numba.ACTIVATIONS`.
    activation_params : dict, optional
        Settable parameters of the activation: ``{"slope": 0.01}`` for ``leaky_relu``,
        ``{"alpha": 1.0}`` for ``elu``.
    dtype : float64 (default) or float32
        The dtype of the params and of every array the net returns; inputs are converted to it.
    seed : None, int or numpy.random.Generator
        None (the course's behaviour): the initial weights and the minibatches come from NumPy's
        global random state, so ``np.random.seed(0)`` reproduces a course net. Otherwise they
        come from a private Generator and the global state is left alone.

    Attributes
    ----------
    params : dict-like
        ``W1`` (D, H), ``b1`` (H,), ``W2`` (H, C), ``b2`` (C,): the arrays the engine reads
        and writes, from construction on, so an array you hold stays the parameter (the
        course's numerical gradient check perturbs it in place). Training updates them in
        place; an array assigned to a key (or a whole dict) is copied into them.

    Examples
    --------
    >>> import numpy as np
    >>> from mlp_numba import TwoLayerNet
    >>> np.random.seed(0)
    >>> net = TwoLayerNet(4, 10, 3, std=1e-1)
    >>> np.random.seed(1)
    >>> X, y = 10 * np.random.randn(5, 4), np.array([0, 1, 2, 2, 1])
    >>> loss, grads = net.loss(X, y, reg=0.05)
    >>> round(float(loss), 6)
    1.303788
    """
