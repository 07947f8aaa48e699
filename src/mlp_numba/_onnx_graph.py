"""The ONNX graph of a net's inference, written once for every way it is emitted.

:func:`add_net` adds the nodes that take a float input (N, D) to the labels (N,) and the class
probabilities (N, C) through an :class:`Emitter`: one that collects a standalone graph
(``mlp_numba.onnx.to_onnx``), or one over skl2onnx's scope and container (the converter that
lets a pipeline holding the estimator convert). Every activation is built from operators that
onnxruntime's CPU provider runs in float64 as in float32 (its Erf, Elu, Selu and Softplus
kernels are float32 only), so a float64 net stays float64; the exact GELU's erf is a series
in float64 (below).
"""

from __future__ import annotations

import math

import numpy as np
from onnx import TensorProto, helper

from ._activation_spec import SELU_ALPHA, SELU_SCALE

#: ONNX element types of the nets' dtypes.
ELEMENT_TYPES = {np.dtype(np.float64): TensorProto.DOUBLE, np.dtype(np.float32): TensorProto.FLOAT}


class Emitter:
    """Adds constants and nodes to a graph; each returns the name of what it made."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)

    def const(self, array, hint="c"):
        """An initializer holding ``array`` (numbers in the net's dtype unless integer)."""
        raise NotImplementedError

    def node(self, op_type, inputs, hint=None, outputs=None, **attributes):
        """A node; its output is a fresh name, or ``outputs`` (a list of one name) when given."""
        raise NotImplementedError

    def scalar(self, value):
        return self.const(np.array(value, self.dtype), "k")

    def strings(self, values, hint="classes"):
        """An initializer of strings."""
        raise NotImplementedError


def _where_positive(e, z, positive, otherwise):
    return e.node("Where", [e.node("Greater", [z, e.scalar(0)]), positive, otherwise])


def _expm1(e, z):
    return e.node("Sub", [e.node("Exp", [z]), e.scalar(1)])


def _sigmoid(e, z):
    # Two branches so that exp never overflows where it is used (Where drops the other).
    one = e.scalar(1)
    e_neg = e.node("Exp", [e.node("Neg", [z])])
    e_pos = e.node("Exp", [z])
    up = e.node("Div", [one, e.node("Add", [one, e_neg])])
    down = e.node("Div", [e_pos, e.node("Add", [one, e_pos])])
    return e.node("Where", [e.node("GreaterOrEqual", [z, e.scalar(0)]), up, down])


#: erf(x) = 2 / sqrt(pi) * x * sum_n c_n (x**2)**n for |x| < 2.5 (40 terms: 3e-15 at most in
#: NumPy), and erfc(x) = exp(-x**2) / sqrt(pi) / (x + 1/2 / (x + 1 / (x + 3/2 / ...))) beyond
#: (30 levels: 6e-18); checked against math.erf through onnxruntime in the tests. (Up to 3 the
#: series' terms grow large enough that onnxruntime's rewrites of the graph cost 1e-10.)
_TAYLOR = [(-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(40)]
_FRACTION_LEVELS = 30
_SERIES_LIMIT = 2.5


def _erf(e, x):
    """erf(x) from Mul, Add, Div, Exp and Where: float64 where onnxruntime's Erf is not."""
    if e.dtype == np.float32:
        return e.node("Erf", [x])
    ax = e.node("Abs", [x])
    y = e.node("Mul", [x, x])
    series = e.scalar(_TAYLOR[-1])
    for c in reversed(_TAYLOR[:-1]):
        series = e.node("Add", [e.node("Mul", [series, y]), e.scalar(c)])
    small = e.node("Mul", [e.node("Mul", [x, series]), e.scalar(2 / math.sqrt(math.pi))])
    # The fraction on max(|x|, limit), so that the branch Where drops stays finite.
    a = e.node("Max", [ax, e.scalar(_SERIES_LIMIT)])
    t = a
    for k in range(_FRACTION_LEVELS, 0, -1):
        t = e.node("Add", [a, e.node("Div", [e.scalar(k / 2), t])])
    tail = e.node("Exp", [e.node("Neg", [e.node("Mul", [a, a])])])
    erfc = e.node("Div", [e.node("Mul", [tail, e.scalar(1 / math.sqrt(math.pi))]), t])
    large = e.node("Mul", [e.node("Sign", [x]), e.node("Sub", [e.scalar(1), erfc])])
    return e.node("Where", [e.node("Less", [ax, e.scalar(_SERIES_LIMIT)]), small, large])


def _relu(e, z, p):
    return e.node("Relu", [z])


def _leaky_relu(e, z, p):
    return _where_positive(e, z, z, e.node("Mul", [z, e.scalar(p["slope"])]))


def _elu(e, z, p):
    return _where_positive(e, z, z, e.node("Mul", [_expm1(e, z), e.scalar(p["alpha"])]))


def _selu(e, z, p):
    negative = e.node("Mul", [_expm1(e, z), e.scalar(SELU_ALPHA)])
    return e.node("Mul", [_where_positive(e, z, z, negative), e.scalar(SELU_SCALE)])


def _swish(e, z, p):
    return e.node("Mul", [z, _sigmoid(e, z)])


def _gelu(e, z, p):
    phi = e.node("Add", [e.scalar(1), _erf(e, e.node("Mul", [z, e.scalar(1 / math.sqrt(2))]))])
    return e.node("Mul", [e.node("Mul", [z, phi]), e.scalar(0.5)])


def _gelu_tanh(e, z, p):
    cube = e.node("Mul", [e.node("Mul", [z, z]), z])
    inner = e.node("Add", [z, e.node("Mul", [cube, e.scalar(0.044715)])])
    t = e.node("Tanh", [e.node("Mul", [inner, e.scalar(math.sqrt(2 / math.pi))])])
    return e.node("Mul", [e.node("Mul", [z, e.node("Add", [e.scalar(1), t])]), e.scalar(0.5)])


def _softplus(e, z, p):
    # max(z, 0) + log(1 + exp(-|z|)): never overflows.
    rest = e.node("Exp", [e.node("Neg", [e.node("Abs", [z])])])
    log = e.node("Log", [e.node("Add", [e.scalar(1), rest])])
    return e.node("Add", [e.node("Max", [z, e.scalar(0)]), log])


def _sigmoid_activation(e, z, p):
    return _sigmoid(e, z)


def _tanh(e, z, p):
    return e.node("Tanh", [z])


def _identity(e, z, p):
    return e.node("Identity", [z])


#: name -> the nodes of its forward function; the names are those of ``_activation_spec.SPECS``.
ONNX_ACTIVATIONS = {
    "relu": _relu,
    "leaky_relu": _leaky_relu,
    "elu": _elu,
    "selu": _selu,
    "swish": _swish,
    "gelu": _gelu,
    "gelu_tanh": _gelu_tanh,
    "softplus": _softplus,
    "sigmoid": _sigmoid_activation,
    "tanh": _tanh,
    "identity": _identity,
}


def add_net(e, X, net, classes, label, probabilities):
    """The nodes from input ``X`` (a name, of the net's dtype) through ``net``'s layers to the
    outputs named ``label`` (``classes[argmax]``) and ``probabilities``. ``classes`` holds
    integers or strings; with one class the net's second output is never a label and every
    probability is 1 (as the estimator answers)."""
    params, L = net.params, len(net.sizes) - 1
    h = X
    for layer in range(1, L + 1):
        W = e.const(np.ascontiguousarray(params[f"W{layer}"], e.dtype), f"W{layer}")
        b = e.const(np.ascontiguousarray(params[f"b{layer}"], e.dtype), f"b{layer}")
        h = e.node("Gemm", [h, W, b], f"affine{layer}")
        if layer < L:
            h = ONNX_ACTIVATIONS[net.activation](e, h, net.activation_params)
    index = e.node("ArgMax", [h], "best", axis=1, keepdims=0)
    if len(classes) == 1:
        index = e.node("Mul", [index, e.const(np.array(0, np.int64), "zero")])
        shape = e.node("Concat", [
            e.node("Slice", [e.node("Shape", [X]), *_ints(e, [0], [1])]),
            e.const(np.array([1], np.int64), "one_column"),
        ], axis=0)  # fmt: skip
        value = helper.make_tensor("one", ELEMENT_TYPES[e.dtype], [1], [1.0])
        e.node("ConstantOfShape", [shape], outputs=[probabilities], value=value)
    else:
        e.node("Softmax", [h], outputs=[probabilities], axis=1)
    if np.asarray(classes).dtype.kind in "OUS":
        table = e.strings([str(c) for c in classes])
    else:
        table = e.const(np.asarray(classes, np.int64), "classes")
    e.node("Gather", [table, index], outputs=[label], axis=0)


def _ints(e, *lists):
    return [e.const(np.array(values, np.int64), "i") for values in lists]
