"""Small compile-time helpers for the kernels."""

from numba import types
from numba.extending import overload
from numba.np.numpy_support import as_dtype


def cast(like, value):
    """``value`` converted to the dtype of ``like`` (a scalar or an array), inside compiled code.

    Numba promotes ``float32 * 0.5`` (and even ``float32 * 2``) to float64; writing constants
    as ``cast(z, 0.5)`` keeps float32 kernels in float32.
    """


@overload(cast, inline="always")
def _cast_overload(like, value):
    dtype = like.dtype if isinstance(like, types.Array) else like
    target = as_dtype(dtype).type
    return lambda like, value: target(value)
