"""Compiled kernels of one forward/backward pass. Private: callers validate inputs first.

Every kernel writes into buffers it is given and allocates nothing, so the training loop can
call them once per iteration without touching the allocator. ``kind`` selects the
activation at compile time (see ``_activations.kind_marker``).

Determinism: results must be bitwise identical whatever the number of Numba threads. So every
``prange`` iteration writes its own outputs, and reductions go through a fixed number of chunks
whose partial sums are combined serially (``_updates.chunked_sum``), never through a parallel
``+=``. Parameter updates live in ``_updates``.

Threads: a parallel region whose work is small runs on the calling thread alone
(``small_work_serial``). ``error_model="numpy"``: a division gives inf or NaN rather than a
zero check, which would keep LLVM from vectorising the loop.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._activations import activate, activate_grad
from ._blas import gemm
from ._numba_utils import cast, chunk_bounds, magnitude_bits, set_num_threads
from ._parallel_blas import batch_pieces, gemm_by_rows, gemm_t_by_columns
from ._updates import (
    add_weight_decay,
    all_finite,
    chunked_sum,
    gather_largest,
    small_work_serial,
)

#: Columns per block of ``_column_sums``.
COLUMN_BLOCK = 128
#: Bytes of W1 above which a training step cuts X@W1 along D (``splits_columns``).
COLUMN_SPLIT_BYTES = 1 << 20


@njit(error_model="numpy")
def _copy_row(source, target):
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


@njit(parallel=True, error_model="numpy")
def _bias_activation(Z, b, kind, ap, A):
    """Z += b (in place, kept for the backward pass); A = activation(Z)."""
    threads = small_work_serial(Z.size)
    for i in prange(Z.shape[0]):
        for j in range(Z.shape[1]):
            z = Z[i, j] + b[j]
            Z[i, j] = z
            A[i, j] = activate(kind, z, ap)
    set_num_threads(threads)


@njit(parallel=True, error_model="numpy")
def _add_bias(S, b):
    threads = small_work_serial(S.size)
    for i in prange(S.shape[0]):
        for j in range(S.shape[1]):
            S[i, j] += b[j]
    set_num_threads(threads)


@njit
def _forward(X, W1, b1, W2, b2, kind, ap, Z, A, S):
    """Z = X@W1 + b1, A = activation(Z), S = A@W2 + b2 (the class scores)."""
    gemm_by_rows(X, W1, Z)
    _bias_activation(Z, b1, kind, ap, A)
    gemm(False, False, A, W2, S)
    _add_bias(S, b2)


@njit(inline="always")
def _softmax_row(S, i, P):
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


@njit(parallel=True, error_model="numpy")
def _softmax_cross_entropy(S, y, dS, row_loss, partial):
    """Mean softmax cross-entropy of the scores S, and its gradient dS = (softmax(S) - Y) / N.

    Log-sum-exp through the row maximum, so large scores neither overflow nor lose the loss.
    """
    N, C = S.shape
    n = cast(S, N)
    threads = small_work_serial(S.size)
    for i in prange(N):
        m, total = _softmax_row(S, i, dS)
        row_loss[i] = np.log(total) - (S[i, y[i]] - m)
        dS[i, y[i]] -= cast(S, 1)
        for j in range(C):
            dS[i, j] = dS[i, j] / n
    set_num_threads(threads)
    return chunked_sum(row_loss, False, partial) / n


@njit(parallel=True, error_model="numpy")
def _activation_backward(dA, Z, A, kind, ap):
    """dA *= activation'(Z), in place: dA becomes the gradient at the pre-activation."""
    threads = small_work_serial(dA.size)
    for i in prange(dA.shape[0]):
        for j in range(dA.shape[1]):
            dA[i, j] *= activate_grad(kind, Z[i, j], A[i, j], ap)
    set_num_threads(threads)


@njit(error_model="numpy")
def _add_rows(M, lo, hi, out):
    """out = sum_i M[i, lo:hi], the rows added in order (so the same bits however the columns
    are split), each row's slice added as a vector."""
    for j in range(out.size):
        out[j] = 0
    for i in range(M.shape[0]):
        row = M[i, lo:hi]
        for j in range(out.size):
            out[j] += row[j]


@njit(parallel=True, error_model="numpy")
def _column_sums(M, out):
    """out[j] = sum_i M[i, j], for blocks of columns side by side. Row by row rather than
    column by column: a column walk strides across rows and took 0.27 ms at 200 x 512."""
    n_blocks = (M.shape[1] + COLUMN_BLOCK - 1) // COLUMN_BLOCK
    threads = small_work_serial(M.size)
    for block in prange(n_blocks):
        lo = block * COLUMN_BLOCK
        hi = min(M.shape[1], lo + COLUMN_BLOCK)
        _add_rows(M, lo, hi, out[lo:hi])
    set_num_threads(threads)


@njit
def _squared_norm(W1, W2, partial):
    """sum(W1**2) + sum(W2**2), deterministically."""
    return chunked_sum(W1, True, partial) + chunked_sum(W2, True, partial)


@njit(error_model="numpy")
def _rows_forward_backward(X, y, lo, hi, W1, b1, W2, b2, kind, ap, work, have_product):
    """Rows lo:hi of the batch (X, y) from input to dA, the gradient at the pre-activation, on
    the calling thread: every step of it is row by row, so a block of rows stays in cache from
    its product with W1 to its gradient. With ``have_product``, Z already holds X@W1 for these
    rows. The scores' gradient is scaled by the batch's size."""
    Z, A, dA, S, dS, row_loss = work[0], work[1], work[2], work[3], work[4], work[5]
    n = cast(S, y.shape[0])
    one = cast(S, 1)
    if not have_product:
        gemm(False, False, X[lo:hi], W1, Z[lo:hi])
    for i in range(lo, hi):
        for j in range(Z.shape[1]):
            z = Z[i, j] + b1[j]
            Z[i, j] = z
            A[i, j] = activate(kind, z, ap)
    gemm(False, False, A[lo:hi], W2, S[lo:hi])
    for i in range(lo, hi):
        for j in range(S.shape[1]):
            S[i, j] += b2[j]
        m, total = _softmax_row(S, i, dS)
        row_loss[i] = np.log(total) - (S[i, y[i]] - m)
        dS[i, y[i]] -= one
        for j in range(S.shape[1]):
            dS[i, j] = dS[i, j] / n
    gemm(False, True, dS[lo:hi], W2, dA[lo:hi])
    for i in range(lo, hi):
        for j in range(dA.shape[1]):
            dA[i, j] *= activate_grad(kind, Z[i, j], A[i, j], ap)


@njit
def splits_columns(W1):
    """Whether a training step cuts its product X@W1 along D rather than along the batch.

    Cut along D, each thread copies its columns of the minibatch and multiplies them by its
    own rows of W1, then updates those same rows (``_parallel_blas.gemm_t_by_columns`` cuts
    alike): a thread's share of W1 stays in its core's cache from one step to the next
    instead of being read whole by every thread. It pays when W1 is larger than a core's
    cache holds beside a block of rows; the partial products then cost one B x H sum per
    block. Measured here (2 cores, 2 MiB of L2 each), gather and both products: CIFAR-10
    float64 2.36 -> 2.24 ms, float32 1.01 -> 0.95 ms, H=500 float64 8.28 -> 7.79 ms; MNIST
    float32, with W1 in cache either way, 0.26 -> 0.27 ms.
    """
    return W1.size * W1.itemsize > COLUMN_SPLIT_BYTES and batch_pieces(W1.shape[0]) > 1


@njit(parallel=True, error_model="numpy")
def _gather_product_by_columns(X, idx, Xb, W1, Z, Z_parts, piece_max):
    """Xb = X[idx] and Z = Xb @ W1 as the sum of Z and Z_parts, the products of blocks of
    columns of Xb with the matching rows of W1, each block copied and multiplied by one
    thread. Returns max(abs(Xb)), NaN or inf if a value is not finite; ``piece_max`` (one
    float per block) is scratch."""
    D = X.shape[1]
    pieces = batch_pieces(D)
    piece_bits, mask = magnitude_bits(piece_max)
    for p in prange(pieces):
        lo, hi = chunk_bounds(p, D, pieces)
        largest = mask ^ mask
        for i in range(idx.shape[0]):
            largest = max(largest, _copy_row(X[idx[i], lo:hi], Xb[i, lo:hi]))
        piece_bits[p] = largest
        gemm(False, False, Xb[:, lo:hi], W1[lo:hi], Z if p == 0 else Z_parts[p - 1])
    gather_largest(piece_bits[:pieces])
    return piece_max[0]


@njit(error_model="numpy")
def _add_parts(Z, Z_parts, n_parts, lo, hi):
    """Z[lo:hi] += Z_parts[q, lo:hi] for q = 0, 1, ..., in that order."""
    for q in range(n_parts):
        for i in range(lo, hi):
            for j in range(Z.shape[1]):
                Z[i, j] += Z_parts[q, i, j]


@njit(parallel=True, error_model="numpy")
def _batch_forward_backward(X, y, idx, gather, Xb, yb, W1, b1, W2, b2, kind, ap, work):
    """``_rows_forward_backward`` over the whole batch, blocks of rows side by side.

    With ``gather``, the batch is first copied from the rows ``idx`` of (X, y) into (Xb, yb):
    with the product X@W1 when it is cut along D (``splits_columns``), or else each block of
    rows by its own thread; otherwise (X, y) is the batch and Xb, yb, idx are not used.
    Returns max(abs(Xb)) (NaN or inf if a value is not finite), or 0 without ``gather``.
    """
    rows = idx.shape[0] if gather else X.shape[0]
    by_columns = gather and splits_columns(W1)
    x_max = cast(X, 0)
    n_parts = 0
    if by_columns:
        x_max = _gather_product_by_columns(X, idx, Xb, W1, work[0], work[7], work[8])
        n_parts = batch_pieces(X.shape[1]) - 1
    row_bits, _ = magnitude_bits(work[6])
    pieces = batch_pieces(rows)
    for p in prange(pieces):
        lo, hi = chunk_bounds(p, rows, pieces)
        if by_columns:
            _add_parts(work[0], work[7], n_parts, lo, hi)
            for i in range(lo, hi):
                yb[i] = y[idx[i]]
            _rows_forward_backward(Xb, yb, lo, hi, W1, b1, W2, b2, kind, ap, work, True)
        elif gather:
            for i in range(lo, hi):
                r = idx[i]
                row_bits[i] = _copy_row(X[r], Xb[i])
                yb[i] = y[r]
            _rows_forward_backward(Xb, yb, lo, hi, W1, b1, W2, b2, kind, ap, work, False)
        else:
            _rows_forward_backward(X, y, lo, hi, W1, b1, W2, b2, kind, ap, work, False)
    if gather and not by_columns:
        gather_largest(row_bits[:rows])
        x_max = work[6][0]
    return x_max


@njit
def _loss_and_grads_except_dW1(
    X, y, idx, gather, Xb, yb, W1, b1, W2, b2, reg, squared_norm, kind, ap, work, grads
):
    """Loss of a batch, and into ``grads = (dW1, db1, dW2, db2)`` its gradients except dW1,
    without the L2 term's ``2 * reg * W`` (the update adds it in its own pass, see
    ``_updates``). dW1 is ``batch.T @ dA``, left to the caller, which may fuse it into the
    update. The batch is (X, y), or with ``gather`` the rows ``idx`` of them, copied into
    (Xb, yb) (see ``_batch_forward_backward``).

    ``squared_norm`` is ``_squared_norm(W1, W2)``, which the training loop gets for free from
    the previous update. ``work = (Z, A, dA, S, dS, row_loss, row_max, partial)`` are scratch
    buffers sized for the batch (see ``_engine.Workspace``); dA ends up holding the gradient at
    the pre-activation. Returns the loss, whether db1, dW2 and db2 are finite, and the
    largest magnitude of the gathered batch (0 without ``gather``).
    """
    _, A, dA, _, dS, row_loss, _, _, partial = work
    _, db1, dW2, db2 = grads
    x_max = _batch_forward_backward(X, y, idx, gather, Xb, yb, W1, b1, W2, b2, kind, ap, work)
    n = row_loss.shape[0] if not gather else idx.shape[0]
    loss = chunked_sum(row_loss[:n], False, partial) / cast(row_loss, n) + reg * squared_norm
    gemm(True, False, A[:n], dS[:n], dW2)
    _column_sums(dS[:n], db2)
    _column_sums(dA[:n], db1)
    finite = all_finite(dW2, partial) and all_finite(db1, partial)
    return loss, finite and all_finite(db2, partial), x_max


@njit
def _loss_and_data_grads(X, y, W1, b1, W2, b2, reg, squared_norm, kind, ap, work, grads):
    """As ``_loss_and_grads_except_dW1``, with dW1 too: returns the loss and whether every
    gradient is finite."""
    loss, finite, _ = _loss_and_grads_except_dW1(
        X, y, y, False, X, y, W1, b1, W2, b2, reg, squared_norm, kind, ap, work, grads
    )
    gemm_t_by_columns(X, work[2], grads[0], 1.0, 0.0)
    return loss, finite and all_finite(grads[0], work[8])


@njit
def _loss_and_grads(X, y, W1, b1, W2, b2, reg, squared_norm, kind, ap, work, grads):
    """As ``_loss_and_data_grads``, with the L2 term's gradient added: the full gradients."""
    loss, finite = _loss_and_data_grads(
        X, y, W1, b1, W2, b2, reg, squared_norm, kind, ap, work, grads
    )
    add_weight_decay(grads[0], W1, reg)
    add_weight_decay(grads[2], W2, reg)
    return loss, finite


@njit(parallel=True, error_model="numpy")
def _argmax_rows(S, out):
    threads = small_work_serial(S.size)
    for i in prange(S.shape[0]):
        best = 0
        for j in range(1, S.shape[1]):
            if S[i, j] > S[i, best]:
                best = j
        out[i] = best
    set_num_threads(threads)


@njit(parallel=True, error_model="numpy")
def _softmax_rows(S, P):
    threads = small_work_serial(S.size)
    for i in prange(S.shape[0]):
        _softmax_row(S, i, P)
    set_num_threads(threads)
