"""Compiled kernels of one forward/backward pass. Private: callers validate inputs first.

Every kernel writes into buffers it is given and allocates nothing, so the training loop can
call them once per iteration without touching the allocator. ``kind`` selects the
activation at compile time (see ``_activations.kind_marker``).

A step's parallel regions cut the batch into blocks (``_parallel_blas.batch_pieces``), each
block taken by one thread through every row-wise stage, its matrix products one-thread BLAS
calls (the caller holds ``_blas.one_blas_thread``). Parameter updates live in ``_updates``,
scoring in ``_scoring``.

Determinism: results must be bitwise identical whatever the number of Numba threads. So every
``prange`` iteration writes its own outputs, the blocks depend on the shapes only, and
reductions go through a fixed number of blocks or chunks whose partial sums are combined
serially (``_sum_blocks``, ``_updates.chunked_sum``), never through a parallel ``+=``.

``error_model="numpy"``: a division gives inf or NaN rather than a zero check, which would
keep LLVM from vectorising the loop.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._activations import activate, activate_grad
from ._blas import gemm
from ._numba_utils import cast, chunk_bounds, magnitude_bits
from ._parallel_blas import batch_pieces, gemm_t_by_columns
from ._updates import (
    add_weight_decay,
    all_finite,
    chunked_sum,
    gather_largest,
    max_magnitude_bits,
)

#: Bytes of W1 above which a training step cuts X@W1 along D (``splits_columns``).
COLUMN_SPLIT_BYTES = 1 << 17


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


@njit(error_model="numpy")
def _column_sums(M, out):
    """out[j] = sum_i M[i, j], row by row (a column walk strides across rows), each row added
    as a vector."""
    for j in range(out.size):
        out[j] = 0
    for i in range(M.shape[0]):
        row = M[i]
        for j in range(out.size):
            out[j] += row[j]


@njit
def _squared_norm(W1, W2, partial):
    """sum(W1**2) + sum(W2**2), deterministically."""
    return chunked_sum(W1, True, partial) + chunked_sum(W2, True, partial)


@njit(error_model="numpy")
def scores_of_block(lo, hi, b1, W2, b2, kind, ap, Z, A, S, row_bits):
    """Rows lo:hi, given Z = X@W1 there: Z += b1, A = activation(Z), S = A@W2 + b2. When
    ``row_bits`` has rows, row_bits[i] gets the largest ``magnitude_bits`` of the new Z[i],
    which tell whether it is finite."""
    for i in range(lo, hi):
        for j in range(Z.shape[1]):
            z = Z[i, j] + b1[j]
            Z[i, j] = z
            A[i, j] = activate(kind, z, ap)
        if row_bits.shape[0]:
            row_bits[i] = max_magnitude_bits(Z[i])
    gemm(False, False, A[lo:hi], W2, S[lo:hi])
    for i in range(lo, hi):
        for j in range(S.shape[1]):
            S[i, j] += b2[j]


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
    no_bits, _ = magnitude_bits(work[6][:0])
    scores_of_block(lo, hi, b1, W2, b2, kind, ap, Z, A, S, no_bits)
    for i in range(lo, hi):
        m, total = _softmax_row(S, i, dS)
        row_loss[i] = np.log(total) - (S[i, y[i]] - m)
        dS[i, y[i]] -= one
        for j in range(S.shape[1]):
            dS[i, j] = dS[i, j] / n
    gemm(False, True, dS[lo:hi], W2, dA[lo:hi])
    for i in range(lo, hi):
        for j in range(dA.shape[1]):
            dA[i, j] *= activate_grad(kind, Z[i, j], A[i, j], ap)


# Each block of rows also leaves its share of the gradients and of the loss in the workspace's
# ``block_W2``, ``block_sums`` and ``block_max`` (one entry per block, see
# ``_engine.Workspace``), summed there while its rows are in cache; ``_sum_blocks`` then adds
# the shares in block order. The blocks depend on the batch's size only, so the sums have the
# same bits for any thread count.


@njit(error_model="numpy")
def _block_shares(lo, hi, p, A, dA, dS, row_loss, block_W2, block_sums):
    """Rows lo:hi's share of dW2 = A.T @ dS, db1, db2 and the loss's sum, as block ``p``:
    block_W2[p] and block_sums[p] = (db1 share, db2 share, loss sum). Returns the largest
    ``magnitude_bits`` of dA's rows lo:hi."""
    H, C = dA.shape[1], dS.shape[1]
    gemm(True, False, A[lo:hi], dS[lo:hi], block_W2[p])
    sums = block_sums[p]
    _column_sums(dA[lo:hi], sums[:H])
    _column_sums(dS[lo:hi], sums[H : H + C])
    loss = cast(sums, 0)
    for i in range(lo, hi):
        loss += row_loss[i]
    sums[H + C] = loss
    flat = dA.reshape(dA.size)
    return max_magnitude_bits(flat[lo * H : hi * H])


@njit(error_model="numpy")
def _add_blocks(parts, pieces, out):
    """out[k] = parts[0, k] + parts[1, k] + ... over the first ``pieces`` rows, in that order;
    returns sum(out)."""
    total = cast(out, 0)
    for k in range(out.size):
        s = parts[0, k]
        for p in range(1, pieces):
            s += parts[p, k]
        out[k] = s
        total += s
    return total


@njit(error_model="numpy")
def _sum_blocks(block_W2, block_sums, pieces, dW2, db1, db2):
    """(dW2, db1, db2) = the sums of the first ``pieces`` blocks' shares, in block order.
    Returns the loss's sum and whether the gradients are finite (nor so large that their sum
    overflows: either way the step has diverged)."""
    H, C = dW2.shape
    total = _add_blocks(block_W2.reshape((block_W2.shape[0], H * C)), pieces, dW2.reshape(H * C))
    total += _add_blocks(block_sums[:, :H], pieces, db1)
    total += _add_blocks(block_sums[:, H : H + C], pieces, db2)
    loss = block_sums[0, H + C]
    for p in range(1, pieces):
        loss += block_sums[p, H + C]
    return loss, np.isfinite(total)


@njit
def splits_columns(W1):
    """Whether a training step cuts its product X@W1 along D rather than along the batch.

    Cut along D, each thread copies its columns of the minibatch and multiplies them by its
    own rows of W1, then updates those same rows from the same columns
    (``_parallel_blas.gemm_t_by_columns`` cuts alike): the thread's share of W1 and of the
    minibatch stay in its core's cache, where cut along the batch every thread reads all of
    W1 and, for the update, the other thread's rows. The partial products cost one B x H sum
    per block, and for a small W1 the cut products are too small to gain. Measured here
    (2 cores, 2 MiB of L2 each), gather and both products: CIFAR-10 float64 2.36 -> 2.24 ms,
    float32 1.01 -> 0.95 ms, H=500 float64 8.28 -> 7.79 ms; a whole ``train`` step at MNIST
    float64 0.73 -> 0.69 ms and float32 0.336 -> 0.330 ms, but at the digits shape (W1 of
    51 KiB) 0.129 -> 0.141 ms.
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
    Each block leaves its share of the gradients and the loss in the workspace
    (``_block_shares``). Returns max(abs(Xb)) (NaN or inf if a value is not finite), or 0
    without ``gather``, and max(abs(dA)) (the same).
    """
    rows = idx.shape[0] if gather else X.shape[0]
    n_parts = batch_pieces(X.shape[1]) - 1
    # A workspace without room for the partial products takes the other path.
    by_columns = gather and splits_columns(W1) and work[7].shape[0] >= n_parts
    x_max = cast(X, 0)
    if by_columns:
        x_max = _gather_product_by_columns(X, idx, Xb, W1, work[0], work[7], work[8])
    row_bits, _ = magnitude_bits(work[6])
    block_bits, _ = magnitude_bits(work[11])
    pieces = batch_pieces(rows)
    for p in prange(pieces):
        lo, hi = chunk_bounds(p, rows, pieces)
        if by_columns:
            _add_parts(work[0], work[7], n_parts, lo, hi)
            for i in range(lo, hi):
                yb[i] = y[idx[i]]
        elif gather:
            for i in range(lo, hi):
                r = idx[i]
                row_bits[i] = _copy_row(X[r], Xb[i])
                yb[i] = y[r]
        if gather:
            _rows_forward_backward(Xb, yb, lo, hi, W1, b1, W2, b2, kind, ap, work, by_columns)
        else:
            _rows_forward_backward(X, y, lo, hi, W1, b1, W2, b2, kind, ap, work, False)
        block_bits[p] = _block_shares(
            lo, hi, p, work[1], work[2], work[4], work[5], work[9], work[10]
        )
    if gather and not by_columns:
        gather_largest(row_bits[:rows])
        x_max = work[6][0]
    gather_largest(block_bits[:pieces])
    return x_max, work[11][0]


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
    the previous update. ``work`` holds scratch buffers sized for the batch (see
    ``_engine.Workspace``); dA (``work[2]``) ends up holding the gradient at the
    pre-activation. Returns the loss, whether db1, dW2 and db2 are finite, the largest
    magnitude of the gathered batch (0 without ``gather``) and that of dA.
    """
    _, db1, dW2, db2 = grads
    x_max, dA_max = _batch_forward_backward(
        X, y, idx, gather, Xb, yb, W1, b1, W2, b2, kind, ap, work
    )
    rows = work[5].shape[0]  # the workspace is sized for the batch
    loss_sum, finite = _sum_blocks(work[9], work[10], batch_pieces(rows), dW2, db1, db2)
    loss = loss_sum / cast(loss_sum, rows) + reg * squared_norm
    return loss, finite, x_max, dA_max


@njit
def _loss_and_data_grads(X, y, W1, b1, W2, b2, reg, squared_norm, kind, ap, work, grads):
    """As ``_loss_and_grads_except_dW1``, with dW1 too: returns the loss and whether every
    gradient is finite."""
    loss, finite, _, _ = _loss_and_grads_except_dW1(
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
