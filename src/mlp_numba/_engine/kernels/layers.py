"""The layers' primitives on a block of rows, and the softmax cross-entropy.

Every stage of a forward and backward pass is row by row, so a block of rows goes through
every layer and back on one thread, in cache (``kernels.stack``); its products are one-thread
BLAS calls. The parallel region (``parallel.in_parallel``) runs the blocks side by side.
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel
from .blas import gemm
from .common import cast, magnitude_bits


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


# What a block of a weight gradient does with it (``stack.weight_rows``).
#: dW = A.T @ G, the first layer's input being the minibatch in ``work.Xb``.
GRADIENT = 0
#: dW = A.T @ G + 2 reg W, the first layer's input being X itself (``loss``'s batch).
GRADIENT_OF_INPUT = 1
#: Plain SGD fused into the product: W <- (1 - lr * 2 reg) W - lr * A.T @ G.
SGD_BY_PRODUCT = 2
#: dW's block, then the optimizer's update of W's block.
GRADIENT_AND_UPDATE = 3
#: The optimizer's update of W's block from the dW that ``GRADIENT`` left.
UPDATE = 4


# What scoring leaves besides the scores in ``work.S`` (``parallel.run_block``).
SCORES, CLASSES, PROBABILITIES = 0, 1, 2


@kernel
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
