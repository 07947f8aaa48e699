"""The compiled training engine: what the public ``TwoLayerNet`` calls, and its buffers.

A block of training iterations runs inside one compiled call (``train_steps``), with the
minibatch indices drawn beforehand in Python from the same random stream the course uses.
Python regains control only between blocks: at the course's epoch and ``verbose`` points, and
at least every ``net._MAX_BLOCK`` iterations.
"""

from __future__ import annotations

import numpy as np

from ._blas import one_blas_thread
from ._kernels import (
    _loss_and_grads,
    _loss_and_grads_except_dW1,
    _squared_norm,
)
from ._numba_utils import BLAS_PIECES, N_CHUNKS, cached_njit
from ._parallel_blas import gemm_t_by_columns
from ._scoring import score_rows
from ._updates import (
    SGD,
    all_values_finite,
    product_bound,
    product_is_finite,
    sgd_by_product,
    sgd_by_product_is_finite,
    update,
)
from ._updates import all_finite as sum_is_finite


class Workspace:
    """Scratch buffers for passes over ``n_rows`` rows, allocated once and reused.

    ``Z_parts`` holds the partial products of a training step whose product X@W1 is cut along
    D (``_kernels.splits_columns``): ``parts`` of them, each n_rows x H. ``block_W2``,
    ``block_sums`` and ``block_max`` hold each block of rows' share of the gradients and the
    loss, and its largest magnitude of dA (``_kernels._block_shares``).
    """

    def __init__(self, n_rows, sizes, dtype, parts=0):
        _, H, C = sizes
        self.n_rows = n_rows
        self.Z = np.empty((n_rows, H), dtype)
        self.A = np.empty((n_rows, H), dtype)
        self.dA = np.empty((n_rows, H), dtype)
        self.S = np.empty((n_rows, C), dtype)
        self.dS = np.empty((n_rows, C), dtype)
        self.row_loss = np.empty(n_rows, dtype)
        self.row_max = np.empty(n_rows, dtype)
        self.Z_parts = np.empty((parts, n_rows, H), dtype)
        self.partial = np.empty(N_CHUNKS, dtype)
        self.block_W2 = np.empty((BLAS_PIECES, H, C), dtype)
        self.block_sums = np.empty((BLAS_PIECES, H + C + 1), dtype)
        self.block_max = np.empty(BLAS_PIECES, dtype)

    @property
    def buffers(self):
        return self.rows(self.n_rows)

    def rows(self, n):
        """The buffers as the kernels take them, for the first ``n`` rows."""
        per_row = (self.Z, self.A, self.dA, self.S, self.dS, self.row_loss, self.row_max)
        blocks = (self.Z_parts[:, :n], self.partial, self.block_W2, self.block_sums, self.block_max)
        return (*(b[:n] for b in per_row), *blocks)


#: Partial products a training step's workspace holds (see ``_kernels.splits_columns``).
STEP_PARTS = BLAS_PIECES - 1


def new_grads(sizes, dtype):
    D, H, C = sizes
    return (
        np.empty((D, H), dtype),
        np.empty(H, dtype),
        np.empty((H, C), dtype),
        np.empty(C, dtype),
    )


@cached_njit
def all_finite(X):
    """Whether every value of X is finite: the input check of ``train``, ``predict`` and the
    rest, a vectorised pass that is faster than ``np.isfinite(X).all()`` and makes no mask."""
    return all_values_finite(X, np.empty(N_CHUNKS, X.dtype))


class _OnOneBlasThread:
    """A compiled entry point that multiplies matrices, called with the BLAS on one thread
    (``_blas.one_blas_thread``): its products are cut into blocks that Numba's threads run side
    by side, each a BLAS call that must not start threads of its own. Attributes are the
    dispatcher's (``stats``, ``signatures``...)."""

    def __init__(self, dispatcher):
        self._dispatcher = dispatcher

    def __call__(self, *args):
        with one_blas_thread:
            return self._dispatcher(*args)

    def __getattr__(self, name):
        return getattr(self._dispatcher, name)


# The scoring entry points return whether the hidden pre-activations were all finite
# (``_scoring.score_rows``).


@_OnOneBlasThread
@cached_njit
def scores(X, W1, b1, W2, b2, kind, ap, work):
    """The class scores of X, left in ``work``'s S buffer."""
    return score_rows(X, W1, b1, W2, b2, kind, ap, work, np.empty(0, np.intp), work[3][:0])


@_OnOneBlasThread
@cached_njit
def predict(X, W1, b1, W2, b2, kind, ap, work, out):
    return score_rows(X, W1, b1, W2, b2, kind, ap, work, out, work[3][:0])


@_OnOneBlasThread
@cached_njit
def predict_proba(X, W1, b1, W2, b2, kind, ap, work, out):
    return score_rows(X, W1, b1, W2, b2, kind, ap, work, np.empty(0, np.intp), out)


@_OnOneBlasThread
@cached_njit
def loss_and_grads(X, y, W1, b1, W2, b2, reg, kind, ap, work, grads):
    squared_norm = _squared_norm(W1, W2, work[8])
    return _loss_and_grads(X, y, W1, b1, W2, b2, reg, squared_norm, kind, ap, work, grads)[0]


@_OnOneBlasThread
@cached_njit
def train_steps(
    X, y, batches, W1, b1, W2, b2, rates, reg, optimizer, hyper, step0, state1, state2,
    kind, ap, Xb, yb, work, grads, losses,
):  # fmt: skip
    """Optimizer steps on the minibatches ``X[batches[t]]``, t = 0, 1, ...; losses[t] gets each
    loss, ``rates[t]`` is its learning rate, and ``step0 + t + 1`` its optimizer step number.

    ``state1`` and ``state2`` hold the optimizer's buffers for (W1, b1, W2, b2) (empty arrays
    when it keeps none). Returns the number of steps taken: fewer than ``len(batches)`` when a
    loss or gradient was not finite, in which case that step's update was not applied.
    """
    dW1, db1, dW2, db2 = grads
    dA, partial = work[2], work[8]
    zero = reg - reg  # the biases carry no L2 term
    squared_norm = _squared_norm(W1, W2, partial)
    for t in range(batches.shape[0]):
        loss, finite, x_max, dA_max = _loss_and_grads_except_dW1(
            X, y, batches[t], True, Xb, yb, W1, b1, W2, b2, reg, squared_norm, kind, ap, work, grads
        )
        losses[t] = loss
        if not (finite and np.isfinite(loss)):
            return t
        lr, step = rates[t], step0 + t + 1
        bound = product_bound(x_max, dA.shape[0], dA_max)
        if optimizer == SGD and sgd_by_product_is_finite(bound, lr, reg, squared_norm, W1):
            squared_norm = sgd_by_product(W1, Xb, dA, lr, reg, partial)
        else:
            gemm_t_by_columns(Xb, dA, dW1, 1.0, 0.0)
            if not (product_is_finite(bound, W1) or sum_is_finite(dW1, partial)):
                return t
            squared_norm = update(
                optimizer, W1, dW1, state1[0], state2[0], lr, reg, hyper, step, partial
            )
        update(optimizer, b1, db1, state1[1], state2[1], lr, zero, hyper, step, partial)
        squared_norm += update(
            optimizer, W2, dW2, state1[2], state2[2], lr, reg, hyper, step, partial
        )
        update(optimizer, b2, db2, state1[3], state2[3], lr, zero, hyper, step, partial)
    return batches.shape[0]
