"""Compiled kernels of one forward/backward pass. Private: callers validate inputs first.

Every kernel writes into buffers it is given and allocates nothing, so the training loop can
call them once per iteration without touching the allocator. ``kind`` selects the
activation at compile time (see ``_activations.kind_marker``).

Determinism: results must be bitwise identical whatever the number of Numba threads. So every
``prange`` iteration writes its own outputs, and reductions go through a fixed number of chunks
whose partial sums are combined serially (``_chunked_sum``), never through a parallel ``+=``.

Threads: a parallel region whose work is small runs on the calling thread alone
(``_small_work_serial``): waking a sleeping worker costs ~60 us here, more than a
200 x 100 element-wise pass takes on one core.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._activations import activate, activate_grad
from ._blas import gemm
from ._numba_utils import cast, get_num_threads, set_num_threads

#: Fixed number of chunks of a deterministic reduction (independent of the thread count).
N_CHUNKS = 64
#: Elements below which a kernel runs on one thread (see the module's docstring).
MIN_PARALLEL_WORK = 1 << 16


@njit
def _small_work_serial(work):
    """Run the next parallel region on one thread if ``work`` is small; returns the thread
    count to restore afterwards with ``set_num_threads``."""
    previous = get_num_threads()
    if work < MIN_PARALLEL_WORK:
        set_num_threads(1)
    return previous


@njit(parallel=True)
def _gather_rows(X, y, idx, Xb, yb):
    """Xb[i] = X[idx[i]], yb[i] = y[idx[i]]: the minibatch."""
    threads = _small_work_serial(Xb.size)
    for i in prange(idx.shape[0]):
        r = idx[i]
        Xb[i, :] = X[r, :]
        yb[i] = y[r]
    set_num_threads(threads)


@njit(parallel=True)
def _bias_activation(Z, b, kind, ap, A):
    """Z += b (in place, kept for the backward pass); A = activation(Z)."""
    threads = _small_work_serial(Z.size)
    for i in prange(Z.shape[0]):
        for j in range(Z.shape[1]):
            z = Z[i, j] + b[j]
            Z[i, j] = z
            A[i, j] = activate(kind, z, ap)
    set_num_threads(threads)


@njit(parallel=True)
def _add_bias(S, b):
    threads = _small_work_serial(S.size)
    for i in prange(S.shape[0]):
        for j in range(S.shape[1]):
            S[i, j] += b[j]
    set_num_threads(threads)


@njit
def _forward(X, W1, b1, W2, b2, kind, ap, Z, A, S):
    """Z = X@W1 + b1, A = activation(Z), S = A@W2 + b2 (the class scores)."""
    gemm(False, False, X, W1, Z)
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


@njit(parallel=True)
def _softmax_cross_entropy(S, y, dS, row_loss, partial):
    """Mean softmax cross-entropy of the scores S, and its gradient dS = (softmax(S) - Y) / N.

    Log-sum-exp through the row maximum, so large scores neither overflow nor lose the loss.
    """
    N, C = S.shape
    n = cast(S, N)
    threads = _small_work_serial(S.size)
    for i in prange(N):
        m, total = _softmax_row(S, i, dS)
        row_loss[i] = np.log(total) - (S[i, y[i]] - m)
        dS[i, y[i]] -= cast(S, 1)
        for j in range(C):
            dS[i, j] = dS[i, j] / n
    set_num_threads(threads)
    return _chunked_sum(row_loss, False, partial) / n


@njit(inline="always")
def _sum_partials(partial, like):
    """The chunks' partial sums added in a fixed order, in the dtype of ``like``."""
    total = cast(like, 0)
    for c in range(partial.shape[0]):
        total += partial[c]
    return total


@njit(parallel=True)
def _chunked_sum(a, squares, partial):
    """Sum of a (of its squares if ``squares``) over a fixed number of chunks: the same bits
    for any thread count. ``partial`` holds N_CHUNKS values."""
    flat = a.reshape(a.size)
    n = flat.size
    n_chunks = partial.shape[0]
    step = (n + n_chunks - 1) // n_chunks
    threads = _small_work_serial(n)
    for c in prange(n_chunks):
        s = cast(a, 0)
        for k in range(c * step, min(n, (c + 1) * step)):
            s += flat[k] * flat[k] if squares else flat[k]
        partial[c] = s
    set_num_threads(threads)
    return _sum_partials(partial, a)


@njit(parallel=True)
def _activation_backward(dA, Z, A, kind, ap):
    """dA *= activation'(Z), in place: dA becomes the gradient at the pre-activation."""
    threads = _small_work_serial(dA.size)
    for i in prange(dA.shape[0]):
        for j in range(dA.shape[1]):
            dA[i, j] *= activate_grad(kind, Z[i, j], A[i, j], ap)
    set_num_threads(threads)


@njit(parallel=True)
def _column_sums(M, out):
    """out[j] = sum_i M[i, j], each column summed serially (deterministic)."""
    threads = _small_work_serial(M.size)
    for j in prange(M.shape[1]):
        s = cast(M, 0)
        for i in range(M.shape[0]):
            s += M[i, j]
        out[j] = s
    set_num_threads(threads)


@njit(parallel=True)
def _axpy_reduce(y, x, alpha, squares, partial):
    """y += alpha * x in one pass, returning the deterministic chunked sum of the new y's
    squares (``squares``) or of ``y - y``, which is 0 only when every element is finite."""
    yf = y.reshape(y.size)
    xf = x.reshape(x.size)
    n = yf.size
    step = (n + partial.shape[0] - 1) // partial.shape[0]
    threads = _small_work_serial(n)
    for c in prange(partial.shape[0]):
        s = cast(y, 0)
        for k in range(c * step, min(n, (c + 1) * step)):
            v = yf[k] + alpha * xf[k]
            yf[k] = v
            s += v * v if squares else v - v
        partial[c] = s
    set_num_threads(threads)
    return _sum_partials(partial, y)


@njit
def _add_weight_decay(dW, W, reg, partial):
    """dW += 2 * reg * W, the gradient of reg * sum(W**2); returns whether all of dW is finite,
    checked in the same pass."""
    return np.isfinite(_axpy_reduce(dW, W, cast(W, 2) * reg, False, partial))


@njit
def _squared_norm(W1, W2, partial):
    """sum(W1**2) + sum(W2**2), deterministically."""
    return _chunked_sum(W1, True, partial) + _chunked_sum(W2, True, partial)


@njit
def _loss_and_grads(X, y, W1, b1, W2, b2, reg, squared_norm, kind, ap, work, grads):
    """Loss of the batch (X, y); its gradients are written into ``grads = (dW1, db1, dW2, db2)``.

    ``squared_norm`` is ``_squared_norm(W1, W2)``, which the training loop gets for free from
    the previous update. ``work = (Z, A, dA, S, dS, row_loss, partial)`` are scratch buffers
    sized for the batch (see ``_engine.Workspace``); dA ends up holding the gradient at the
    pre-activation. Returns the loss and whether every gradient is finite.
    """
    Z, A, dA, S, dS, row_loss, partial = work
    dW1, db1, dW2, db2 = grads
    _forward(X, W1, b1, W2, b2, kind, ap, Z, A, S)
    loss = _softmax_cross_entropy(S, y, dS, row_loss, partial) + reg * squared_norm

    gemm(True, False, A, dS, dW2)
    finite = _add_weight_decay(dW2, W2, reg, partial)
    _column_sums(dS, db2)
    gemm(False, True, dS, W2, dA)
    _activation_backward(dA, Z, A, kind, ap)
    gemm(True, False, X, dA, dW1)
    finite &= _add_weight_decay(dW1, W1, reg, partial)
    _column_sums(dA, db1)
    finite &= _all_finite(db1, partial) and _all_finite(db2, partial)
    return loss, finite


@njit(parallel=True)
def _argmax_rows(S, out):
    threads = _small_work_serial(S.size)
    for i in prange(S.shape[0]):
        best = 0
        for j in range(1, S.shape[1]):
            if S[i, j] > S[i, best]:
                best = j
        out[i] = best
    set_num_threads(threads)


@njit(parallel=True)
def _softmax_rows(S, P):
    threads = _small_work_serial(S.size)
    for i in prange(S.shape[0]):
        _softmax_row(S, i, P)
    set_num_threads(threads)


@njit
def _all_finite(a, partial):
    """True when no element of ``a`` is NaN or inf, nor so large that their sum overflows:
    either way the training step that produced ``a`` has diverged."""
    return np.isfinite(_chunked_sum(a, False, partial))


@njit
def _sgd_step(W, dW, learning_rate, partial):
    """W -= learning_rate * dW, the course's plain SGD update. Returns sum(W**2) of the new W,
    computed in the same pass with the chunks of ``_chunked_sum`` (so the same bits)."""
    return _axpy_reduce(W, dW, -learning_rate, True, partial)


@njit(parallel=True)
def _momentum_update(W, dW, V, lr, mu, nesterov, partial):
    """Classical (or Nesterov, as CS231n writes it) momentum: V = mu*V - lr*dW, then
    W += V (or W += -mu*V_old + (1 + mu)*V). Returns sum(W**2) of the new W."""
    w = W.reshape(W.size)
    g = dW.reshape(dW.size)
    v = V.reshape(V.size)
    n = w.size
    step = (n + partial.shape[0] - 1) // partial.shape[0]
    one = cast(W, 1)
    threads = _small_work_serial(n)
    for c in prange(partial.shape[0]):
        s = cast(W, 0)
        for k in range(c * step, min(n, (c + 1) * step)):
            previous = v[k]
            velocity = mu * previous - lr * g[k]
            v[k] = velocity
            x = w[k] - mu * previous + (one + mu) * velocity if nesterov else w[k] + velocity
            w[k] = x
            s += x * x
        partial[c] = s
    set_num_threads(threads)
    return _sum_partials(partial, W)


@njit(parallel=True)
def _adam_update(W, dW, M, S, lr, beta1, beta2, eps, decay, correction1, correction2, partial):
    """Adam with bias correction; ``decay`` > 0 adds AdamW's decoupled weight decay.
    Returns sum(W**2) of the new W."""
    w = W.reshape(W.size)
    g = dW.reshape(dW.size)
    m = M.reshape(M.size)
    v = S.reshape(S.size)
    n = w.size
    step = (n + partial.shape[0] - 1) // partial.shape[0]
    one = cast(W, 1)
    threads = _small_work_serial(n)
    for c in prange(partial.shape[0]):
        s = cast(W, 0)
        for k in range(c * step, min(n, (c + 1) * step)):
            gk = g[k]
            mk = beta1 * m[k] + (one - beta1) * gk
            vk = beta2 * v[k] + (one - beta2) * (gk * gk)
            m[k] = mk
            v[k] = vk
            x = w[k] - lr * ((mk / correction1) / (np.sqrt(vk / correction2) + eps) + decay * w[k])
            w[k] = x
            s += x * x
        partial[c] = s
    set_num_threads(threads)
    return _sum_partials(partial, W)


@njit
def _optimizer_step(code, W, dW, state1, state2, lr, hyper, step, partial):
    """Update W from its gradient with the optimizer ``code`` (see ``_optimizer_spec``), at
    optimizer step ``step`` (1, 2, ...). Returns sum(W**2) of the new W."""
    if code == 0:
        return _sgd_step(W, dW, lr, partial)
    if code <= 2:
        return _momentum_update(W, dW, state1, lr, hyper[0], code == 2, partial)
    beta1, beta2 = np.float64(hyper[0]), np.float64(hyper[1])
    correction1 = cast(W, 1.0 - beta1**step)
    correction2 = cast(W, 1.0 - beta2**step)
    decay = hyper[3] if code == 4 else cast(W, 0)
    return _adam_update(
        W,
        dW,
        state1,
        state2,
        lr,
        hyper[0],
        hyper[1],
        hyper[2],
        decay,
        correction1,
        correction2,
        partial,
    )
