"""The compiled entry point of a net of any depth: :func:`run`, as ``entry.run`` is the
two-layer net's, on the bundles of ``bundles.Stack``.

Its control flow is the two-layer net's: per training step a forward and backward pass over
blocks of the minibatch's rows, then the weight gradients with the update fused into them
when a bound proves them finite; scoring, the loss and the input check likewise.
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel
from .entry import FINITE, LOSS, MIN_PARALLEL_WORK, SCORE_OPS, TRAIN, all_below_max
from .kernels.common import (
    BLAS_PIECES,
    N_CHUNKS,
    as_float,
    batch_pieces,
    cast,
    magnitude_bits,
    sum_chunk,
)
from .kernels.layers import GRADIENT, GRADIENT_AND_UPDATE, GRADIENT_OF_INPUT, SGD_BY_PRODUCT
from .kernels.reductions import add_weight_decay, all_finite, flat, sum_of
from .kernels.stack import param_start, weight
from .kernels.updates import (
    SGD,
    product_bound,
    product_is_finite,
    sgd_by_product_is_finite,
    state_slice,
    update_slice,
)
from .parallel import FORWARD_BACKWARD, GATHER_ROWS, INPUT, LARGEST, SCORE, WEIGHT_GRADIENT
from .stack_parallel import in_parallel, link_blocks, stack_task

__all__ = ["FINITE", "LOSS", "SCORE_OPS", "TRAIN", "run"]


@kernel
def weight_pieces(widths):
    """Blocks of the weight-gradient task: ``BLAS_PIECES`` per layer (``kernels.stack``)."""
    return (widths.shape[0] - 1) * BLAS_PIECES


@kernel
def weights_norm(stack):
    """sum(W**2) over every layer's weights, the L2 term's sum."""
    widths, total = stack.widths, cast(stack.params, 0)
    for layer in range(1, widths.shape[0]):
        total += sum_chunk(flat(weight(stack.params, widths, layer)), True)
    return total


@kernel
def _forward_backward(X, y, idx, mode, stack, optimizer, steps, step, work, out, reg, norm):
    """A batch's forward and backward pass at optimizer step ``step`` (with the dropout of
    ``steps``); returns its loss with the L2 term ``reg * norm``."""
    rows = X.shape[0] if mode == INPUT else idx.shape[0]
    pieces = batch_pieces(rows)
    task = stack_task(FORWARD_BACKWARD, pieces, mode, idx, 0, 0, step, optimizer, steps)
    in_parallel(task, X, y, stack, work, out)
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
def _update_all(stack, grads, optimizer, lr, reg, step):
    """Every param's update from the packed ``grads``, in one piece each; returns the new
    weights' sum of squares."""
    widths, params = stack.widths, stack.params
    code, hyper, s1, s2 = optimizer.code, optimizer.hyper, optimizer.state1, optimizer.state2
    norm = reg - reg
    for layer in range(1, widths.shape[0]):
        a = param_start(widths, layer)
        b = a + widths[layer - 1] * widths[layer]
        c = b + widths[layer]
        norm += update_slice(
            code, params[a:b], grads[a:b], state_slice(s1, a, b), state_slice(s2, a, b),
            lr, reg, hyper, step,
        )  # fmt: skip
        update_slice(
            code, params[b:c], grads[b:c], state_slice(s1, b, c), state_slice(s2, b, c),
            lr, reg - reg, hyper, step,
        )  # fmt: skip
    return norm


@kernel
def train_steps(X, y, stack, optimizer, steps, work, out):
    """Optimizer steps on the minibatches ``X[steps.batches[t]]``, as ``entry.train_steps``;
    returns the number of steps taken."""
    reg = cast(stack.params, steps.reg)
    rows, top = steps.batches.shape[1], stack.widths.shape[0] - 1
    pieces, blocks = batch_pieces(rows), weight_pieces(stack.widths)
    norm = weights_norm(stack)
    for t in range(steps.batches.shape[0]):
        idx, step = steps.batches[t], steps.step0 + t + 1
        loss = _forward_backward(
            X, y, idx, np.int64(GATHER_ROWS), stack, optimizer, steps, step, work, out, reg, norm
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
        task = stack_task(WEIGHT_GRADIENT, blocks, mode, idx, lr, reg, step, optimizer, steps)
        in_parallel(task, X, y, stack, work, out)
        if mode != GRADIENT:
            norm = sum_of(work.partial, blocks)
        else:
            if not all_finite(work.grads):
                return t
            norm = _update_all(stack, work.grads, optimizer, lr, reg, step)
    return steps.batches.shape[0]


@kernel
def loss_and_grads(X, y, stack, optimizer, steps, work, out):
    """The loss of the batch (X, y) with L2 strength ``steps.reg`` and into ``work.grads``
    its gradients; returns the loss and whether every gradient is finite."""
    widths = stack.widths
    reg = cast(stack.params, steps.reg)
    idx = work.yb[:0]
    norm = weights_norm(stack)
    loss = _forward_backward(
        X, y, idx, np.int64(INPUT), stack, optimizer, steps, np.int64(0), work, out, reg, norm
    )
    blocks = weight_pieces(widths)
    task = stack_task(WEIGHT_GRADIENT, blocks, GRADIENT_OF_INPUT, idx, 0, 0, 0, optimizer, steps)
    in_parallel(task, X, y, stack, work, out)
    finite = np.isfinite(loss) and all_finite(work.grads)
    for layer in range(1, widths.shape[0]):
        W = weight(stack.params, widths, layer)
        add_weight_decay(weight(work.grads, widths, layer), W, reg)
    return loss, finite


@kernel
def scores(X, y, stack, optimizer, steps, work, out, mode):
    """The class scores of X into ``work.S`` and by ``mode`` its classes or probabilities into
    ``out``; returns whether the first layer's outputs were all finite (see
    ``entry.scores``)."""
    rows = X.shape[0]
    task = stack_task(SCORE, batch_pieces(rows), mode, work.yb[:0], 0, 0, 0, optimizer, steps)
    in_parallel(task, X, y, stack, work, out)
    return rows == 0 or all_below_max(work.row_max, rows, work.partial)


@kernel
def is_finite(X, y, stack, optimizer, steps, work, out):
    """Whether every value of X is finite (see ``entry.is_finite``)."""
    chunks = N_CHUNKS if X.size >= MIN_PARALLEL_WORK else 1
    check = stack_task(LARGEST, chunks, 0, work.yb[:0], 0, 0, 0, optimizer, steps)
    in_parallel(check, X, y, stack, work, out)
    return all_below_max(work.partial, chunks, work.partial)


def run(op, X, y, stack, optimizer, steps, work, out):
    """The entry point of a net of any depth: ``op`` on the given bundles.

    Parameters
    ----------
    op : int
        ``TRAIN``, ``LOSS``, ``SCORE_OPS + mode`` or ``FINITE`` (``entry``'s).
    X : ndarray, shape (N, D)
        The input rows (read-only allowed).
    y : ndarray of intp, shape (N,)
        Their labels (read-only allowed; empty when scoring).
    stack : bundles.Stack
    optimizer : bundles.StackOptimizer
    steps : bundles.StackSteps
        The block of training steps and their dropout (``TRAIN``), or the L2 strength
        (``LOSS``).
    work : bundles.StackWorkspace
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
    none = stack_task(LARGEST, 0, 0, work.yb[:0], 0, 0, 0, optimizer, steps)
    op += link_blocks(none, X, y, stack, work, out)
    if op == TRAIN:
        return np.int64(train_steps(X, y, stack, optimizer, steps, work, out)), np.float64(0)
    if op == LOSS:
        loss, finite = loss_and_grads(X, y, stack, optimizer, steps, work, out)
        return np.int64(finite), np.float64(loss)
    if op == FINITE:
        return np.int64(is_finite(X, y, stack, optimizer, steps, work, out)), np.float64(0)
    finite = scores(X, y, stack, optimizer, steps, work, out, op - SCORE_OPS)
    return np.int64(finite), np.float64(0)
