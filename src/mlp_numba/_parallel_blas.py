"""Large matrix products cut into blocks that Numba's threads run side by side, each block a
one-thread BLAS call."""

from __future__ import annotations

from numba import njit, prange

from ._blas import gemm_accumulate
from ._numba_utils import BLAS_PIECES, cast, chunk_bounds, sum_chunk

#: Fewest rows (or columns) in a block: below that a product is too small to share.
SMALLEST_BLOCK = 16


@njit(inline="always")
def batch_pieces(n):
    """How many blocks to cut ``n`` rows into: ``BLAS_PIECES``, unless that leaves blocks of
    fewer than ``SMALLEST_BLOCK`` rows. Depends on ``n`` alone, never on the thread count."""
    return max(1, min(BLAS_PIECES, n // SMALLEST_BLOCK))


@njit(parallel=True)
def _gemm_t_blocks(A, B, C, alpha, beta, squares, partial):
    n = A.shape[1]
    pieces = batch_pieces(n)
    flat = C.reshape(C.size)
    width = C.shape[1]
    for p in prange(pieces):
        lo, hi = chunk_bounds(p, n, pieces)
        gemm_accumulate(True, False, A[:, lo:hi], B, C[lo:hi], alpha, beta)
        if squares:  # while the block is in cache
            partial[p] = sum_chunk(flat[lo * width : hi * width], True)
    total = cast(C, 0)
    if squares:
        for p in range(pieces):
            total += partial[p]
    return total


@njit
def gemm_t_by_columns(A, B, C, alpha, beta):
    """C = alpha * A.T @ B + beta * C, blocks of columns of A (rows of C) side by side; C is
    C-contiguous, and the blocks' sizes depend on its shape only."""
    _gemm_t_blocks(A, B, C, alpha, beta, False, C.reshape(C.size)[:0])


@njit
def gemm_t_by_columns_squared(A, B, C, alpha, beta, partial):
    """As ``gemm_t_by_columns``, returning sum(C**2) of the new C (C-contiguous), each block's
    share summed by its thread into ``partial`` and the shares added in order."""
    return _gemm_t_blocks(A, B, C, alpha, beta, True, partial)
