"""A block of rows through the net and back, and the products around it.

Every stage of a forward and backward pass is row by row, so a block of rows goes from its
product with W1 to its gradient dA on one thread, in cache; its products are one-thread BLAS
calls. The parallel region (``parallel.in_parallel``) runs the blocks side by side. Each
block also leaves its share of the gradients and of the loss in the workspace
(:func:`block_shares`), summed while its rows are in cache; ``reductions.sum_blocks`` then
adds the shares in block order.
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel, view
from .activations import activate_rows, activation_grad_rows
from .blas import gemm, gemm_accumulate
from .common import cast, magnitude_bits, max_magnitude_bits, sum_chunk
from .reductions import flat
from .updates import state_slice, update_slice

#: Bytes of W1 above which a training step cuts X@W1 along D (:func:`splits_columns`).
COLUMN_SPLIT_BYTES = 1 << 17


@kernel
def copy_row(source, target):
    """target[:] = source, returning the largest ``magnitude_bits`` copied: the copy is bound
    by memory, so the maximum comes at no cost."""
    bits, mask = magnitude_bits(source)
    copy, _ = magnitude_bits(target)
    largest = mask ^ mask
    for k in range(bits.size):
        value = bits[k]
        copy[k] = value
        largest = max(largest, value & mask)
    return largest


@kernel
def softmax_row(S, i, P):
    """P[i] = softmax(S[i]) through the row maximum m; returns m and sum(exp(S[i] - m))."""
    m = S[i, 0]
    for j in range(1, S.shape[1]):
        m = max(m, S[i, j])
    total = cast(S, 0)
    for j in range(S.shape[1]):
        P[i, j] = np.exp(S[i, j] - m)
        total += P[i, j]
    for j in range(S.shape[1]):
        P[i, j] = P[i, j] / total
    return m, total


@kernel
def column_sums(M, out):
    """out[j] = sum_i M[i, j], row by row (a column walk strides across rows), each row added
    as a vector."""
    for j in range(out.size):
        out[j] = 0
    for i in range(M.shape[0]):
        row = M[i]
        for j in range(out.size):
            out[j] += row[j]


# The layers' primitives on a block of rows lo:hi. A net is composed of them: a hidden layer is
# ``add_bias_rows`` and ``activate_rows`` on its product (``dense_rows``) with the layer below;
# the output layer is a ``dense_rows`` and ``softmax_cross_entropy_rows``; going back, a layer
# takes the gradient of the layer above through its weights (``dense_backward_rows``) and its
# activation (``activations.activation_grad_rows``). A deeper net loops over its hidden layers.


@kernel
def add_bias_rows(lo, hi, b, Z):
    """Z[lo:hi] += b."""
    for i in range(lo, hi):
        for j in range(Z.shape[1]):
            Z[i, j] += b[j]


@kernel
def dense_rows(lo, hi, A, W, b, Z):
    """Z[lo:hi] = A[lo:hi] @ W + b."""
    gemm(False, False, A[lo:hi], W, Z[lo:hi])
    add_bias_rows(lo, hi, b, Z)


@kernel
def dense_backward_rows(lo, hi, dZ, W, dA):
    """dA[lo:hi] = dZ[lo:hi] @ W.T: the gradient at the layer's input."""
    gemm(False, True, dZ[lo:hi], W, dA[lo:hi])


@kernel
def softmax_cross_entropy_rows(lo, hi, rows, S, labels, dS, row_loss):
    """Each row's cross-entropy of softmax(S) against ``labels`` into ``row_loss``, and the
    gradient of the batch's mean loss at S into dS (scaled by the batch's ``rows``)."""
    n = cast(S, rows)
    one = cast(S, 1)
    for i in range(lo, hi):
        m, total = softmax_row(S, i, dS)
        row_loss[i] = np.log(total) - (S[i, labels[i]] - m)
        dS[i, labels[i]] -= one
        for j in range(S.shape[1]):
            dS[i, j] = dS[i, j] / n


@kernel
def scores_of_rows(lo, hi, model, Z, A, S):
    """Rows lo:hi, given Z = X@W1 there: the hidden layer Z += b1, A = activation(Z), and the
    output layer S = A@W2 + b2."""
    add_bias_rows(lo, hi, model.b1, Z)
    activate_rows(model.activation, Z, A, model.activation_params, lo, hi)
    dense_rows(lo, hi, A, model.W2, model.b2, S)


@kernel
def forward_backward_rows(lo, hi, rows, model, work):
    """Rows lo:hi of the batch, whose Z already holds X@W1 and whose labels are in ``work.yb``,
    to dA, the gradient at the hidden layer's pre-activation; the scores' gradient is scaled
    by the batch's ``rows``. Leaves each row's loss in ``work.row_loss``."""
    scores_of_rows(lo, hi, model, work.Z, work.A, work.S)
    softmax_cross_entropy_rows(lo, hi, rows, work.S, work.yb, work.dS, work.row_loss)
    dense_backward_rows(lo, hi, work.dS, model.W2, work.dA)
    activation_grad_rows(model.activation, work.Z, work.A, work.dA, model.activation_params, lo, hi)


@kernel
def block_shares(lo, hi, p, work):
    """Rows lo:hi's share of dW2 = A.T @ dS, db1, db2 and the loss's sum, as block ``p``:
    ``work.block_W2[p]`` and ``work.block_sums[p]`` = (db1 share, db2 share, loss sum).
    Returns the largest ``magnitude_bits`` of dA's rows lo:hi."""
    A, dA, dS = work.A, work.dA, work.dS
    H, C = dA.shape[1], dS.shape[1]
    gemm(True, False, A[lo:hi], dS[lo:hi], work.block_W2[p])
    sums = work.block_sums[p]
    column_sums(dA[lo:hi], sums[:H])
    column_sums(dS[lo:hi], sums[H : H + C])
    loss = cast(sums, 0)
    for i in range(lo, hi):
        loss += work.row_loss[i]
    sums[H + C] = loss
    return max_magnitude_bits(flat(dA)[lo * H : hi * H])


@kernel
def splits_columns(W1, pieces):
    """Whether a training step cuts its product X@W1 along D, into ``pieces`` blocks, rather
    than along the batch.

    Cut along D, each thread copies its columns of the minibatch and multiplies them by its
    own rows of W1, then computes and applies the update of those same rows from the same
    columns (:func:`weight_gradient_block`): the thread's share of W1 and of the minibatch
    stay in its core's cache, where cut along the batch every thread reads all of W1. The
    partial products cost one B x H sum per block, and for a small W1 the cut products are too
    small to gain (measured on 2 cores: faster at the CIFAR-10 and MNIST shapes, slower at
    digits' W1 of 51 KiB).
    """
    return W1.size * W1.itemsize > COLUMN_SPLIT_BYTES and pieces > 1


@kernel
def gather_columns_block(lo, hi, p, X, idx, W1, work):
    """Columns lo:hi of the minibatch X[idx] copied into ``work.Xb`` and multiplied by W1's rows
    lo:hi, into Z for block 0 and into ``work.Z_parts[p - 1]`` for the others. Returns the
    largest ``magnitude_bits`` copied."""
    Xb = work.Xb
    _, mask = magnitude_bits(Xb[0, :0])
    largest = mask ^ mask
    for i in range(idx.shape[0]):
        largest = max(largest, copy_row(X[idx[i], lo:hi], Xb[i, lo:hi]))
    gemm(False, False, Xb[:, lo:hi], W1[lo:hi], work.Z if p == 0 else work.Z_parts[p - 1])
    return largest


@kernel
def add_parts(lo, hi, n_parts, work):
    """Z[lo:hi] += Z_parts[q, lo:hi] for q = 0, 1, ..., in that order."""
    Z, parts = work.Z, work.Z_parts
    for q in range(n_parts):
        for i in range(lo, hi):
            for j in range(Z.shape[1]):
                Z[i, j] += parts[q, i, j]


# What a block of the weight gradient does with it (``weight_gradient_block``).
#: dW1 = X.T @ dA from the minibatch in ``work.Xb``.
GRADIENT = 0
#: dW1 = X.T @ dA from the input X itself (``loss``'s batch).
GRADIENT_OF_INPUT = 1
#: Plain SGD fused into the product: W1 <- (1 - lr * 2 reg) W1 - lr * Xb.T @ dA.
SGD_BY_PRODUCT = 2
#: dW1's block, then the optimizer's update of W1's block.
GRADIENT_AND_UPDATE = 3


@kernel
def weight_gradient_block(lo, hi, p, task, X, model, work):
    """Rows lo:hi of dW1 = batch.T @ dA, and with it, by ``task.mode``, the update of W1's rows
    lo:hi (``parallel.Task`` has the optimizer). With an update, ``work.partial[p]`` gets the
    sum of the squares of the new rows."""
    W1, dW1, dA, mode = model.W1, work.dW1, work.dA, task.mode
    width = W1.shape[1]
    if mode == GRADIENT_OF_INPUT:
        gemm(True, False, X[:, lo:hi], dA, dW1[lo:hi])
        return
    lr, reg = cast(W1, task.lr), cast(W1, task.reg)
    if mode == SGD_BY_PRODUCT:
        beta = cast(W1, 1) - lr * (cast(W1, 2) * reg)
        gemm_accumulate(True, False, work.Xb[:, lo:hi], dA, W1[lo:hi], -lr, beta)
        work.partial[p] = sum_chunk(flat(W1)[lo * width : hi * width], True)
        return
    gemm(True, False, work.Xb[:, lo:hi], dA, dW1[lo:hi])
    if mode == GRADIENT_AND_UPDATE:
        a, b = lo * width, hi * width
        work.partial[p] = update_slice(
            task.code, flat(W1)[a:b], flat(dW1)[a:b],
            state_slice(task.state1, a, b), state_slice(task.state2, a, b),
            lr, reg, task.hyper, task.step,
        )  # fmt: skip


# What scoring leaves besides the scores in ``work.S`` (``score_block``).
SCORES, CLASSES, PROBABILITIES = 0, 1, 2


@kernel
def score_block(lo, hi, mode, X, model, work, out):
    """Rows lo:hi of X to their scores, and by ``mode`` their classes or probabilities in
    ``out``. ``work.row_max``'s bits get each row's largest magnitude of the hidden
    pre-activations, which tell whether that row of X was finite."""
    Z, S = work.Z, work.S
    gemm(False, False, X[lo:hi], model.W1, Z[lo:hi])
    scores_of_rows(lo, hi, model, Z, work.A, S)
    row_bits, _ = magnitude_bits(work.row_max)
    for i in range(lo, hi):
        row_bits[i] = max_magnitude_bits(Z[i])
    scores_to_outputs(lo, hi, mode, S, out)


# Shared by both engines' scoring, inlined (``view``): no extra compile for either.
@view
def scores_to_outputs(lo, hi, mode, S, out):
    """By ``mode``, the classes (``CLASSES``) or probabilities (``PROBABILITIES``) of rows
    lo:hi of the scores S into ``out``."""
    if mode == CLASSES:
        for i in range(lo, hi):
            best = 0
            for j in range(1, S.shape[1]):
                if S[i, j] > S[i, best]:
                    best = j
            out.classes[i] = best
    elif mode == PROBABILITIES:
        for i in range(lo, hi):
            softmax_row(S, i, out.probabilities)
