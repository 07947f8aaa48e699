"""The executable specification: the whole two-layer net in plain, vectorised NumPy.

This module does not touch the compiled engine. Its ``TwoLayerNet`` has the same public API and
the same numbers as :class:`mlp_numba.TwoLayerNet`; the compiled kernels are tested against it.
It is written to be obviously correct, not fast.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf, expit

from . import _validation as v
from ._activation_spec import SELU_ALPHA, SELU_SCALE
from ._base import NetBase
from ._optimizer_spec import resolve_optimizer, resolve_schedule, scheduled_rates
from ._training_plan import BatchSampler, make_early_stopping, validation_loss

# Python floats, not NumPy scalars: they must not promote float32 arrays to float64.
_SQRT_2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _gelu_tanh_inner(z):
    return _SQRT_2_OVER_PI * (z + 0.044715 * z**3)


def _gelu_tanh_grad(z, a):
    t = np.tanh(_gelu_tanh_inner(z))
    return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * z * z)


# name -> (forward(z, **params), derivative(z, a, **params)) where a = forward(z).
# exp(minimum(z, 0)) keeps the branch np.where does not select from overflowing.
REFERENCE_ACTIVATIONS = {
    "relu": (lambda z: np.maximum(z, 0), lambda z, a: (z > 0).astype(z.dtype)),
    "leaky_relu": (
        lambda z, slope: np.where(z > 0, z, slope * z),
        lambda z, a, slope: np.where(z > 0, 1, slope).astype(z.dtype),
    ),
    "elu": (
        lambda z, alpha: np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0))),
        lambda z, a, alpha: np.where(z > 0, 1, alpha * np.exp(np.minimum(z, 0))).astype(z.dtype),
    ),
    "selu": (
        lambda z: SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0))),
        lambda z, a: SELU_SCALE * np.where(z > 0, 1, SELU_ALPHA * np.exp(np.minimum(z, 0))),
    ),
    "swish": (
        lambda z: z * expit(z),
        lambda z, a: expit(z) * (1 + z * (1 - expit(z))),
    ),
    "gelu": (
        lambda z: 0.5 * z * (1 + erf(z / _SQRT_2)),
        lambda z, a: 0.5 * (1 + erf(z / _SQRT_2)) + z * _INV_SQRT_2PI * np.exp(-0.5 * z * z),
    ),
    "gelu_tanh": (lambda z: 0.5 * z * (1 + np.tanh(_gelu_tanh_inner(z))), _gelu_tanh_grad),
    "softplus": (lambda z: np.logaddexp(0, z), lambda z, a: expit(z)),
    "sigmoid": (lambda z: expit(z), lambda z, a: a * (1 - a)),
    "tanh": (np.tanh, lambda z, a: 1 - a * a),
    "identity": (lambda z: z.copy(), lambda z, a: np.ones_like(z)),
}


class TwoLayerNet(NetBase):
    """A two-layer fully connected net, exactly as CS231n assignment 1 defines it, in NumPy.

    input -> affine -> activation -> affine -> softmax cross-entropy, with L2 ``reg`` on the
    weights: ``loss = mean(-log softmax(scores)[y]) + reg * (sum(W1**2) + sum(W2**2))``.

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        D, H and C.
    std : float
        Scale of the initial weights, drawn as ``std * randn``.
    activation : str
        One of :data:`mlp_numba.ACTIVATIONS`.
    activation_params : dict, optional
        Settable parameters of the activation, e.g. ``{"slope": 0.2}`` for ``leaky_relu``.
    dtype : float64 or float32
        Every array the net computes with and returns has this dtype.
    seed : None, int or numpy.random.Generator
        None draws the initial weights and the minibatches from NumPy's global random state,
        as the course does; otherwise from a private Generator.

    Examples
    --------
    >>> import numpy as np
    >>> from mlp_numba.reference import TwoLayerNet
    >>> net = TwoLayerNet(4, 10, 3, std=1e-1, seed=0)
    >>> bool(net.loss(np.ones((2, 4)), np.array([0, 2]))[0] > 0)
    True
    """

    def _act(self, z):
        forward, derivative = REFERENCE_ACTIVATIONS[self.activation]
        a = forward(z, **self.activation_params)
        return a, lambda: derivative(z, a, **self.activation_params).astype(z.dtype)

    def loss(self, X, y=None, reg=0.0):
        """Scores (N, C) without ``y``; with ``y``, ``(loss, grads)``."""
        X = v.check_features("X", X, self.sizes[0], self.dtype)
        reg = v.check_float("reg", reg, minimum=0.0)
        if y is not None:
            y = v.check_labels("y", y, X.shape[0], self.sizes[2])
        W1, b1, W2, b2 = v.check_params(self.params, self.sizes, self.dtype)
        N = X.shape[0]

        z1 = X @ W1 + b1
        a1, act_grad = self._act(z1)
        scores = a1 @ W2 + b2
        if y is None:
            return scores

        # Log-softmax through the row maximum: no overflow for large scores.
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        data_loss = -log_probs[np.arange(N), y].sum() / N
        loss = data_loss + reg * (np.sum(W1 * W1) + np.sum(W2 * W2))

        dscores = np.exp(log_probs)
        dscores[np.arange(N), y] -= 1
        dscores /= N
        dz1 = (dscores @ W2.T) * act_grad()
        grads = {
            "W1": X.T @ dz1 + 2 * reg * W1,
            "b1": dz1.sum(axis=0),
            "W2": a1.T @ dscores + 2 * reg * W2,
            "b2": dscores.sum(axis=0),
        }
        return self.dtype.type(loss), grads

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
    ):
        """The course's loop, with the same options as :meth:`mlp_numba.TwoLayerNet.train`."""
        X, y, X_val, y_val = self._check_train_data(X, y, X_val, y_val)
        learning_rate, learning_rate_decay, reg, num_iters, batch_size = v.check_train_args(
            learning_rate, learning_rate_decay, reg, num_iters, batch_size
        )
        optimizer, optimizer_params = resolve_optimizer(optimizer, optimizer_params)
        schedule, schedule_params = resolve_schedule(schedule, schedule_params)
        state = self._optimizer_state_for(optimizer, optimizer_params)
        base_rate = learning_rate
        num_train = X.shape[0]
        if iterations_per_epoch is None:
            iterations_per_epoch = max(num_train / batch_size, 1)
        else:
            iterations_per_epoch = v.check_int("iterations_per_epoch", iterations_per_epoch, 1)

        loss_history, train_acc_history, val_acc_history = [], [], []
        sampler = BatchSampler(self._rng, num_train, batch_size, sampling)
        stopper = make_early_stopping(early_stopping)
        for it in range(num_iters):
            idx = sampler.draw(1)[0]
            X_batch, y_batch = X[idx], y[idx]

            loss, grads = self.loss(X_batch, y=y_batch, reg=reg)
            if not (np.isfinite(loss) and all(np.isfinite(g).all() for g in grads.values())):
                raise v.TrainingDivergedError(
                    it,
                    loss,
                    {
                        "loss_history": loss_history,
                        "train_acc_history": train_acc_history,
                        "val_acc_history": val_acc_history,
                    },
                )
            loss_history.append(loss)
            rate = scheduled_rates(
                schedule, schedule_params, base_rate, learning_rate, it, 1, num_iters, self.dtype
            )[0]
            state["step"] += 1
            for name in ("W1", "b1", "W2", "b2"):
                buffers = [b[name] for b in state["buffers"]]
                optimizer_update(
                    optimizer, optimizer_params, self.params[name], grads[name], buffers, rate,
                    state["step"],
                )  # fmt: skip

            if verbose and it % 100 == 0:
                print(f"iteration {it} / {num_iters}: loss {loss:f}")
            if it % iterations_per_epoch == 0:
                train_acc_history.append((self.predict(X_batch) == y_batch).mean())
                val_acc_history.append((self.predict(X_val) == y_val).mean())
                if schedule == "step":
                    learning_rate *= learning_rate_decay
                if stopper is not None:
                    val_loss = (
                        validation_loss(self.predict_proba(X_val), y_val)
                        if stopper.monitor == "val_loss"
                        else None
                    )
                    if stopper.update(val_acc_history[-1], val_loss, it + 1, self.params):
                        break

        history = {
            "loss_history": loss_history,
            "train_acc_history": train_acc_history,
            "val_acc_history": val_acc_history,
        }
        if stopper is not None:
            stopper.restore(self.params)
            history.update(stopper.summary())
        return history

    def predict(self, X):
        """Class index of the highest score for each row of X, shape (N,)."""
        return np.argmax(self.loss(X), axis=1)

    def predict_proba(self, X):
        """Softmax probabilities of the classes, shape (N, C), rows summing to 1."""
        scores = self.loss(X)
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def optimizer_update(name, values, param, grad, buffers, rate, step):
    """One update of ``param`` (in place) by the optimizer ``name``, in plain NumPy.

    ``buffers`` are the optimizer's state arrays for this param (updated in place), ``rate``
    the learning rate and ``step`` the optimizer step (1, 2, ...). The formulas are the
    compiled kernels' (``_updates.update``), term for term.
    """
    dt = param.dtype.type
    lr = dt(rate)
    if name == "sgd":
        param -= lr * grad
    elif name in ("momentum", "nesterov"):
        mu = dt(values["momentum"])
        (velocity,) = buffers
        previous = velocity.copy()
        velocity[...] = mu * previous - lr * grad
        if name == "nesterov":
            param[...] = param - mu * previous + (dt(1) + mu) * velocity
        else:
            param += velocity
    else:
        beta1, beta2, eps = dt(values["beta1"]), dt(values["beta2"]), dt(values["eps"])
        decay = dt(values.get("weight_decay", 0.0))
        m, s = buffers
        m[...] = beta1 * m + (dt(1) - beta1) * grad
        s[...] = beta2 * s + (dt(1) - beta2) * (grad * grad)
        correction1 = dt(1.0 - float(values["beta1"]) ** step)
        correction2 = dt(1.0 - float(values["beta2"]) ** step)
        param[...] = param - lr * (
            (m / correction1) / (np.sqrt(s / correction2) + eps) + decay * param
        )
