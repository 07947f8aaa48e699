"""Compiled kernels of one forward/backward pass. Private: callers validate inputs first.

Every kernel writes into buffers it is given and allocates nothing, so the training loop can
call them once per iteration without touching the allocator. ``kind`` selects the
activation at compile time (see ``_activations.kind_marker``).

Determinism: results must be bitwise identical whatever the number of Numba threads. So every
``prange`` iteration writes its own outputs, and reductions go through a fixed number of chunks
whose partial sums are combined serially (``_chunked_sum``), never through a parallel ``+=``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._activations import activate, activate_grad
from ._numba_utils import cast

#: Fixed number of chunks of a deterministic reduction (independent of the thread count).
N_CHUNKS = 64


@njit(parallel=True)
def _gather_rows(X, y, idx, Xb, yb):
    """Xb[i] = X[idx[i]], yb[i] = y[idx[i]]: the minibatch."""
    for i in prange(idx.shape[0]):
        r = idx[i]
        Xb[i, :] = X[r, :]
        yb[i] = y[r]


@njit(parallel=True)
def _bias_activation(Z, b, kind, ap, A):
    """Z += b (in place, kept for the backward pass); A = activation(Z)."""
    for i in prange(Z.shape[0]):
        for j in range(Z.shape[1]):
            z = Z[i, j] + b[j]
            Z[i, j] = z
            A[i, j] = activate(kind, z, ap)


@njit(parallel=True)
def _add_bias(S, b):
    for i in prange(S.shape[0]):
        for j in range(S.shape[1]):
            S[i, j] += b[j]


@njit
def _forward(X, W1, b1, W2, b2, kind, ap, Z, A, S):
    """Z = X@W1 + b1, A = activation(Z), S = A@W2 + b2 (the class scores)."""
    np.dot(X, W1, Z)
    _bias_activation(Z, b1, kind, ap, A)
    np.dot(A, W2, S)
    _add_bias(S, b2)


@njit(parallel=True)
def _softmax_cross_entropy(S, y, dS, row_loss, partial):
    """Mean softmax cross-entropy of the scores S, and its gradient dS = (softmax(S) - Y) / N.

    Log-sum-exp through the row maximum, so large scores neither overflow nor lose the loss.
    """
    N, C = S.shape
    n = cast(S, N)
    for i in prange(N):
        m = S[i, 0]
        for j in range(1, C):
            m = max(m, S[i, j])
        total = cast(S, 0)
        for j in range(C):
            e = np.exp(S[i, j] - m)
            dS[i, j] = e
            total += e
        row_loss[i] = np.log(total) - (S[i, y[i]] - m)
        for j in range(C):
            dS[i, j] = dS[i, j] / total
        dS[i, y[i]] -= cast(S, 1)
        for j in range(C):
            dS[i, j] = dS[i, j] / n
    return _chunked_sum(row_loss, False, partial) / n


@njit(parallel=True)
def _chunked_sum(a, squares, partial):
    """Sum of a (of its squares if ``squares``) over a fixed number of chunks: the same bits
    for any thread count. ``partial`` holds N_CHUNKS values."""
    flat = a.reshape(a.size)
    n = flat.size
    n_chunks = partial.shape[0]
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        s = cast(a, 0)
        for k in range(c * step, min(n, (c + 1) * step)):
            s += flat[k] * flat[k] if squares else flat[k]
        partial[c] = s
    total = cast(a, 0)
    for c in range(n_chunks):
        total += partial[c]
    return total


@njit(parallel=True)
def _activation_backward(dA, Z, A, kind, ap):
    """dA *= activation'(Z), in place: dA becomes the gradient at the pre-activation."""
    for i in prange(dA.shape[0]):
        for j in range(dA.shape[1]):
            dA[i, j] *= activate_grad(kind, Z[i, j], A[i, j], ap)


@njit(parallel=True)
def _column_sums(M, out):
    """out[j] = sum_i M[i, j], each column summed serially (deterministic)."""
    for j in prange(M.shape[1]):
        s = cast(M, 0)
        for i in range(M.shape[0]):
            s += M[i, j]
        out[j] = s


@njit(parallel=True)
def _add_weight_decay(dW, W, reg):
    """dW += 2 * reg * W, the gradient of reg * sum(W**2)."""
    two_reg = cast(W, 2) * reg
    for i in prange(W.shape[0]):
        for j in range(W.shape[1]):
            dW[i, j] += two_reg * W[i, j]


@njit
def _loss_and_grads(X, y, W1, b1, W2, b2, reg, kind, ap, work, grads):
    """Loss of the batch (X, y); its gradients are written into ``grads = (dW1, db1, dW2, db2)``.

    ``work = (Z, A, dA, S, dS, row_loss, partial)`` are scratch buffers sized for the batch
    (see ``_engine.Workspace``); dA ends up holding the gradient at the pre-activation.
    """
    Z, A, dA, S, dS, row_loss, partial = work
    dW1, db1, dW2, db2 = grads
    _forward(X, W1, b1, W2, b2, kind, ap, Z, A, S)
    data_loss = _softmax_cross_entropy(S, y, dS, row_loss, partial)
    reg_loss = reg * (_chunked_sum(W1, True, partial) + _chunked_sum(W2, True, partial))

    np.dot(A.T, dS, dW2)
    _add_weight_decay(dW2, W2, reg)
    _column_sums(dS, db2)
    np.dot(dS, W2.T, dA)
    _activation_backward(dA, Z, A, kind, ap)
    np.dot(X.T, dA, dW1)
    _add_weight_decay(dW1, W1, reg)
    _column_sums(dA, db1)
    return data_loss + reg_loss


@njit(parallel=True)
def _argmax_rows(S, out):
    for i in prange(S.shape[0]):
        best = 0
        for j in range(1, S.shape[1]):
            if S[i, j] > S[i, best]:
                best = j
        out[i] = best


@njit(parallel=True)
def _softmax_rows(S, P):
    for i in prange(S.shape[0]):
        m = S[i, 0]
        for j in range(1, S.shape[1]):
            m = max(m, S[i, j])
        total = cast(S, 0)
        for j in range(S.shape[1]):
            P[i, j] = np.exp(S[i, j] - m)
            total += P[i, j]
        for j in range(S.shape[1]):
            P[i, j] = P[i, j] / total


@njit
def _all_finite(a, partial):
    """True when no element of ``a`` is NaN or inf, nor so large that their sum overflows:
    either way the training step that produced ``a`` has diverged."""
    return np.isfinite(_chunked_sum(a, False, partial))


@njit(parallel=True)
def _sgd_step(W, dW, learning_rate):
    """W -= learning_rate * dW, the course's plain SGD update."""
    w = W.reshape(W.size)
    g = dW.reshape(dW.size)
    for k in prange(w.size):
        w[k] -= learning_rate * g[k]
