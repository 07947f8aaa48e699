"""Sums, largest magnitudes and finiteness tests, serial and deterministic.

The entry point combines the blocks' results through these (``common.largest_of`` and
:func:`sum_of`), in block order, so the bits do not depend on the number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array

from .._jit import kernel
from .common import sum_chunk, view_of


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
