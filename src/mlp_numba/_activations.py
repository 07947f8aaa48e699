"""Compiled activations: one registry from a name to its forward function and derivative.

Each forward is ``f(z, p)`` and each derivative ``df(z, a, p)``, scalar functions where ``z`` is
the pre-activation, ``a = f(z)`` and ``p`` the activation's parameters (a vector of the working
dtype, in the order ``_activation_spec.SPECS`` gives). Kernels call :func:`activate` and
:func:`activate_grad` with a *kind marker* (:func:`kind_marker`): an empty array whose record
dtype is named after the activation. Its Numba type carries the name, so each activation gets
its own specialised, inlined and cacheable machine code, and a call from Python dispatches in
about a microsecond (a string passed as a compile-time literal costs milliseconds a call).

To add an activation: add its entry to ``_activation_spec.SPECS``, a forward and derivative
here, and its NumPy formula to ``reference.REFERENCE_ACTIVATIONS``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.core import errors
from numba.extending import overload

from ._activation_spec import SELU_ALPHA, SELU_SCALE
from ._numba_utils import cast

_jit = njit(inline="always")


@_jit
def _sigmoid(z):
    # Two branches so that exp never overflows.
    if z >= 0:
        return cast(z, 1) / (cast(z, 1) + np.exp(-z))
    e = np.exp(z)
    return e / (cast(z, 1) + e)


@_jit
def _relu(z, p):
    return z if z > 0 else cast(z, 0)


@_jit
def _relu_grad(z, a, p):
    return cast(z, 1) if z > 0 else cast(z, 0)


@_jit
def _leaky_relu(z, p):
    return z if z > 0 else p[0] * z


@_jit
def _leaky_relu_grad(z, a, p):
    return cast(z, 1) if z > 0 else p[0]


@_jit
def _elu(z, p):
    return z if z > 0 else p[0] * np.expm1(z)


@_jit
def _elu_grad(z, a, p):
    return cast(z, 1) if z > 0 else p[0] * np.exp(z)


@_jit
def _selu(z, p):
    return cast(z, SELU_SCALE) * (z if z > 0 else cast(z, SELU_ALPHA) * np.expm1(z))


@_jit
def _selu_grad(z, a, p):
    return cast(z, SELU_SCALE) * (cast(z, 1) if z > 0 else cast(z, SELU_ALPHA) * np.exp(z))


@_jit
def _swish(z, p):
    return z * _sigmoid(z)


@_jit
def _swish_grad(z, a, p):
    s = _sigmoid(z)
    return s * (cast(z, 1) + z * (cast(z, 1) - s))


@_jit
def _gelu(z, p):
    return cast(z, 0.5) * z * (cast(z, 1) + math.erf(z / cast(z, math.sqrt(2.0))))


@_jit
def _gelu_grad(z, a, p):
    cdf = cast(z, 0.5) * (cast(z, 1) + math.erf(z / cast(z, math.sqrt(2.0))))
    pdf = cast(z, 1.0 / math.sqrt(2.0 * math.pi)) * np.exp(cast(z, -0.5) * z * z)
    return cdf + z * pdf


@_jit
def _gelu_tanh(z, p):
    inner = cast(z, math.sqrt(2.0 / math.pi)) * (z + cast(z, 0.044715) * z * z * z)
    return cast(z, 0.5) * z * (cast(z, 1) + np.tanh(inner))


@_jit
def _gelu_tanh_grad(z, a, p):
    k = cast(z, math.sqrt(2.0 / math.pi))
    t = np.tanh(k * (z + cast(z, 0.044715) * z * z * z))
    one = cast(z, 1)
    return cast(z, 0.5) * (one + t) + cast(z, 0.5) * z * (one - t * t) * k * (
        one + cast(z, 3 * 0.044715) * z * z
    )


@_jit
def _softplus(z, p):
    # log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)), which never overflows.
    return max(z, cast(z, 0)) + np.log1p(np.exp(-abs(z)))


@_jit
def _softplus_grad(z, a, p):
    return _sigmoid(z)


@_jit
def _sigmoid_act(z, p):
    return _sigmoid(z)


@_jit
def _sigmoid_grad(z, a, p):
    return a * (cast(z, 1) - a)


@_jit
def _tanh(z, p):
    return np.tanh(z)


@_jit
def _tanh_grad(z, a, p):
    return cast(z, 1) - a * a


@_jit
def _identity(z, p):
    return z


@_jit
def _identity_grad(z, a, p):
    return cast(z, 1)


#: name -> (forward, derivative); the names are those of ``_activation_spec.SPECS``.
COMPILED_ACTIVATIONS = {
    "relu": (_relu, _relu_grad),
    "leaky_relu": (_leaky_relu, _leaky_relu_grad),
    "elu": (_elu, _elu_grad),
    "selu": (_selu, _selu_grad),
    "swish": (_swish, _swish_grad),
    "gelu": (_gelu, _gelu_grad),
    "gelu_tanh": (_gelu_tanh, _gelu_tanh_grad),
    "softplus": (_softplus, _softplus_grad),
    "sigmoid": (_sigmoid_act, _sigmoid_grad),
    "tanh": (_tanh, _tanh_grad),
    "identity": (_identity, _identity_grad),
}


def kind_marker(name):
    """The empty array that selects the activation ``name`` in compiled code."""
    if name not in COMPILED_ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}")
    return np.empty(0, dtype=[(name, np.uint8)])


def _lookup(kind, which):
    if not (isinstance(kind, types.Array) and isinstance(kind.dtype, types.Record)):
        raise errors.TypingError(f"an activation kind marker is expected, got {kind}")
    (name,) = kind.dtype.fields
    return COMPILED_ACTIVATIONS[name][which]


def activate(kind, z, p):
    """``forward(z, p)`` of the activation that ``kind`` (a :func:`kind_marker`) names."""


def activate_grad(kind, z, a, p):
    """``derivative(z, a, p)`` of the activation that ``kind`` names."""


@overload(activate, inline="always")
def _activate_overload(kind, z, p):
    forward = _lookup(kind, 0)
    return lambda kind, z, p: forward(z, p)


@overload(activate_grad, inline="always")
def _activate_grad_overload(kind, z, a, p):
    derivative = _lookup(kind, 1)
    return lambda kind, z, a, p: derivative(z, a, p)
