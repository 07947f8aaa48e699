"""Sums, largest magnitudes and finiteness tests, serial and deterministic.

The parallel region combines the blocks' results through these (``largest_of`` and
:func:`sum_blocks`), in block order, so the bits do not depend on the number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array

from .._jit import kernel
from .common import cast, sum_chunk, view_of


@intrinsic
def flat(typingctx, a):
    """``a`` as a 1-d view (``a`` is C-contiguous).

    An intrinsic that builds the view from ``a``'s pointer and size: ``a.reshape(a.size)``
    lowers Numba's general reshape, with its helper call and its error path, at every use.
    """
    if not isinstance(a, types.Array) or a.layout != "C":
        return None
    result = a.copy(ndim=1)

    def codegen(context, builder, signature, arguments):
        source = make_array(a)(context, builder, value=arguments[0])
        view = view_of(
            context, builder, a, arguments[0], result,
            shape=[source.nitems], strides=[source.itemsize],
        )  # fmt: skip
        return impl_ret_borrowed(context, builder, result, view)

    return result(a), codegen


@kernel
def squared_norm(W1, W2):
    """sum(W1**2) + sum(W2**2), the L2 term's sum."""
    return sum_chunk(flat(W1), True) + sum_chunk(flat(W2), True)


@kernel
def all_finite(a):
    """True when no element of ``a`` is NaN or inf, nor so large that their sum overflows:
    either way the training step that produced ``a`` has diverged."""
    return np.isfinite(sum_chunk(flat(a), False))


@kernel
def sum_of(values, n):
    """values[0] + values[1] + ... + values[n - 1], in that order."""
    total = values[0]
    for p in range(1, n):
        total += values[p]
    return total


@kernel
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


@kernel
def sum_blocks(work, pieces):
    """The gradients ``work.dW2``, ``db1`` and ``db2`` as the sums of the first ``pieces``
    blocks' shares, in block order (``layers.block_shares``). Returns the loss's sum over the
    rows and whether the gradients are finite (nor so large that their sum overflows)."""
    shares = work.block_sums
    H, C = work.dW2.shape
    block_W2 = work.block_W2.reshape((work.block_W2.shape[0], H * C))
    total = _add_blocks(block_W2, pieces, flat(work.dW2))
    total += _add_blocks(shares[:, :H], pieces, work.db1)
    total += _add_blocks(shares[:, H : H + C], pieces, work.db2)
    loss = shares[0, H + C]
    for p in range(1, pieces):
        loss += shares[p, H + C]
    return loss, np.isfinite(total)


@kernel
def add_weight_decay(dW, W, reg):
    """dW += 2 * reg * W: the gradient of the loss's ``reg * sum(W**2)`` term."""
    g, w = flat(dW), flat(W)
    decay = cast(W, 2) * reg
    for k in range(w.size):
        g[k] += decay * w[k]
