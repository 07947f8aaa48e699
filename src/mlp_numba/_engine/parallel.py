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

from ._jit import kernel, view
from ._region import parallel_region
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
        largest_block(t, p, X, work)


# A branch of both engines' run_block, inlined (``view``) rather than a function of its own:
# no extra compile for either engine.
@view
def largest_block(t, p, X, work):
    """Chunk ``p`` of the values of X: their largest ``magnitude_bits`` into
    ``work.partial[p]``."""
    values = flat(X)
    lo, hi = chunk_bounds(p, values.size, t.pieces)
    bits, _ = magnitude_bits(work.partial)
    bits[p] = max_magnitude_bits(values[lo:hi])


in_parallel, link_blocks = parallel_region(run_block)
