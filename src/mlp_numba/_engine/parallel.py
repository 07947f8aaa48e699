"""The engine's one parallel region: blocks of any kind of work, side by side.

Each kind of work the kernels cut into blocks (a task) is one branch of :func:`run_block`, and
:func:`in_parallel` runs the blocks of one task in a single ``prange`` loop. One loop for all
tasks is a compile-time choice: Numba compiles every ``prange`` loop as a region of its own,
at about a second each, while a branch costs little (see ``_jit``). A block runs on one thread
and writes only its own outputs, and the blocks depend on the shapes alone, never on the
number of threads (``kernels.common``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import INTERNAL, kernel, view
from ._linking import call_unlinked, compile_result, link
from .kernels.blas import gemm
from .kernels.common import chunk_bounds, magnitude_bits, max_magnitude_bits
from .kernels.layers import (
    add_parts,
    block_shares,
    copy_row,
    forward_backward_rows,
    gather_columns_block,
    score_block,
    weight_gradient_block,
)
from .kernels.reductions import flat


class Task(NamedTuple):
    """What :func:`in_parallel` runs: ``pieces`` blocks of work ``kind``, in ``mode``."""

    #: Which work: GATHER_COLUMNS, FORWARD_BACKWARD, WEIGHT_GRADIENT, SCORE or LARGEST.
    kind: int
    #: How many blocks (they depend on the shapes only).
    pieces: int
    #: The kind's variant (e.g. ``layers.SGD_BY_PRODUCT``, ``layers.CLASSES``).
    mode: int
    #: Rows of the input that make the minibatch (empty when not gathering).
    idx: np.ndarray
    #: Learning rate, L2 strength and optimizer step, for the updates in WEIGHT_GRADIENT.
    lr: float
    reg: float
    step: int
    #: The optimizer's code and hyperparameters, and its state for W1 (``bundles.Optimizer``).
    code: int
    hyper: np.ndarray
    state1: np.ndarray
    state2: np.ndarray


#: Columns of the minibatch copied from X and multiplied by W1's rows (``layers``).
GATHER_COLUMNS = 0
#: Rows of the batch from their product with W1 to dA (``layers.forward_backward_rows``).
FORWARD_BACKWARD = 1
#: Rows of dW1 (columns of the batch), and W1's update (``layers.weight_gradient_block``).
WEIGHT_GRADIENT = 2
#: Rows of X to scores, classes or probabilities (``layers.score_block``).
SCORE = 3
#: Chunks of X's largest magnitude, which tells whether X is finite.
LARGEST = 4

# How FORWARD_BACKWARD finds its rows: copied from X[idx] into work.Xb (GATHER_ROWS), already
# gathered with their product by GATHER_COLUMNS (COLUMNS_DONE), or X itself (INPUT).
GATHER_ROWS, COLUMNS_DONE, INPUT = 0, 1, 2


@kernel
def batch_rows(mode, X, idx):
    """The rows of a forward and backward pass: those of X itself (``INPUT``), else the
    minibatch's ``idx``."""
    return X.shape[0] if mode == INPUT else idx.shape[0]


@view
def task(kind, pieces, mode, idx, lr, reg, step, optimizer):
    """A :class:`Task` whose fields have the same types wherever it is made."""
    return Task(
        np.int64(kind), np.int64(pieces), np.int64(mode), idx,
        np.float64(lr), np.float64(reg), np.int64(step),
        np.int64(optimizer.code), optimizer.hyper, optimizer.state1.W1, optimizer.state2.W1,
    )  # fmt: skip


@kernel
def _forward_backward_block(lo, hi, p, rows, mode, X, y, idx, model, work):
    """Block ``p`` (rows lo:hi) of a forward and backward pass over ``rows`` rows."""
    Xb, yb, Z = work.Xb, work.yb, work.Z
    if mode == COLUMNS_DONE:
        add_parts(lo, hi, work.Z_parts.shape[0], work)
        for i in range(lo, hi):
            yb[i] = y[idx[i]]
    elif mode == GATHER_ROWS:
        row_bits, _ = magnitude_bits(work.row_max)
        for i in range(lo, hi):
            r = idx[i]
            row_bits[i] = copy_row(X[r], Xb[i])
            yb[i] = y[r]
        gemm(False, False, Xb[lo:hi], model.W1, Z[lo:hi])
    else:
        for i in range(lo, hi):
            yb[i] = y[i]
        gemm(False, False, X[lo:hi], model.W1, Z[lo:hi])
    forward_backward_rows(lo, hi, rows, model, work)
    block_bits, _ = magnitude_bits(work.block_max)
    block_bits[p] = block_shares(lo, hi, p, work)


@kernel
def run_block(t, p, X, y, model, work, out):
    """Block ``p`` of task ``t``.

    A library of its own, called from the ``prange`` loop rather than inlined into it: Numba's
    parallel passes then neither analyse all the kernels (slow) nor drop the writes they
    cannot trace through the bundles (wrong).
    """
    if t.kind == FORWARD_BACKWARD:
        rows = batch_rows(t.mode, X, t.idx)
        lo, hi = chunk_bounds(p, rows, t.pieces)
        _forward_backward_block(lo, hi, p, rows, t.mode, X, y, t.idx, model, work)
    elif t.kind == GATHER_COLUMNS:
        lo, hi = chunk_bounds(p, X.shape[1], t.pieces)
        bits, _ = magnitude_bits(work.partial)
        bits[p] = gather_columns_block(lo, hi, p, X, t.idx, model.W1, work)
    elif t.kind == WEIGHT_GRADIENT:
        lo, hi = chunk_bounds(p, X.shape[1], t.pieces)
        weight_gradient_block(lo, hi, p, t, X, model, work)
    elif t.kind == SCORE:
        lo, hi = chunk_bounds(p, X.shape[0], t.pieces)
        score_block(lo, hi, t.mode, X, model, work, out)
    else:
        values = flat(X)
        lo, hi = chunk_bounds(p, values.size, t.pieces)
        bits, _ = magnitude_bits(work.partial)
        bits[p] = max_magnitude_bits(values[lo:hi])


@intrinsic
def _run_block_unlinked(typingctx, t, p, X, y, model, work, out):
    """``run_block(...)``, its code left out of the parallel region's libraries (``_linking``)."""
    result = compile_result(run_block, (t, p, X, y, model, work, out))

    def codegen(context, builder, signature, values):
        return call_unlinked(context, builder, result, values)

    return result.signature, codegen


@intrinsic
def link_blocks(typingctx, t, X, y, model, work, out):
    """Copies ``run_block``'s code for these argument types into the library being compiled:
    the entry point's, which must hold every kernel the parallel region calls. Returns 0, for
    the caller to use so that the call is not dropped as dead code."""
    result = compile_result(run_block, (t, types.int64, X, y, model, work, out))

    def codegen(context, builder, signature, values):
        return link(context, builder, result)

    return types.int64(t, X, y, model, work, out), codegen


@intrinsic
def _threads_of_this_thread(typingctx):
    """``numba.get_num_threads()``, by the symbol Numba's threading layer registers: Numba's
    own version reads it through a ctypes pointer, which keeps the caller out of the cache."""

    def codegen(context, builder, signature, values):
        function_type = ir.FunctionType(cgutils.intp_t, [])
        function = cgutils.get_or_insert_function(builder.module, function_type, "get_num_threads")
        return builder.call(function, [])

    return types.intp(), codegen


@njit(parallel=True, **INTERNAL)
def in_parallel(t, X, y, model, work, out):
    """The ``t.pieces`` blocks of task ``t``, side by side on Numba's threads (in turn when
    the calling thread may use one thread only: ``numba.set_num_threads(1)``).

    Parameters
    ----------
    t : Task
        The work and its blocks.
    X : ndarray, shape (N, D)
        The input: the training data whose rows ``t.idx`` make the minibatch, or the rows to
        score or to check.
    y : ndarray of intp, shape (N,)
        X's labels (empty when scoring).
    model : bundles.Model
        The params and the activation.
    work : bundles.Workspace
        The buffers the blocks write: activations, gradients and each block's results.
    out : bundles.Outputs
        Where scoring writes classes or probabilities.
    """
    if _threads_of_this_thread() == 1:
        # A plain loop on this thread wakes no thread pool: what a forked child of an OpenMP
        # process must do (``_threads``), and the fastest way to run on one thread.
        for p in range(t.pieces):
            _run_block_unlinked(t, np.int64(p), X, y, model, work, out)
    else:
        for p in prange(t.pieces):
            _run_block_unlinked(t, np.int64(p), X, y, model, work, out)
