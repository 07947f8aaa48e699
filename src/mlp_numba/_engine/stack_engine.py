"""The engine of a net of any depth, and the packed vectors and buffers it lends.

:class:`StackEngine` is :class:`~mlp_numba._engine.Engine` on another entry point
(``stack_entry.run``) and other bundles (``bundles.Stack``): the same methods, the same
operations, compiled once per dtype for every depth and width.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from .. import _dropout
from . import Engine, stack_entry
from .bundles import Outputs, Stack, StackOptimizer, StackSteps, StackWorkspace
from .kernels.activations import activation_code
from .kernels.common import BLAS_PIECES, N_CHUNKS

__all__ = ["StackEngine", "pack", "stack", "stack_optimizer", "steps", "views", "workspace"]


def views(vector, shapes):
    """The consecutive views of ``vector`` shaped as ``shapes`` (name -> shape), by name."""
    result, start = {}, 0
    for name, shape in shapes.items():
        size = math.prod(shape)
        result[name] = vector[start : start + size].reshape(shape)
        start += size
    return result


def pack(arrays, shapes, dtype):
    """The vector that packs ``arrays[name]`` for each name of ``shapes``, in that order.

    When the arrays are already the views of one such vector (as :func:`pack` leaves them),
    that vector is returned and nothing is copied; otherwise a new vector gets their values,
    and ``arrays`` (a dict) gets its views in their place, so that updating the vector
    updates the arrays.
    """
    sizes = [math.prod(shape) for shape in shapes.values()]
    base = next(iter(arrays.values())).base if arrays else None
    if _is_packing(base, arrays, shapes, sizes, dtype):
        return base
    vector = np.empty(sum(sizes), dtype)
    for name, view in views(vector, shapes).items():
        view[...] = arrays[name]
        arrays[name] = view
    return vector


def _is_packing(base, arrays, shapes, sizes, dtype):
    """Whether ``base`` is a vector whose consecutive views are ``arrays``, as shaped."""
    if not (isinstance(base, np.ndarray) and base.ndim == 1 and base.dtype == dtype):
        return False
    if base.size != sum(sizes) or not base.flags.c_contiguous:
        return False
    address, start = base.__array_interface__["data"][0], 0
    for (name, shape), size in zip(shapes.items(), sizes, strict=True):
        a = arrays.get(name)
        if not (isinstance(a, np.ndarray) and a.base is base and a.shape == shape):
            return False
        if a.__array_interface__["data"][0] != address + start * base.itemsize:
            return False
        if not a.flags.c_contiguous:
            return False
        start += size
    return True


def stack(params, widths, activation, activation_params):
    """The :class:`~.bundles.Stack` of a packed params vector and the widths n0, ..., nL."""
    return Stack(
        params, np.asarray(widths, np.int64), activation_code(activation), activation_params
    )


@functools.cache
def _empty(dtype):
    return np.empty(0, dtype)


def stack_optimizer(code, hyper, states, dtype):
    """The :class:`~.bundles.StackOptimizer` of zero to two packed state vectors."""
    states = list(states) + [_empty(dtype)] * (2 - len(states))
    return StackOptimizer(int(code), hyper, states[0], states[1])


def steps(batches, rates, reg, step0, dropout=None):
    """The :class:`~.bundles.StackSteps` of a block of steps; ``dropout`` is None or
    ``(seed, p)``: a seed below 2**64 and the probability ``0 <= p < 1`` of dropping a unit."""
    seed, p = (0, 0.0) if dropout is None else dropout
    return StackSteps(
        batches, rates, float(reg), int(step0), np.uint64(seed), np.uint64(_dropout.threshold(p)),
        1.0 / (1.0 - p),
    )  # fmt: skip


def workspace(n_rows, widths, dtype, *, batch=False):
    """Buffers for passes over ``n_rows`` rows of a net of layer widths ``widths``; ``batch``
    adds room for a minibatch copied from the training data and for dropout."""
    hidden = sum(widths[1:-1])
    layers, classes = len(widths) - 1, widths[-1]
    return StackWorkspace(
        Z=np.empty(n_rows * hidden, dtype),
        A=np.empty(n_rows * hidden, dtype),
        G=np.empty(n_rows * hidden, dtype),
        M=np.empty(n_rows * hidden if batch else 0, dtype),
        D=np.empty(n_rows * hidden if batch else 0, dtype),
        S=np.empty((n_rows, classes), dtype),
        dS=np.empty((n_rows, classes), dtype),
        row_loss=np.empty(n_rows, dtype),
        row_max=np.empty(n_rows, dtype),
        partial=np.empty(max(N_CHUNKS, layers * BLAS_PIECES), dtype),
        block_max=np.empty((BLAS_PIECES, 2 * layers), dtype),
        Xb=np.empty((n_rows if batch else 0, widths[0]), dtype),
        yb=np.empty(n_rows, np.intp),
        grads=np.empty(sum((a + 1) * b for a, b in itertools.pairwise(widths)), dtype),
    )


def scoring_workspace(n_rows, widths, dtype):
    """Buffers for scoring ``n_rows`` rows: only those scoring writes are allocated."""
    hidden = sum(widths[1:-1])
    empty = _empty(dtype)
    return StackWorkspace(
        Z=np.empty(n_rows * hidden, dtype),
        A=np.empty(n_rows * hidden, dtype),
        G=empty,
        M=empty,
        D=empty,
        S=np.empty((n_rows, widths[-1]), dtype),
        dS=np.empty((0, 0), dtype),
        row_loss=empty,
        row_max=np.empty(n_rows, dtype),
        partial=np.empty(N_CHUNKS, dtype),
        block_max=np.empty((0, 0), dtype),
        Xb=np.empty((0, 0), dtype),
        yb=np.empty(0, np.intp),
        grads=empty,
    )


def rows_of(work, n):
    """``work``'s buffers for its first ``n`` rows. The packed per-layer buffers keep their
    size: the kernels place each layer's block by the rows of ``work.S``."""
    if len(work.S) == n:
        return work
    return work._replace(S=work.S[:n], row_max=work.row_max[:n])


class StackEngine(Engine):
    """The compiled engine of nets of any depth, for one dtype: :class:`Engine`'s methods on
    the bundles of ``bundles.Stack``."""

    ENTRY = stack_entry.run

    def _placeholders(self):
        dt = self.dtype
        empty = _empty(dt)
        return {
            "y": np.empty(0, np.intp),
            "model": stack(empty, (0, 0), "relu", np.zeros(1, dt)),
            "optimizer": stack_optimizer(0, np.zeros(4), (), dt),
            "steps": steps(np.empty((0, 0), np.intp), np.empty(0, dt), 0.0, 0),
            "out": Outputs(empty, np.empty(0, np.intp), np.empty((0, 0), dt)),
            "work": workspace(0, (0, 0), dt),
        }
