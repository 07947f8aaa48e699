"""Compiled scoring: class scores, classes and probabilities of many rows.

Every step of scoring is row by row, so a block of rows goes from input to output on one
thread, in cache: its product with W1 (a one-thread BLAS call), bias and activation, the
product with W2, then the argmax or softmax. Blocks run side by side; one parallel region per
call. The same blocks whatever the number of threads, so the same bits.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._blas import gemm
from ._kernels import _softmax_row, scores_of_block
from ._numba_utils import chunk_bounds, magnitude_bits
from ._parallel_blas import batch_pieces
from ._updates import gather_largest


@njit(parallel=True, error_model="numpy")
def score_rows(X, W1, b1, W2, b2, kind, ap, work, classes, probabilities):
    """The class scores of X into ``work``'s S buffer; with rows in ``classes``, their argmax
    there too; with rows in ``probabilities``, their softmax. Returns whether the hidden
    pre-activations Z = X@W1 + b1 are all finite.

    A NaN or inf anywhere in a row of X makes that row of Z NaN or inf (NaN * 0 is NaN;
    OpenBLAS multiplies every term), so the caller checks X itself only when this is False:
    an N x H pass instead of N x D (``TwoLayerNet._scored``).
    """
    Z, A, S, row_max = work[0], work[1], work[3], work[6]
    row_bits, _ = magnitude_bits(row_max)
    rows = X.shape[0]
    pieces = batch_pieces(rows)
    for p in prange(pieces):
        lo, hi = chunk_bounds(p, rows, pieces)
        gemm(False, False, X[lo:hi], W1, Z[lo:hi])
        scores_of_block(lo, hi, b1, W2, b2, kind, ap, Z, A, S, row_bits)
        if classes.shape[0]:
            for i in range(lo, hi):
                best = 0
                for j in range(1, S.shape[1]):
                    if S[i, j] > S[i, best]:
                        best = j
                classes[i] = best
        if probabilities.shape[0]:
            for i in range(lo, hi):
                _softmax_row(S, i, probabilities)
    if rows == 0:
        return True
    gather_largest(row_bits[:rows])
    return row_max[0] <= np.finfo(row_max.dtype).max
