"""The engine's one parallel region: blocks of any kind of work, side by side.

Each kind of work the kernels cut into blocks (a task) is one branch of :func:`run_block`, and
:func:`in_parallel` runs the blocks of one task in a single ``prange`` loop. One loop for all
tasks is a compile-time choice: Numba compiles every ``prange`` loop as a region of its own,
at about a second each, while a branch costs little (see ``_jit``). A block runs on one thread
and writes only its own outputs, and the blocks depend on the shapes alone, never on the
number of threads (``kernels.common``). A block goes through every layer of the net
(``kernels.stack``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._jit import kernel, view
from ._region import parallel_region
from .kernels.common import (
    batch_pieces,
    chunk_bounds,
    largest_of,
    magnitude_bits,
    max_magnitude_bits,
    readonly,
)
from .kernels.layers import copy_row, scores_to_outputs, softmax_cross_entropy_rows
from .kernels.reductions import flat
from .kernels.stack import (
    add_parts_rows,
    backward_rows,
    first_layer_bits,
    first_layer_rows,
    gather_columns_block,
    record_magnitudes,
    upper_rows,
    weight_block,
)

#: Columns of the minibatch copied from X and multiplied by W1's rows
#: (``stack.gather_columns_block``).
GATHER_COLUMNS = 0
#: Rows of the batch through every layer and back (``_forward_backward_block``).
FORWARD_BACKWARD = 1
#: Blocks of every layer's weight gradient, and their updates (``stack.weight_block``).
WEIGHT_GRADIENT = 2
#: Rows of X to scores, classes or probabilities.
SCORE = 3
#: Chunks of X's largest magnitude, which tells whether X is finite.
LARGEST = 4

# How FORWARD_BACKWARD finds its rows: copied from X[idx] into work.Xb (GATHER_ROWS), already
# gathered with their product by GATHER_COLUMNS (COLUMNS_DONE), or X itself (INPUT).
GATHER_ROWS, COLUMNS_DONE, INPUT = 0, 1, 2


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
    #: The optimizer's code, hyperparameters and packed state vectors (``bundles.Optimizer``).
    code: int
    hyper: np.ndarray
    state1: np.ndarray
    state2: np.ndarray
    #: The dropout of the steps (``bundles.Steps``).
    drop_seed: np.uint64
    drop_threshold: np.uint64
    drop_scale: float
    #: Run the blocks in a plain loop on the calling thread (``bundles.Steps.serial``).
    serial: bool


@view
def task(kind, pieces, mode, idx, lr, reg, step, optimizer, steps):
    """A :class:`Task` whose fields have the same types wherever it is made."""
    return Task(
        np.int64(kind), np.int64(pieces), np.int64(mode), idx,
        np.float64(lr), np.float64(reg), np.int64(step),
        np.int64(optimizer.code), optimizer.hyper, optimizer.state1, optimizer.state2,
        np.uint64(steps.drop_seed), np.uint64(steps.drop_threshold),
        np.float64(steps.drop_scale), bool(steps.serial),
    )  # fmt: skip


@kernel
def run_task(kind, pieces, mode, idx, lr, reg, step, optimizer, steps, X, y, model, work, out):
    """:func:`in_parallel` on the :class:`Task` of these fields (see :func:`task`).

    The entry point's serial code starts every task through it, so that the Task, inlined as
    IR, is typed and lowered here once rather than at each of its call sites. The callers
    pass each field as the type the Task holds (``np.int64`` for the integers, ``np.float64``
    for ``lr`` and ``reg``): an integer constant is a type of its own in Numba, which would
    compile another ``run_task``.
    """
    t = task(kind, pieces, mode, idx, lr, reg, step, optimizer, steps)
    in_parallel(t, X, y, model, work, out)


@kernel
def batch_rows(mode, X, idx):
    """The rows of a forward and backward pass: those of X itself (``INPUT``), else the
    minibatch's ``idx``."""
    return X.shape[0] if mode == INPUT else idx.shape[0]


@kernel
def _forward_backward_block(lo, hi, p, rows, task, X, y, model, work):
    """Block ``p`` (rows lo:hi) of a forward and backward pass over ``rows`` rows: the
    minibatch ``X[task.idx]`` copied into ``work.Xb`` (``GATHER_ROWS``), or X itself."""
    mode, idx = task.mode, task.idx
    yb = work.yb
    _, mask = magnitude_bits(work.row_max)
    largest = mask ^ mask
    if mode == GATHER_ROWS:
        for i in range(lo, hi):
            r = idx[i]
            largest = max(largest, copy_row(X[r], work.Xb[i]))
            yb[i] = y[r]
    elif mode == COLUMNS_DONE:
        for i in range(lo, hi):
            yb[i] = y[idx[i]]
        # The gathered columns' largest magnitudes, one per block of GATHER_COLUMNS.
        gathered = batch_pieces(X.shape[1], work.block_max.shape[0])
        largest = largest_of(magnitude_bits(work.partial)[0][:gathered])
        add_parts_rows(lo, hi, gathered - 1, model, work)
    else:
        for i in range(lo, hi):
            yb[i] = y[i]
    if mode != COLUMNS_DONE:
        # One call for both inputs (of one type): LLVM inlines a kernel at each call site.
        inputs = readonly(work.Xb) if mode == GATHER_ROWS else X
        first_layer_rows(lo, hi, inputs, model, work)
    upper_rows(lo, hi, task, model, work)
    softmax_cross_entropy_rows(lo, hi, rows, work.S, yb, work.dS, work.row_loss)
    backward_rows(lo, hi, task, model, work)
    record_magnitudes(lo, hi, p, largest, task, model, work)


@kernel
def _largest_block(t, p, X, work):
    """Chunk ``p`` of the values of X: their largest ``magnitude_bits`` into
    ``work.partial[p]``."""
    values = flat(X)
    lo, hi = chunk_bounds(p, values.size, t.pieces)
    bits, _ = magnitude_bits(work.partial)
    bits[p] = max_magnitude_bits(values[lo:hi])


@kernel
def run_block(t, p, X, y, model, work, out):
    """Block ``p`` of task ``t`` (see ``_region.parallel_region``)."""
    if t.kind == GATHER_COLUMNS:
        lo, hi = chunk_bounds(p, X.shape[1], t.pieces)
        bits, _ = magnitude_bits(work.partial)
        bits[p] = gather_columns_block(lo, hi, p, X, t.idx, model, work)
    elif t.kind == FORWARD_BACKWARD:
        rows = batch_rows(t.mode, X, t.idx)
        lo, hi = chunk_bounds(p, rows, t.pieces)
        _forward_backward_block(lo, hi, p, rows, t, X, y, model, work)
    elif t.kind == WEIGHT_GRADIENT:
        weight_block(p, t, X, model, work)
    elif t.kind == SCORE:
        lo, hi = chunk_bounds(p, X.shape[0], t.pieces)
        first_layer_rows(lo, hi, X, model, work)
        upper_rows(lo, hi, t, model, work)
        first_layer_bits(lo, hi, model, work)
        scores_to_outputs(lo, hi, t.mode, work.S, out)
    else:
        _largest_block(t, p, X, work)


in_parallel, link_blocks = parallel_region(run_block)
