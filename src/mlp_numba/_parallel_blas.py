"""Large matrix products cut into blocks that Numba's threads run side by side, each block a
one-thread BLAS call."""

from __future__ import annotations

from numba import njit, prange

from ._blas import gemm, gemm_accumulate
from ._numba_utils import BLAS_PIECES, chunk_bounds

#: Fewest rows (or columns) in a block: below that a product is too small to share.
SMALLEST_BLOCK = 16


@njit(inline="always")
def batch_pieces(n):
    """How many blocks to cut ``n`` rows into: ``BLAS_PIECES``, unless that leaves blocks of
    fewer than ``SMALLEST_BLOCK`` rows. Depends on ``n`` alone, never on the thread count."""
    return max(1, min(BLAS_PIECES, n // SMALLEST_BLOCK))


@njit(parallel=True)
def gemm_by_rows(A, B, C):
    """C = A @ B, blocks of rows of A and C side by side, each a one-thread BLAS call."""
    n = A.shape[0]
    pieces = batch_pieces(n)
    for p in prange(pieces):
        lo, hi = chunk_bounds(p, n, pieces)
        gemm(False, False, A[lo:hi], B, C[lo:hi])


@njit(parallel=True)
def gemm_t_by_columns(A, B, C, alpha, beta):
    """C = alpha * A.T @ B + beta * C, blocks of columns of A (rows of C) side by side."""
    n = A.shape[1]
    pieces = batch_pieces(n)
    for p in prange(pieces):
        lo, hi = chunk_bounds(p, n, pieces)
        gemm_accumulate(True, False, A[:, lo:hi], B, C[lo:hi], alpha, beta)
