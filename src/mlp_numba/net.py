"""The public ``TwoLayerNet``: a drop-in for the CS231n class, on compiled kernels.

This module validates and prepares inputs and keeps the course's bookkeeping (histories,
epochs, decay, verbose lines); every numerical loop runs in ``_engine``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from . import _engine as engine
from . import _validation as v
from ._activation_spec import param_vector
from ._activations import kind_marker
from ._base import NetBase
from ._optimizer_spec import (
    OPTIMIZERS,
    hyper_vector,
    resolve_optimizer,
    resolve_schedule,
    scheduled_rates,
)
from ._training_plan import BatchSampler, make_early_stopping, validation_loss

# Iterations run per compiled call at most, between the course's epoch and verbose points.
_MAX_BLOCK = 256
# Blocks are sized to take about this long, so that Python (Ctrl-C, a progress callback) gets
# control back several times a second; a return costs microseconds, a block milliseconds.
_BLOCK_SECONDS = 0.1
# Rows scored per compiled call by predict, predict_proba and loss(X). It bounds the scratch
# memory, and small buffers stay in cache from one chunk to the next and cost few page faults:
# predict on 10,000 MNIST rows (float64) took 1.37x its first product with 8192 and 1.14x with
# 2048 (measured here).
_SCORE_ROWS = 2048


class TwoLayerNet(NetBase):
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
    params : dict
        ``W1`` (D, H), ``b1`` (H,), ``W2`` (H, C), ``b2`` (C,). Training updates them in place.

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

    def __repr__(self):
        extra = "".join(f", {k}={val!r}" for k, val in self.activation_params.items())
        return (
            f"TwoLayerNet(input_size={self.input_size}, hidden_size={self.hidden_size}, "
            f"output_size={self.output_size}, activation={self.activation!r}{extra}, "
            f"dtype={self.dtype.name})"
        )

    def _params(self):
        return v.check_params(self.params, self.sizes, self.dtype)

    def _check_features(self, name, X):
        # The compiled finiteness pass: 14 ms where NumPy's mask took 21 ms on 10400 x 3072.
        return v.check_features(name, X, self.input_size, self.dtype, engine.all_finite)

    def _model(self):
        """The params and the activation (kind marker, parameter vector) as kernels take them."""
        ap = param_vector(self.activation, self.activation_params, self.dtype)
        return (*self._params(), kind_marker(self.activation), ap)

    def _new_scores(self, n_rows):
        return np.empty((n_rows, self.output_size), self.dtype)

    def _scored(self, X, kernel, out):
        """Run a scoring ``kernel`` over the rows of ``X`` in chunks; ``out(n_rows)`` makes the
        output array, which the kernel fills chunk by chunk.

        X is converted but not checked for NaN and inf first: the kernels report whether the
        hidden pre-activations were finite, and only when not is X itself checked (raising
        ValueError when X is to blame).
        """
        X, given = v.features_as("X", X, self.input_size, self.dtype)
        out = out(len(X))
        W1, b1, W2, b2, act, ap = self._model()
        work = engine.Workspace(min(len(X), _SCORE_ROWS), self.sizes, self.dtype)
        finite = True
        for start in range(0, len(X), _SCORE_ROWS):
            rows = slice(start, start + _SCORE_ROWS)
            buffers = work.rows(len(X[rows]))
            finite &= kernel(X[rows], W1, b1, W2, b2, act, ap, buffers, out[rows])
        if not finite:
            v.check_finite("X", X, given, engine.all_finite)
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
            return self._scored(X, _store_scores, self._new_scores)
        X = self._check_features("X", X)
        reg = v.check_float("reg", reg, minimum=0.0)
        y = v.check_labels("y", y, len(X), self.output_size)
        W1, b1, W2, b2, act, ap = self._model()
        work = engine.Workspace(len(X), self.sizes, self.dtype)
        grads = engine.new_grads(self.sizes, self.dtype)
        loss = engine.loss_and_grads(
            X, y, W1, b1, W2, b2, self.dtype.type(reg), act, ap, work.buffers, grads
        )
        return self.dtype.type(loss), dict(zip(("W1", "b1", "W2", "b2"), grads, strict=True))

    def predict(self, X):
        """Predicted class of each row of X: the argmax of its scores, shape (N,).

        Examples
        --------
        >>> import numpy as np
        >>> from mlp_numba import TwoLayerNet
        >>> TwoLayerNet(3, 5, 2, seed=0).predict(np.eye(3)).shape
        (3,)
        """
        return self._scored(X, engine.predict, lambda n: np.empty(n, np.intp))

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
        return self._scored(X, engine.predict_proba, self._new_scores)

    def train(
        self,
        X,
        y,
        X_val,
        y_val,
        learning_rate=1e-3,
        learning_rate_decay=0.95,
        reg=5e-6,
        num_iters=100,
        batch_size=200,
        verbose=False,
        *,
        optimizer="sgd",
        optimizer_params=None,
        schedule="step",
        schedule_params=None,
        sampling="replacement",
        early_stopping=None,
        iterations_per_epoch=None,
        callback=None,
    ):
        """Train with minibatch SGD, exactly as the course's ``train``.

        Each iteration samples ``batch_size`` rows with replacement (``np.random.choice`` on the
        global random state, or the net's Generator when it was given a seed), takes a plain
        SGD step on their loss, and records the loss. At ``it % iterations_per_epoch == 0``
        (it = 0 included) it records the accuracy on that minibatch and on all of X_val, then
        multiplies the learning rate by ``learning_rate_decay``.

        Parameters
        ----------
        X, y : array_like
            Training data (N, D) and labels (N,).
        X_val, y_val : array_like
            Validation data and labels.
        learning_rate : float, default 1e-3
        learning_rate_decay : float, default 0.95
            Applied once per epoch.
        reg : float, default 5e-6
        num_iters : int, default 100
        batch_size : int, default 200
        verbose : bool, default False
            Print ``iteration %d / %d: loss %f`` every 100 iterations.
        optimizer : str, default "sgd"
            ``"sgd"`` (the course's ``p -= learning_rate * grad``), ``"momentum"``,
            ``"nesterov"`` (CS231n's form), ``"adam"`` or ``"adamw"`` (Adam with decoupled
            weight decay). Its state (velocities, moments, step count) is kept in
            ``self.optimizer_state`` between calls and in model files, so training resumes.
        optimizer_params : dict, optional
            ``{"momentum": 0.9}``; for Adam ``{"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}``,
            plus ``"weight_decay": 0.01`` for AdamW.
        schedule : str, default "step"
            ``"step"`` (the course's: multiply by ``learning_rate_decay`` at each epoch end),
            ``"constant"``, ``"invscaling"`` (``learning_rate / (it + 1) ** power_t``) or
            ``"cosine"`` (from ``learning_rate`` to ``min_lr`` over ``num_iters``).
        schedule_params : dict, optional
            ``{"power_t": 0.5}`` for invscaling, ``{"min_lr": 0.0}`` for cosine.
        sampling : {"replacement", "permutation"}, default "replacement"
            Minibatches drawn with replacement (the course's), or through a fresh permutation
            of the training rows each epoch.
        early_stopping : None, True or dict, optional
            Stop when the validation score has not improved for ``patience`` epoch ends and
            put back the best params: True, or a dict of ``patience`` (10), ``monitor``
            (``"val_acc"`` or ``"val_loss"``) and ``min_delta`` (0.0). The history then
            also has ``best_iteration``, ``best_val_score`` and ``stopped_early``.
        iterations_per_epoch : int, optional
            The length of an epoch in iterations. Default: the course's
            ``max(num_train / batch_size, 1)``, a float, so that when it is not a whole number
            ``it % iterations_per_epoch == 0`` holds only at it = 0 and the learning rate
            decays once. An integer gives an epoch end (accuracies, decay) every that many
            iterations. Not part of the course's API.
        callback : callable, optional
            Called as ``callback(progress)`` with a :class:`TrainingProgress` several times a
            second (between compiled blocks of iterations); returning ``False`` stops
            training there, with the params and histories of the iterations done. Not part
            of the course's API; results do not depend on it.

        Returns
        -------
        dict
            ``loss_history`` (one loss per iteration), ``train_acc_history`` and
            ``val_acc_history`` (one accuracy per epoch).

        Raises
        ------
        TrainingDivergedError
            When an iteration's loss or gradient is not finite; the params keep their values
            from before it, and the error carries the iteration and the histories so far.
            (The minibatch indices of the current block were already drawn.)

        Examples
        --------
        >>> import numpy as np
        >>> from mlp_numba import TwoLayerNet
        >>> rng = np.random.default_rng(0)
        >>> X, y = rng.standard_normal((50, 4)), rng.integers(0, 3, 50)
        >>> net = TwoLayerNet(4, 10, 3, std=1e-1, seed=0)
        >>> stats = net.train(X, y, X, y, learning_rate=0.1, num_iters=20, batch_size=10)
        >>> len(stats["loss_history"]), len(stats["val_acc_history"])
        (20, 4)
        """
        X, y, X_val, y_val = self._check_train_data(X, y, X_val, y_val)
        learning_rate, learning_rate_decay, reg, num_iters, batch_size = v.check_train_args(
            learning_rate, learning_rate_decay, reg, num_iters, batch_size
        )
        W1, b1, W2, b2, act, ap = self._model()
        dt = self.dtype.type
        optimizer, optimizer_params = resolve_optimizer(optimizer, optimizer_params)
        schedule, schedule_params = resolve_schedule(schedule, schedule_params)
        state = self._optimizer_state_for(optimizer, optimizer_params)
        code = OPTIMIZERS[optimizer][0]
        hyper = hyper_vector(optimizer, optimizer_params)
        empty = tuple(np.empty((0,) * p.ndim, self.dtype) for p in (W1, b1, W2, b2))
        state1, state2 = (
            tuple(state["buffers"][i][k] for k in ("W1", "b1", "W2", "b2"))
            if i < len(state["buffers"])
            else empty
            for i in range(2)
        )
        base_rate = learning_rate

        num_train = len(X)
        if iterations_per_epoch is None:
            iterations_per_epoch = max(num_train / batch_size, 1)
        else:
            iterations_per_epoch = v.check_int("iterations_per_epoch", iterations_per_epoch, 1)
        history = {"loss_history": [], "train_acc_history": [], "val_acc_history": []}
        sampler = BatchSampler(self._rng, num_train, batch_size, sampling)
        stopper = make_early_stopping(early_stopping)

        def is_epoch_end(it):
            return it % iterations_per_epoch == 0

        def is_report(it):
            return bool(verbose) and it % 100 == 0

        Xb = np.empty((batch_size, self.input_size), self.dtype)
        yb = np.empty(batch_size, np.intp)
        work = engine.Workspace(batch_size, self.sizes, self.dtype, engine.STEP_PARTS)
        grads = engine.new_grads(self.sizes, self.dtype)
        losses = np.empty(_MAX_BLOCK, self.dtype)
        batch_pred = np.empty(batch_size, np.intp)
        val_pred = np.empty(len(X_val), np.intp)

        it, block = 0, 1
        while it < num_iters:
            # Run up to the next point where the course does something in Python.
            end = it
            while (
                end < num_iters - 1
                and end - it + 1 < block
                and not (is_epoch_end(end) or is_report(end))
            ):
                end += 1
            started = time.perf_counter()
            batches = sampler.draw(end - it + 1)
            rates = scheduled_rates(
                schedule, schedule_params, base_rate, learning_rate, it, len(batches), num_iters,
                self.dtype,
            )  # fmt: skip
            done = engine.train_steps(
                X, y, batches, W1, b1, W2, b2, rates, dt(reg), code, hyper, state["step"],
                state1, state2, act, ap, Xb, yb, work.buffers, grads, losses,
            )  # fmt: skip
            state["step"] += done
            history["loss_history"].extend(losses[:done])
            if done < len(batches):
                raise v.TrainingDivergedError(it + done, losses[done], history)
            it = end + 1
            seconds = time.perf_counter() - started
            block = min(_MAX_BLOCK, max(1, round(done * _BLOCK_SECONDS / max(seconds, 1e-9))))

            if is_report(end):
                print(f"iteration {end} / {num_iters}: loss {losses[done - 1]:f}")
            if is_epoch_end(end):
                engine.predict(Xb, W1, b1, W2, b2, act, ap, work.buffers, batch_pred)
                history["train_acc_history"].append((batch_pred == yb).mean())
                self._scored(X_val, engine.predict, lambda _: val_pred)  # reuses val_pred
                history["val_acc_history"].append((val_pred == y_val).mean())
                if schedule == "step":
                    learning_rate *= learning_rate_decay
                if stopper is not None and stopper.update(
                    history["val_acc_history"][-1],
                    validation_loss(self.predict_proba(X_val), y_val)
                    if stopper.monitor == "val_loss"
                    else None,
                    it,
                    self.params,
                ):
                    break
            if callback is not None:
                progress = TrainingProgress(it, num_iters, float(losses[done - 1]), history)
                if callback(progress) is False:
                    break
        if stopper is not None:
            stopper.restore(self.params)
            history.update(stopper.summary())
        return history


@dataclass(frozen=True)
class TrainingProgress:
    """What a ``train`` callback receives: how far training is and how it is going."""

    #: Iterations done so far.
    iteration: int
    #: Iterations asked for.
    num_iters: int
    #: The loss of the last iteration done.
    loss: float
    #: The histories so far (the dict ``train`` returns; do not modify it).
    history: dict

    @property
    def val_acc(self):
        """The last validation accuracy recorded (at an epoch end), or None."""
        values = self.history["val_acc_history"]
        return float(values[-1]) if values else None


def _store_scores(X, W1, b1, W2, b2, act, ap, work, out):
    finite = engine.scores(X, W1, b1, W2, b2, act, ap, work)
    out[...] = work[3]
    return finite
