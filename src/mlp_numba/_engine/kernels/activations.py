"""Compiled activations: one registry from a name to its forward function and derivative.

Each forward is ``f(z, p)`` and each derivative ``df(z, a, p)``, scalar functions where ``z`` is
the pre-activation, ``a = f(z)`` and ``p`` the activation's parameters (a vector of the working
dtype, in the order ``_activation_spec.SPECS`` gives). The activation is a run-time integer, its
position in ``SPECS`` (:func:`activation_code`): one compiled engine serves every activation,
so trying another one compiles nothing.

:func:`activate_rows` and :func:`activation_grad_rows` branch on it once per block of rows,
outside the loops, into a loop of each activation's own, which LLVM specialises (and
vectorises, where the formula is plain arithmetic). Each is one function holding every
activation's loop, so that Numba types and lowers two functions, not two per activation.

To add an activation: add its entry to ``_activation_spec.SPECS``, a forward and derivative
here and in :data:`COMPILED_ACTIVATIONS`, and its NumPy formula to
``reference.REFERENCE_ACTIVATIONS``.
"""

from __future__ import annotations

import math

import numpy as np

from ..._activation_spec import SELU_ALPHA, SELU_SCALE, SPECS
from .._jit import kernel, scalar
from .common import cast
from .reductions import flat


@scalar
def _sigmoid(z):
    # Two branches so that exp never overflows.
    if z >= 0:
        return cast(z, 1) / (cast(z, 1) + np.exp(-z))
    e = np.exp(z)
    return e / (cast(z, 1) + e)


@scalar
def _relu(z, p):
    return z if z > 0 else cast(z, 0)


@scalar
def _relu_grad(z, a, p):
    return cast(z, 1) if z > 0 else cast(z, 0)


@scalar
def _leaky_relu(z, p):
    return z if z > 0 else p[0] * z


@scalar
def _leaky_relu_grad(z, a, p):
    return cast(z, 1) if z > 0 else p[0]


@scalar
def _elu(z, p):
    return z if z > 0 else p[0] * np.expm1(z)


@scalar
def _elu_grad(z, a, p):
    return cast(z, 1) if z > 0 else p[0] * np.exp(z)


@scalar
def _selu(z, p):
    return cast(z, SELU_SCALE) * (z if z > 0 else cast(z, SELU_ALPHA) * np.expm1(z))


@scalar
def _selu_grad(z, a, p):
    return cast(z, SELU_SCALE) * (cast(z, 1) if z > 0 else cast(z, SELU_ALPHA) * np.exp(z))


@scalar
def _swish(z, p):
    return z * _sigmoid(z)


@scalar
def _swish_grad(z, a, p):
    s = _sigmoid(z)
    return s * (cast(z, 1) + z * (cast(z, 1) - s))


@scalar
def _gelu(z, p):
    return cast(z, 0.5) * z * (cast(z, 1) + math.erf(z / cast(z, math.sqrt(2.0))))


@scalar
def _gelu_grad(z, a, p):
    cdf = cast(z, 0.5) * (cast(z, 1) + math.erf(z / cast(z, math.sqrt(2.0))))
    pdf = cast(z, 1.0 / math.sqrt(2.0 * math.pi)) * np.exp(cast(z, -0.5) * z * z)
    return cdf + z * pdf


@scalar
def _gelu_tanh(z, p):
    inner = cast(z, math.sqrt(2.0 / math.pi)) * (z + cast(z, 0.044715) * z * z * z)
    return cast(z, 0.5) * z * (cast(z, 1) + np.tanh(inner))


@scalar
def _gelu_tanh_grad(z, a, p):
    k = cast(z, math.sqrt(2.0 / math.pi))
    t = np.tanh(k * (z + cast(z, 0.044715) * z * z * z))
    one = cast(z, 1)
    return cast(z, 0.5) * (one + t) + cast(z, 0.5) * z * (one - t * t) * k * (
        one + cast(z, 3 * 0.044715) * z * z
    )


@scalar
def _softplus(z, p):
    # log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)), which never overflows.
    return max(z, cast(z, 0)) + np.log1p(np.exp(-abs(z)))


@scalar
def _softplus_grad(z, a, p):
    return _sigmoid(z)


@scalar
def _sigmoid_act(z, p):
    return _sigmoid(z)


@scalar
def _sigmoid_grad(z, a, p):
    return a * (cast(z, 1) - a)


@scalar
def _tanh(z, p):
    return np.tanh(z)


@scalar
def _tanh_grad(z, a, p):
    return cast(z, 1) - a * a


@scalar
def _identity(z, p):
    return z


@scalar
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


def activation_code(name):
    """The run-time integer that selects the activation ``name`` (a canonical name)."""
    return tuple(SPECS).index(name)


def _branch_on_activation(name, which):
    """The kernel ``name(code, Z, A, [dA,] p, lo, hi)``: the forward (``which`` 0) or the
    derivative (1) of activation number ``code`` over rows lo:hi. Its source is written out
    here, one loop per entry of ``SPECS``, so that the registry stays the only list. The rows
    of the C-contiguous Z, A and dA are one run of memory, each loop one flat loop over it."""
    value = "(z[k], a[k], p)" if which else "(z[k], p)"
    lines = [
        f"def {name}(code, {'Z, A, dA' if which else 'Z, A'}, p, lo, hi):",
        "    lo, hi = lo * Z.shape[1], hi * Z.shape[1]",
        "    z, a = flat(Z)[lo:hi], flat(A)[lo:hi]",
    ]
    if which:
        lines.append("    d = flat(dA)[lo:hi]")
    namespace = {"flat": flat}
    for k, activation in enumerate(SPECS):
        namespace[f"f{k}"] = COMPILED_ACTIVATIONS[activation][which]
        update = f"d[k] *= f{k}{value}" if which else f"a[k] = f{k}{value}"
        lines += [
            f"    {'if' if k == 0 else 'elif'} code == {k}:",
            "        for k in range(z.size):",
            f"            {update}",
        ]
    exec("\n".join(lines), namespace)
    return kernel(namespace[name])


#: ``activate_rows(code, Z, A, p, lo, hi)``: A[lo:hi] = f(Z[lo:hi]).
activate_rows = _branch_on_activation("activate_rows", 0)
#: ``activation_grad_rows(code, Z, A, dA, p, lo, hi)``: dA[lo:hi] *= f'(Z[lo:hi]).
activation_grad_rows = _branch_on_activation("activation_grad_rows", 1)
