"""The parallel region of a net of any depth (``stack_entry``): its blocks of work.

The tasks and their modes are the two-layer engine's (``parallel``); only the blocks differ,
as they go through every layer of a ``bundles.Stack`` (``kernels.stack``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._jit import kernel, view
from ._region import parallel_region
from .kernels.common import chunk_bounds, magnitude_bits
from .kernels.layers import (
    copy_row,
    scores_to_outputs,
    softmax_cross_entropy_rows,
)
from .kernels.stack import (
    backward_rows,
    first_layer_bits,
    first_layer_rows,
    record_magnitudes,
    upper_rows,
    weight_block,
)
from .parallel import (
    FORWARD_BACKWARD,
    GATHER_ROWS,
    SCORE,
    WEIGHT_GRADIENT,
    batch_rows,
    largest_block,
)


class StackTask(NamedTuple):
    """A ``parallel.Task`` of a stack (its optimizer's state vectors whole, as packed) and the
    dropout of its steps (``bundles.StackSteps``)."""

    kind: int
    pieces: int
    mode: int
    idx: np.ndarray
    lr: float
    reg: float
    step: int
    code: int
    hyper: np.ndarray
    state1: np.ndarray
    state2: np.ndarray
    drop_seed: np.uint64
    drop_threshold: np.uint64
    drop_scale: float


@view
def stack_task(kind, pieces, mode, idx, lr, reg, step, optimizer, steps):
    """A :class:`StackTask` whose fields have the same types wherever it is made."""
    return StackTask(
        np.int64(kind), np.int64(pieces), np.int64(mode), idx,
        np.float64(lr), np.float64(reg), np.int64(step),
        np.int64(optimizer.code), optimizer.hyper, optimizer.state1, optimizer.state2,
        np.uint64(steps.drop_seed), np.uint64(steps.drop_threshold),
        np.float64(steps.drop_scale),
    )  # fmt: skip


@kernel
def _forward_backward_block(lo, hi, p, rows, task, X, y, stack, work):
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
        first_layer_rows(lo, hi, work.Xb, stack, work)
    else:
        for i in range(lo, hi):
            yb[i] = y[i]
        first_layer_rows(lo, hi, X, stack, work)
    upper_rows(lo, hi, task, stack, work)
    softmax_cross_entropy_rows(lo, hi, rows, work.S, yb, work.dS, work.row_loss)
    backward_rows(lo, hi, task, stack, work)
    record_magnitudes(lo, hi, p, largest, task, stack, work)


@kernel
def run_block(t, p, X, y, stack, work, out):
    """Block ``p`` of task ``t`` (see ``_region.parallel_region``)."""
    if t.kind == FORWARD_BACKWARD:
        rows = batch_rows(t.mode, X, t.idx)
        lo, hi = chunk_bounds(p, rows, t.pieces)
        _forward_backward_block(lo, hi, p, rows, t, X, y, stack, work)
    elif t.kind == WEIGHT_GRADIENT:
        weight_block(p, t, X, stack, work)
    elif t.kind == SCORE:
        lo, hi = chunk_bounds(p, X.shape[0], t.pieces)
        first_layer_rows(lo, hi, X, stack, work)
        upper_rows(lo, hi, t, stack, work)
        first_layer_bits(lo, hi, stack, work)
        scores_to_outputs(lo, hi, t.mode, work.S, out)
    else:
        largest_block(t, p, X, work)


in_parallel, link_blocks = parallel_region(run_block)
