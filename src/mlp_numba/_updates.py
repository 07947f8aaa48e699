"""Compiled parameter updates: one pass over a parameter, its gradient and the optimizer's state.

Each update adds the L2 term's gradient (``2 * reg * W``) on the fly, so the training loop never
writes the full gradient of W1 a second time, and returns ``sum(W**2)`` of the new parameter,
which the next step's loss needs. The formulas are the reference's
(``reference.optimizer_update``) term for term; the optimizer codes are
``_optimizer_spec.OPTIMIZERS``'.

Speed: an update is a memory pass over a few arrays the size of W1, and it runs at memory speed
only if LLVM vectorises it. Two things stop it: Numba's default Python error model puts a
zero-division check before every ``/`` (so ``error_model="numpy"``), and a running sum is a chain
of dependent additions unless it may be reordered (so ``fastmath={"reassoc", "nsz"}``, which
leaves NaN and inf semantics alone). Measured here on a 3072 x 100 float64 Adam update, one
thread: 1.45 ms before, 0.36 ms after.

Determinism: the reorderings are fixed when the code is compiled and every chunk of
``N_CHUNKS`` is summed by one thread, so the bits do not depend on the number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._numba_utils import (
    N_CHUNKS,  # noqa: F401 (the chunk count of these reductions)
    cast,
    chunk_bounds,
    magnitude_bits,
    sum_chunk,
)
from ._parallel_blas import gemm_t_by_columns_squared

#: The code of plain SGD, the course's (``_optimizer_spec.OPTIMIZERS``).
SGD = 0
#: Elements below which a pass runs in one piece on the calling thread, without entering a
#: parallel region: waking a sleeping worker costs ~60 us here, more than a 200 x 100
#: element-wise pass takes on one core, and even a region run on one thread, or a cut into
#: N_CHUNKS chunks, costs microseconds. The choice depends on the size alone, so the bits do
#: not depend on the threads.
MIN_PARALLEL_WORK = 1 << 16


@njit(inline="always")
def sum_partials(partial, like):
    """The chunks' partial sums added in a fixed order, in the dtype of ``like``."""
    total = cast(like, 0)
    for c in range(partial.shape[0]):
        total += partial[c]
    return total


# The chunk functions below take 1-d slices and loop over ``range(w.size)``: a loop over
# ``range(lo, hi)`` of a longer array is not vectorised (Numba's index wraparound for a
# possibly negative ``lo`` stands in the way). The updates carry no fast-math flags, so they
# round exactly like the reference; the sum of squares of the new values is a second loop over
# the chunk, still in cache. (Fused into the update loop it would need the flags, and Numba
# then applies them to the inlined arithmetic too: seen here as last-bit differences in Adam.)


@njit(error_model="numpy")
def max_magnitude_bits(a):
    """The largest ``magnitude_bits`` of the 1-d array ``a`` (0 when empty)."""
    bits, mask = magnitude_bits(a)
    largest = mask ^ mask
    for k in range(bits.size):
        largest = max(largest, bits[k] & mask)
    return largest


@njit(error_model="numpy")
def _sgd_chunk(w, g, lr, decay):
    for k in range(w.size):
        w[k] = w[k] - lr * (g[k] + decay * w[k])


@njit(error_model="numpy")
def _momentum_chunk(w, g, v, lr, decay, mu, nesterov):
    one = cast(w, 1)
    for k in range(w.size):
        previous = v[k]
        velocity = mu * previous - lr * (g[k] + decay * w[k])
        v[k] = velocity
        w[k] = w[k] - mu * previous + (one + mu) * velocity if nesterov else w[k] + velocity


@njit(error_model="numpy")
def _adam_chunk(w, g, m, v, lr, decay, beta1, beta2, eps, weight_decay, correction1, correction2):
    one = cast(w, 1)
    for k in range(w.size):
        gk = g[k] + decay * w[k]
        mk = beta1 * m[k] + (one - beta1) * gk
        vk = beta2 * v[k] + (one - beta2) * (gk * gk)
        m[k] = mk
        v[k] = vk
        w[k] = w[k] - lr * (
            (mk / correction1) / (np.sqrt(vk / correction2) + eps) + weight_decay * w[k]
        )


@njit(parallel=True, error_model="numpy")
def _chunked_sum_in_parallel(flat, squares, partial):
    for c in prange(partial.shape[0]):
        lo, hi = chunk_bounds(c, flat.size, partial.shape[0])
        partial[c] = sum_chunk(flat[lo:hi], squares)
    return sum_partials(partial, flat)


@njit
def chunked_sum(a, squares, partial):
    """Sum of a (of its squares if ``squares``) over a fixed number of chunks, or in one piece
    when ``a`` is smaller than ``MIN_PARALLEL_WORK``: the same bits for any thread count.
    ``partial`` holds N_CHUNKS values."""
    flat = a.reshape(a.size)
    if flat.size < MIN_PARALLEL_WORK:
        return sum_chunk(flat, squares)
    return _chunked_sum_in_parallel(flat, squares, partial)


@njit(parallel=True, error_model="numpy")
def _max_magnitude_in_parallel(flat, partial_bits):
    for c in prange(partial_bits.shape[0]):
        lo, hi = chunk_bounds(c, flat.size, partial_bits.shape[0])
        partial_bits[c] = max_magnitude_bits(flat[lo:hi])


@njit
def max_magnitude(a, partial):
    """max(abs(a)), or NaN or inf when an element of ``a`` is not finite (0 when empty): one
    vectorised pass, over chunks side by side when ``a`` is large. The result goes through
    ``partial``'s memory as integers."""
    flat = a.reshape(a.size)
    partial_bits, _ = magnitude_bits(partial)
    if flat.size < MIN_PARALLEL_WORK:
        partial_bits[0] = max_magnitude_bits(flat)
    else:
        _max_magnitude_in_parallel(flat, partial_bits)
        gather_largest(partial_bits)
    return partial[0]


@njit
def gather_largest(bits):
    """bits[0] = max(bits): the chunks' or rows' largest ``magnitude_bits``, whose float the
    caller then reads through its float view of the same memory.

    Callers pass the integer view the parallel loop wrote, not the float array: Numba does
    not know the two alias, and a loop whose writes are never read again is dropped.
    """
    for c in range(1, bits.size):
        bits[0] = max(bits[0], bits[c])


@njit
def all_values_finite(a, partial):
    """True when no element of ``a`` is NaN or inf."""
    return max_magnitude(a, partial) <= np.finfo(a.dtype).max


@njit
def all_finite(a, partial):
    """True when no element of ``a`` is NaN or inf, nor so large that their sum overflows:
    either way the training step that produced ``a`` has diverged."""
    return np.isfinite(chunked_sum(a, False, partial))


@njit(parallel=True, error_model="numpy")
def _add_weight_decay_in_parallel(g, w, decay):
    for k in prange(w.size):
        g[k] += decay * w[k]


@njit(error_model="numpy")
def add_weight_decay(dW, W, reg):
    """dW += 2 * reg * W: the gradient of the loss's ``reg * sum(W**2)`` term."""
    g = dW.reshape(dW.size)
    w = W.reshape(W.size)
    decay = cast(W, 2) * reg
    if w.size < MIN_PARALLEL_WORK:
        for k in range(w.size):
            g[k] += decay * w[k]
    else:
        _add_weight_decay_in_parallel(g, w, decay)


@njit(error_model="numpy")
def _update_chunk(code, w, g, s1, s2, lr, decay, hyper, step):
    """``update`` of one chunk (1-d slices); returns the sum of its new values' squares."""
    if code == SGD:
        _sgd_chunk(w, g, lr, decay)
    elif code <= 2:
        _momentum_chunk(w, g, s1, lr, decay, cast(w, hyper[0]), code == 2)
    else:
        _adam_chunk(
            w, g, s1, s2, lr, decay,
            cast(w, hyper[0]), cast(w, hyper[1]), cast(w, hyper[2]),
            cast(w, hyper[3]) if code == 4 else cast(w, 0),
            cast(w, 1.0 - hyper[0] ** step), cast(w, 1.0 - hyper[1] ** step),
        )  # fmt: skip
    return sum_chunk(w, True)


@njit(parallel=True, error_model="numpy")
def _update_in_parallel(code, w, g, s1, s2, lr, decay, hyper, step, partial):
    for c in prange(partial.shape[0]):
        lo, hi = chunk_bounds(c, w.size, partial.shape[0])
        partial[c] = _update_chunk(
            code, w[lo:hi], g[lo:hi], s1[lo:hi], s2[lo:hi], lr, decay, hyper, step
        )


@njit
def update(code, W, dW, state1, state2, lr, reg, hyper, step, partial):
    """Update W in place from its data gradient ``dW`` (without the L2 term, which is added
    here) with the optimizer ``code``, at optimizer step ``step`` (1, 2, ...).

    ``state1`` and ``state2`` are the optimizer's buffers shaped like W (empty when it keeps
    none), ``hyper`` its float64 parameters (``_optimizer_spec.hyper_vector``). Returns sum(W**2) of
    the new W. A W smaller than ``MIN_PARALLEL_WORK`` is updated in one piece.
    """
    w = W.reshape(W.size)
    g = dW.reshape(dW.size)
    s1 = state1.reshape(state1.size)
    s2 = state2.reshape(state2.size)
    decay = cast(W, 2) * reg
    if w.size < MIN_PARALLEL_WORK:
        return _update_chunk(code, w, g, s1, s2, lr, decay, hyper, step)
    _update_in_parallel(code, w, g, s1, s2, lr, decay, hyper, step, partial)
    return sum_partials(partial, W)


# Plain SGD on W1 needs no gradient array: W1 <- (1 - lr * 2 reg) W1 - lr * X.T @ dA is one BLAS
# call with alpha and beta (measured here at the CIFAR-10 shape: 3.25 -> 2.98 ms a step, as
# dW1 is neither written, checked nor read back). Its result cannot be checked before it
# overwrites W1, so it runs only when a bound proves it finite; otherwise the caller takes the
# general path. There the same bound, when it holds, spares the pass that checks dW1.


@njit
def product_bound(x_max, rows, dA_max):
    """A bound on the magnitude of every element of X.T @ dA, given ``x_max = max(abs(X))`` and
    ``dA_max = max(abs(dA))``: each is a sum of ``rows`` products. NaN or inf when X or dA
    holds a value that is not finite. In float64, so that the bound itself does not overflow."""
    return rows * np.float64(x_max) * np.float64(dA_max)


@njit
def product_is_finite(bound, like):
    """Whether a ``product_bound`` proves X.T @ dA finite in the dtype of ``like``, with room for
    a few additions."""
    return bound <= np.finfo(like.dtype).max / 4


@njit
def sgd_by_product_is_finite(bound, lr, reg, squared_norm, like):
    """Whether ``sgd_by_product`` surely leaves W1 finite, given the ``product_bound`` and a
    finite ``squared_norm >= sum(W1**2)`` (so each element of W1 is below sqrt(the largest
    float)). The bound must hold with and without the factor lr, as a BLAS may apply alpha
    before or after summing."""
    beta = 1.0 - lr * 2.0 * reg
    return (
        squared_norm <= np.finfo(like.dtype).max
        and product_is_finite(bound * max(lr, 1.0), like)
        and abs(beta) <= 2.0
    )


@njit
def sgd_by_product(W1, X, dA, lr, reg, partial):
    """W1 -= lr * (X.T @ dA + 2 * reg * W1) in one BLAS call; returns sum(W1**2) of the new W1.

    Rounds differently from ``update`` (``(1 - lr * 2 reg) * W1`` is formed first), within the
    reference's tolerance rather than bit for bit."""
    decay = cast(W1, 2) * reg
    return gemm_t_by_columns_squared(X, dA, W1, -lr, cast(W1, 1) - lr * decay, partial)
