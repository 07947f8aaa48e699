"""The compiled entry point: every call from Python into compiled code goes through :func:`run`.

One entry point, compiled once per dtype (``engine.Engine``), serves training, scoring, the
loss and the input check of a net of any depth, so that the first ``train`` compiles
everything a net will need and ``predict`` or ``loss`` afterwards compile nothing. Its serial
code drives the parallel region (``parallel.in_parallel``) one task at a time: per training
step a forward and backward pass over blocks of the minibatch's rows, then the weight
gradients with the update fused into them when a bound proves them finite.
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel
from .kernels.common import (
    N_CHUNKS,
    as_float,
    batch_pieces,
    cast,
    largest_of,
    magnitude_bits,
    sum_chunk,
)
from .kernels.layers import (
    GRADIENT,
    GRADIENT_AND_UPDATE,
    GRADIENT_OF_INPUT,
    SGD_BY_PRODUCT,
    UPDATE,
)
from .kernels.reductions import all_finite, flat, sum_of
from .kernels.stack import first_layer_splits, weight
from .kernels.updates import (
    SGD,
    product_bound,
    product_is_finite,
    sgd_by_product_is_finite,
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
    link_blocks,
    run_task,
    task,
)

__all__ = ["FINITE", "LOSS", "SCORE_OPS", "TRAIN", "run"]

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


@kernel
def all_below_max(values, n, scratch):
    """Whether the largest of the first ``n`` magnitudes in ``values`` (each a float whose
    ``magnitude_bits`` a block or row wrote) is finite."""
    return largest_value(magnitude_bits(values)[0], n, scratch) <= np.finfo(values.dtype).max


@kernel
def weight_pieces(widths, work):
    """Blocks of the weight-gradient task: ``BLAS_PIECES`` (the rows of ``work.block_max``)
    per layer (``kernels.stack``)."""
    return (widths.shape[0] - 1) * work.block_max.shape[0]


@kernel
def weights_norm(model):
    """sum(W**2) over every layer's weights, the L2 term's sum."""
    widths, total = model.widths, cast(model.params, 0)
    for layer in range(1, widths.shape[0]):
        total += sum_chunk(flat(weight(model.params, widths, layer)), True)
    return total


@kernel
def _forward_backward(X, y, idx, mode, model, optimizer, steps, step, work, out, reg, norm):
    """A batch's forward and backward pass at optimizer step ``step`` (with the dropout of
    ``steps``); returns its loss with the L2 term ``reg * norm``."""
    rows, most = batch_rows(mode, X, idx), work.block_max.shape[0]
    if mode == COLUMNS_DONE:
        cut = batch_pieces(X.shape[1], most)
        kind, none = np.int64(GATHER_COLUMNS), np.int64(0)
        run_task(kind, cut, none, idx, 0.0, 0.0, step, optimizer, steps, X, y, model, work, out)
    pieces = batch_pieces(rows, most)
    kind = np.int64(FORWARD_BACKWARD)
    run_task(kind, pieces, mode, idx, 0.0, 0.0, step, optimizer, steps, X, y, model, work, out)
    total = sum_of(work.row_loss, rows)
    return total / cast(total, rows) + reg * norm


@kernel
def _step_bound(work, pieces, rows, top):
    """Whether the gradients at every layer's output are finite, and the largest
    ``product_bound`` of a layer's weight gradient, from the ``pieces`` blocks'
    ``work.block_max``."""
    bits, _ = magnitude_bits(work.block_max)
    scratch = work.partial
    largest = np.finfo(scratch.dtype).max
    finite, worst = True, 0.0
    for layer in range(top):
        x, g = bits[0, 2 * layer], bits[0, 2 * layer + 1]
        for q in range(1, pieces):
            x, g = max(x, bits[q, 2 * layer]), max(g, bits[q, 2 * layer + 1])
        x_max, g_max = as_float(x, scratch), as_float(g, scratch)
        finite = finite and g_max <= largest
        bound = product_bound(x_max, rows, g_max)
        if not bound <= worst:
            worst = bound
    return finite, worst


@kernel
def train_steps(X, y, model, optimizer, steps, work, out):
    """Optimizer steps on the minibatches ``X[steps.batches[t]]``, t = 0, 1, ...;
    ``out.losses[t]`` gets each loss. Returns the number of steps taken: fewer than
    ``len(steps.batches)`` when a loss or gradient was not finite, in which case that step's
    update was not applied."""
    reg = cast(model.params, steps.reg)
    rows, top = steps.batches.shape[1], model.widths.shape[0] - 1
    most = work.block_max.shape[0]
    pieces, blocks = batch_pieces(rows, most), weight_pieces(model.widths, work)
    splits = first_layer_splits(model, work, batch_pieces(X.shape[1], most))
    gather = np.int64(COLUMNS_DONE if splits else GATHER_ROWS)
    norm = weights_norm(model)
    kind, reg64 = np.int64(WEIGHT_GRADIENT), np.float64(reg)
    for t in range(steps.batches.shape[0]):
        idx, step = steps.batches[t], steps.step0 + t + 1
        loss = _forward_backward(
            X, y, idx, gather, model, optimizer, steps, step, work, out, reg, norm
        )
        out.losses[t] = loss
        finite, bound = _step_bound(work, pieces, rows, top)
        if not (finite and np.isfinite(loss)):
            return t
        lr = steps.rates[t]
        if optimizer.code == SGD and sgd_by_product_is_finite(bound, lr, reg, norm, work.S):
            mode = SGD_BY_PRODUCT
        elif product_is_finite(bound, work.S):
            mode = GRADIENT_AND_UPDATE
        else:
            mode = GRADIENT
        lr64 = np.float64(lr)
        run_task(
            kind, blocks, mode, idx, lr64, reg64, step, optimizer, steps, X, y, model, work, out
        )
        if mode == GRADIENT:
            # The gradients were not bound finite: checked before the update is applied.
            if not all_finite(work.grads):
                return t
            run_task(
                kind, blocks, np.int64(UPDATE), idx, lr64, reg64, step, optimizer, steps,
                X, y, model, work, out,
            )  # fmt: skip
        norm = sum_of(work.partial, blocks)
    return steps.batches.shape[0]


@kernel
def loss_and_grads(X, y, model, optimizer, steps, work, out):
    """The loss of the batch (X, y) with L2 strength ``steps.reg`` and into ``work.grads``
    its gradients; returns the loss and whether every gradient is finite."""
    widths = model.widths
    reg = cast(model.params, steps.reg)
    idx = work.yb[:0]
    norm = weights_norm(model)
    loss = _forward_backward(
        X, y, idx, np.int64(INPUT), model, optimizer, steps, np.int64(0), work, out, reg, norm
    )
    blocks = weight_pieces(widths, work)
    kind, mode, step = np.int64(WEIGHT_GRADIENT), np.int64(GRADIENT_OF_INPUT), np.int64(0)
    run_task(
        kind, blocks, mode, idx, 0.0, np.float64(reg), step, optimizer, steps,
        X, y, model, work, out,
    )  # fmt: skip
    return loss, np.isfinite(loss) and all_finite(work.grads)


@kernel
def scores(X, y, model, optimizer, steps, work, out, mode):
    """The class scores of X into ``work.S``; by ``mode`` (``layers.SCORES``, ``CLASSES`` or
    ``PROBABILITIES``) also its classes or probabilities into ``out``. Returns whether the
    first layer's pre-activations were all finite: a NaN or inf anywhere in a row of X makes
    that row's NaN or inf (OpenBLAS multiplies every term), so the caller checks X itself only
    when this is False."""
    rows = X.shape[0]
    pieces = batch_pieces(rows, work.block_max.shape[0])
    kind, step = np.int64(SCORE), np.int64(0)
    run_task(
        kind, pieces, mode, work.yb[:0], 0.0, 0.0, step, optimizer, steps, X, y, model, work, out
    )
    return rows == 0 or all_below_max(work.row_max, rows, work.partial)


@kernel
def is_finite(X, y, model, optimizer, steps, work, out):
    """Whether every value of X is finite: one vectorised pass, in chunks side by side when X
    is large, that makes no mask."""
    chunks = N_CHUNKS if X.size >= MIN_PARALLEL_WORK else 1
    kind, none = np.int64(LARGEST), np.int64(0)
    run_task(
        kind, np.int64(chunks), none, work.yb[:0], 0.0, 0.0, none, optimizer, steps,
        X, y, model, work, out,
    )  # fmt: skip
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
        The block of training steps and their dropout (``TRAIN``), or the L2 strength
        (``LOSS``).
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
    # The parallel region's blocks are compiled into this library (``_region``).
    none = task(LARGEST, 0, 0, work.yb[:0], 0, 0, 0, optimizer, steps)
    op += link_blocks(none, X, y, model, work, out)
    if op == TRAIN:
        return np.int64(train_steps(X, y, model, optimizer, steps, work, out)), np.float64(0)
    if op == LOSS:
        loss, finite = loss_and_grads(X, y, model, optimizer, steps, work, out)
        return np.int64(finite), np.float64(loss)
    if op == FINITE:
        return np.int64(is_finite(X, y, model, optimizer, steps, work, out)), np.float64(0)
    finite = scores(X, y, model, optimizer, steps, work, out, op - SCORE_OPS)
    return np.int64(finite), np.float64(0)
