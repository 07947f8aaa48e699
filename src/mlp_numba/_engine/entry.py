"""The compiled entry point: every call from Python into compiled code goes through :func:`run`.

One entry point, compiled once per dtype (``_engine.Engine``), serves training, scoring, the
loss and the input check, so that the first ``train`` compiles everything a net will need and
``predict`` or ``loss`` afterwards compile nothing. Its serial code drives the parallel region
(``parallel.in_parallel``) one task at a time.
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel, view
from .kernels.common import N_CHUNKS, as_float, batch_pieces, cast, largest_of, magnitude_bits
from .kernels.layers import (
    GRADIENT,
    GRADIENT_AND_UPDATE,
    GRADIENT_OF_INPUT,
    SGD_BY_PRODUCT,
    splits_columns,
)
from .kernels.reductions import (
    add_weight_decay,
    all_finite,
    squared_norm,
    sum_blocks,
    sum_of,
)
from .kernels.updates import (
    SGD,
    product_bound,
    product_is_finite,
    sgd_by_product_is_finite,
    update,
)
from .parallel import (
    COLUMNS_DONE,
    FORWARD_BACKWARD,
    GATHER_COLUMNS,
    GATHER_ROWS,
    INPUT,
    LARGEST,
    SCORE,
    WEIGHT_GRADIENT,
    batch_rows,
    in_parallel,
    link_blocks,
    task,
)

# What ``run`` does (its ``op``).
#: Training steps (``train_steps``).
TRAIN = 0
#: The loss and its gradients (``loss_and_grads``).
LOSS = 1
#: Scores, classes or probabilities: ``SCORE_OPS + layers.SCORES / CLASSES / PROBABILITIES``.
SCORE_OPS = 2
#: Whether every value of X is finite.
FINITE = 5
#: Elements below which the input check runs in one piece, without waking threads.
MIN_PARALLEL_WORK = 1 << 16


@kernel
def largest_value(bits, n, scratch):
    """The float whose ``magnitude_bits`` are the largest of bits[:n]."""
    return as_float(largest_of(bits[:n]), scratch)


@view
def all_below_max(values, n, scratch):
    """Whether the largest of the first ``n`` magnitudes in ``values`` (each a float whose
    ``magnitude_bits`` a block or row wrote) is finite. Inlined: both engines' scoring and
    input check end with it."""
    return largest_value(magnitude_bits(values)[0], n, scratch) <= np.finfo(values.dtype).max


@kernel
def forward_backward(X, y, idx, mode, model, optimizer, work, out, reg, norm):
    """A batch's forward and backward pass: the loss (with the L2 term ``reg * norm``), and
    into ``work.grads`` dW2, db1 and db2 (without the L2 term's gradient). Returns the loss,
    whether those gradients are finite, and the largest magnitudes of the batch and of dA."""
    rows = batch_rows(mode, X, idx)
    scratch = work.partial
    x_max = cast(scratch, 0)
    if mode == COLUMNS_DONE:
        pieces = batch_pieces(X.shape[1])
        in_parallel(
            task(GATHER_COLUMNS, pieces, 0, idx, 0, 0, 0, optimizer), X, y, model, work, out
        )
        x_max = largest_value(magnitude_bits(work.partial)[0], pieces, scratch)
    pieces = batch_pieces(rows)
    in_parallel(
        task(FORWARD_BACKWARD, pieces, mode, idx, 0, 0, 0, optimizer), X, y, model, work, out
    )
    if mode == GATHER_ROWS:
        x_max = largest_value(magnitude_bits(work.row_max)[0], rows, scratch)
    dA_max = largest_value(magnitude_bits(work.block_max)[0], pieces, scratch)
    loss_sum, finite = sum_blocks(work, pieces)
    loss = loss_sum / cast(loss_sum, rows) + cast(loss_sum, reg) * norm
    return loss, finite, x_max, dA_max


@kernel
def train_steps(X, y, model, optimizer, steps, work, out):
    """Optimizer steps on the minibatches ``X[steps.batches[t]]``, t = 0, 1, ...; ``out.losses[t]``
    gets each loss. Returns the number of steps taken: fewer than ``len(steps.batches)`` when
    a loss or gradient was not finite, in which case that step's update was not applied."""
    W1, b1, W2, b2 = model.W1, model.b1, model.W2, model.b2
    state1, state2 = optimizer.state1, optimizer.state2
    code, hyper = optimizer.code, optimizer.hyper
    reg = cast(W1, steps.reg)
    zero = reg - reg  # the biases carry no L2 term
    rows, pieces = steps.batches.shape[1], batch_pieces(X.shape[1])
    by_columns = splits_columns(W1, pieces) and work.Z_parts.shape[0] >= pieces - 1
    mode = COLUMNS_DONE if by_columns else GATHER_ROWS
    norm = squared_norm(W1, W2)
    for t in range(steps.batches.shape[0]):
        idx = steps.batches[t]
        loss, finite, x_max, dA_max = forward_backward(
            X, y, idx, mode, model, optimizer, work, out, reg, norm
        )
        out.losses[t] = loss
        if not (finite and np.isfinite(loss)):
            return t
        lr, step = steps.rates[t], steps.step0 + t + 1
        bound = product_bound(x_max, rows, dA_max)
        if code == SGD and sgd_by_product_is_finite(bound, lr, reg, norm, W1):
            fused = SGD_BY_PRODUCT
        elif product_is_finite(bound, W1):
            fused = GRADIENT_AND_UPDATE
        else:
            fused = GRADIENT
        weights = task(WEIGHT_GRADIENT, pieces, fused, idx, lr, reg, step, optimizer)
        in_parallel(weights, X, y, model, work, out)
        if fused != GRADIENT:
            norm = sum_of(work.partial, pieces)
        else:
            if not all_finite(work.dW1):
                return t
            norm = update(code, W1, work.dW1, state1.W1, state2.W1, lr, reg, hyper, step)
        update(code, b1, work.db1, state1.b1, state2.b1, lr, zero, hyper, step)
        norm += update(code, W2, work.dW2, state1.W2, state2.W2, lr, reg, hyper, step)
        update(code, b2, work.db2, state1.b2, state2.b2, lr, zero, hyper, step)
    return steps.batches.shape[0]


@kernel
def loss_and_grads(X, y, model, optimizer, steps, work, out):
    """The loss of the batch (X, y) with L2 strength ``steps.reg``, and into ``work.grads`` its
    full gradients. Returns the loss and whether every gradient is finite."""
    W1, W2 = model.W1, model.W2
    reg = cast(W1, steps.reg)
    idx = work.yb[:0]
    loss, finite, _, _ = forward_backward(
        X, y, idx, np.int64(INPUT), model, optimizer, work, out, reg, squared_norm(W1, W2)
    )
    pieces = batch_pieces(X.shape[1])
    gradient = task(WEIGHT_GRADIENT, pieces, GRADIENT_OF_INPUT, idx, 0, 0, 0, optimizer)
    in_parallel(gradient, X, y, model, work, out)
    finite = finite and all_finite(work.dW1)
    add_weight_decay(work.dW1, W1, reg)
    add_weight_decay(work.dW2, W2, reg)
    return loss, finite


@kernel
def scores(X, y, model, optimizer, work, out, mode):
    """The class scores of X into ``work.S``; by ``mode`` (``layers.SCORES``, ``CLASSES`` or
    ``PROBABILITIES``) also its classes or probabilities into ``out``. Returns whether the
    hidden pre-activations were all finite: a NaN or inf anywhere in a row of X makes that
    row's NaN or inf (OpenBLAS multiplies every term), so the caller checks X itself only
    when this is False."""
    rows = X.shape[0]
    scoring = task(SCORE, batch_pieces(rows), mode, work.yb[:0], 0, 0, 0, optimizer)
    in_parallel(scoring, X, y, model, work, out)
    return rows == 0 or all_below_max(work.row_max, rows, work.partial)


@kernel
def is_finite(X, y, model, optimizer, work, out):
    """Whether every value of X is finite: one vectorised pass, in chunks side by side when X
    is large, that makes no mask."""
    chunks = N_CHUNKS if X.size >= MIN_PARALLEL_WORK else 1
    check = task(LARGEST, chunks, 0, work.yb[:0], 0, 0, 0, optimizer)
    in_parallel(check, X, y, model, work, out)
    return all_below_max(work.partial, chunks, work.partial)


def run(op, X, y, model, optimizer, steps, work, out):
    """The engine's entry point: ``op`` on the given bundles.

    Parameters
    ----------
    op : int
        ``TRAIN``, ``LOSS``, ``SCORE_OPS + mode`` or ``FINITE``.
    X : ndarray, shape (N, D)
        The input rows (read-only allowed).
    y : ndarray of intp, shape (N,)
        Their labels (read-only allowed; empty when scoring).
    model : bundles.Model
    optimizer : bundles.Optimizer
    steps : bundles.Steps
        The block of training steps (``TRAIN``), or the L2 strength (``LOSS``).
    work : bundles.Workspace
        Scratch buffers sized for the rows of one pass.
    out : bundles.Outputs
        Each step's loss, or the classes or probabilities.

    Returns
    -------
    count : int
        ``TRAIN``: the steps taken; otherwise 1 when every value was finite, else 0.
    value : float
        ``LOSS``: the loss; otherwise 0.
    """
    # The parallel region's blocks are compiled into this library, the one that is cached
    # (``_linking``); link_blocks returns 0, added so that the call is not dropped as dead.
    op += link_blocks(task(LARGEST, 0, 0, work.yb[:0], 0, 0, 0, optimizer), X, y, model, work, out)
    if op == TRAIN:
        return np.int64(train_steps(X, y, model, optimizer, steps, work, out)), np.float64(0)
    if op == LOSS:
        loss, finite = loss_and_grads(X, y, model, optimizer, steps, work, out)
        return np.int64(finite), np.float64(loss)
    if op == FINITE:
        return np.int64(is_finite(X, y, model, optimizer, work, out)), np.float64(0)
    finite = scores(X, y, model, optimizer, work, out, op - SCORE_OPS)
    return np.int64(finite), np.float64(0)
