"""The executable specification: the nets in plain, vectorised NumPy.

This module does not touch the compiled engine. Its ``TwoLayerNet`` and ``MLP`` have the same
public API and the same numbers as :class:`mlp_numba.TwoLayerNet` and :class:`mlp_numba.MLP`;
the compiled kernels are tested against them. It is written to be obviously correct, not fast.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf, expit

from . import _validation as v
from ._activation_spec import SELU_ALPHA, SELU_SCALE
from ._base import DeepNetBase, NetBase
from ._dropout import masks

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
        return self._loss(X, y, reg)

    def _loss(self, X, y, reg, dropout=None):
        """``loss``; a training step's with ``dropout``, each hidden layer's output factors
        (``_dropout.masks``)."""
        X = v.check_features("X", X, self.sizes[0], self.dtype)
        reg = v.check_float("reg", reg, minimum=0.0)
        if y is not None:
            y = v.check_labels("y", y, X.shape[0], self.sizes[-1])
        params = v.check_params(self.params, self.sizes, self.dtype)
        weights, biases = params[0::2], params[1::2]
        N = X.shape[0]

        # Forward: each hidden layer's input, and its activation's derivative for later.
        inputs, derivatives = [X], []
        for k, (W, b) in enumerate(zip(weights[:-1], biases[:-1], strict=True)):
            a, act_grad = self._act(inputs[-1] @ W + b)
            inputs.append(a if dropout is None else a * dropout[k])
            derivatives.append(act_grad)
        scores = inputs[-1] @ weights[-1] + biases[-1]
        if y is None:
            return scores

        # Log-softmax through the row maximum: no overflow for large scores.
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        data_loss = -log_probs[np.arange(N), y].sum() / N
        loss = data_loss + reg * sum(np.sum(W * W) for W in weights)

        dscores = np.exp(log_probs)
        dscores[np.arange(N), y] -= 1
        dscores /= N
        grads, dz = {}, dscores
        for layer in range(len(weights), 0, -1):
            W = weights[layer - 1]
            grads[f"W{layer}"] = inputs[layer - 1].T @ dz + 2 * reg * W
            grads[f"b{layer}"] = dz.sum(axis=0)
            if layer > 1:
                dz = dz @ W.T
                if dropout is not None:
                    dz = dz * dropout[layer - 2]
                dz = dz * derivatives[layer - 2]()
        return self.dtype.type(loss), {k: grads[k] for k in self.params}

    def predict(self, X):
        """Class index of the highest score for each row of X, shape (N,)."""
        return np.argmax(self.loss(X), axis=1)

    def predict_proba(self, X):
        """Softmax probabilities of the classes, shape (N, C), rows summing to 1."""
        scores = self.loss(X)
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def _step_runner(self, X, y, reg, batch_size, state, dropout=None):
        return _ReferenceSteps(self, X, y, reg, state, dropout)


class MLP(DeepNetBase, TwoLayerNet):
    """A fully connected softmax net with any number of hidden layers, in plain NumPy.

    input -> (affine -> activation) per hidden layer -> affine -> softmax cross-entropy,
    with L2 ``reg`` on every weight matrix: ``loss = mean(-log softmax(scores)[y]) +
    reg * sum_l sum(Wl**2)``. The same maths as :class:`TwoLayerNet`, layer after layer; the
    constructor is :class:`mlp_numba.MLP`'s.

    Examples
    --------
    >>> import numpy as np
    >>> from mlp_numba.reference import MLP
    >>> net = MLP(4, (8, 6), 3, seed=0)
    >>> sorted(net.params)
    ['W1', 'W2', 'W3', 'b1', 'b2', 'b3']
    >>> net.loss(np.ones((2, 4))).shape
    (2, 3)
    """


class _ReferenceSteps:
    """The course's iterations, one ``loss`` and update at a time (``_training.StepRunner``)."""

    def __init__(self, net, X, y, reg, state, dropout):
        self.net, self.X, self.y, self.reg, self.state = net, X, y, reg, state
        self.dropout = dropout
        self.last = None

    def steps(self, batches, rates, step0):
        net, state = self.net, self.state
        losses = np.empty(len(batches), net.dtype)
        for t, idx in enumerate(batches):
            self.last = idx
            factors = None
            if self.dropout is not None:
                seed, p = self.dropout
                factors = masks(seed, step0 + t + 1, net.sizes, len(idx), p, net.dtype)
            loss, grads = net._loss(self.X[idx], self.y[idx], self.reg, factors)
            losses[t] = loss
            if not (np.isfinite(loss) and all(np.isfinite(g).all() for g in grads.values())):
                return t, losses
            for name in net.params:
                buffers = [b[name] for b in state["buffers"]]
                optimizer_update(
                    state["name"], state["params"], net.params[name], grads[name], buffers,
                    rates[t], step0 + t + 1,
                )  # fmt: skip
        return len(batches), losses

    def last_batch_accuracy(self):
        return (self.net.predict(self.X[self.last]) == self.y[self.last]).mean()


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
