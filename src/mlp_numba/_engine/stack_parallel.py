"""The parallel region of a net of any depth (``stack_entry``): its blocks of work.

The tasks and their modes are the two-layer engine's (``parallel``); only the blocks differ,
as they go through every layer of a ``bundles.Stack`` (``kernels.stack``).
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel, view
from ._region import parallel_region
from .kernels.common import chunk_bounds, magnitude_bits
from .kernels.layers import (
    GRADIENT_OF_INPUT,
    copy_row,
    scores_to_outputs,
    softmax_cross_entropy_rows,
)
from .kernels.stack import (
    backward_rows,
    first_layer_bits,
    forward_rows,
    record_magnitudes,
    weight_block,
)
from .parallel import (
    FORWARD_BACKWARD,
    GATHER_ROWS,
    SCORE,
    WEIGHT_GRADIENT,
    Task,
    batch_rows,
    largest_block,
)


@view
def stack_task(kind, pieces, mode, idx, lr, reg, step, optimizer):
    """A ``parallel.Task`` for a stack: its optimizer's state vectors whole, as packed."""
    return Task(
        np.int64(kind), np.int64(pieces), np.int64(mode), idx,
        np.float64(lr), np.float64(reg), np.int64(step),
        np.int64(optimizer.code), optimizer.hyper, optimizer.state1, optimizer.state2,
    )  # fmt: skip


@kernel
def _forward_backward_block(lo, hi, p, rows, mode, X, y, idx, stack, work):
    """Block ``p`` (rows lo:hi) of a forward and backward pass over ``rows`` rows: the
    minibatch ``X[idx]`` copied into ``work.Xb`` (``GATHER_ROWS``), or X itself."""
    yb = work.yb
    _, mask = magnitude_bits(work.row_max)
    largest = mask ^ mask
    if mode == GATHER_ROWS:
        for i in range(lo, hi):
            r = idx[i]
            largest = max(largest, copy_row(X[r], work.Xb[i]))
            yb[i] = y[r]
        forward_rows(lo, hi, work.Xb, stack, work)
    else:
        for i in range(lo, hi):
            yb[i] = y[i]
        forward_rows(lo, hi, X, stack, work)
    softmax_cross_entropy_rows(lo, hi, rows, work.S, yb, work.dS, work.row_loss)
    backward_rows(lo, hi, stack, work)
    record_magnitudes(lo, hi, p, largest, stack, work)


@kernel
def run_block(t, p, X, y, stack, work, out):
    """Block ``p`` of task ``t`` (see ``_region.parallel_region``)."""
    if t.kind == FORWARD_BACKWARD:
        rows = batch_rows(t.mode, X, t.idx)
        lo, hi = chunk_bounds(p, rows, t.pieces)
        _forward_backward_block(lo, hi, p, rows, t.mode, X, y, t.idx, stack, work)
    elif t.kind == WEIGHT_GRADIENT:
        if t.mode == GRADIENT_OF_INPUT:
            weight_block(p, t, X, stack, work)
        else:
            weight_block(p, t, work.Xb, stack, work)
    elif t.kind == SCORE:
        lo, hi = chunk_bounds(p, X.shape[0], t.pieces)
        forward_rows(lo, hi, X, stack, work)
        first_layer_bits(lo, hi, stack, work)
        scores_to_outputs(lo, hi, t.mode, work.S, out)
    else:
        largest_block(t, p, X, work)


in_parallel, link_blocks = parallel_region(run_block)
