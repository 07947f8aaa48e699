"""Constants and small helpers every kernel uses: casts, magnitudes and block boundaries.

Determinism: results must be bitwise identical whatever the number of threads. So the blocks
work is cut into depend on the shapes only (:func:`batch_pieces`, :data:`N_CHUNKS`), every
block writes its own outputs, and the blocks' partial results are combined serially in block
order, never through a parallel ``+=``.
"""

from __future__ import annotations

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array

from .._jit import INTERNAL, kernel

#: Fixed number of chunks of a deterministic reduction (independent of the thread count).
N_CHUNKS = 64
#: Blocks a large product or batch is cut into: the CPUs this process may use, whatever the
#: thread settings, so that results do not depend on the number of threads; at most N_CHUNKS,
#: as buffers of that many values hold the blocks' results. Read at run time, not compiled in
#: (compiled code may come from another machine): the engine sizes ``work.block_max`` with one
#: row per block, and the kernels take the count from there.
BLAS_PIECES = max(1, min(N_CHUNKS, numba.config.NUMBA_DEFAULT_NUM_THREADS))
#: Fewest rows (or columns) in a block: below that a product is too small to share.
SMALLEST_BLOCK = 16
#: Let a running sum be reordered into vector lanes; NaN and inf keep their meaning.
REORDER_SUMS = {"reassoc", "nsz"}


@kernel
def chunk_bounds(c, n, n_chunks):
    """The slice [lo, hi) of chunk ``c`` of ``n`` elements cut into ``n_chunks`` (may be empty)."""
    step = (n + n_chunks - 1) // n_chunks
    return min(n, c * step), min(n, (c + 1) * step)


@kernel
def batch_pieces(n, most):
    """How many blocks to cut ``n`` rows (or columns) into: ``most`` (``BLAS_PIECES``), unless
    that leaves blocks of fewer than ``SMALLEST_BLOCK``. Never depends on the threads."""
    return max(1, min(most, n // SMALLEST_BLOCK))


@intrinsic
def cast(typingctx, like, value):
    """``value`` converted to the dtype of ``like`` (a scalar or an array), inside compiled code.

    Numba promotes ``float32 * 0.5`` (and even ``float32 * 2``) to float64; writing constants
    as ``cast(z, 0.5)`` keeps float32 kernels in float32. An intrinsic, not an overload: it
    emits the one conversion where it is called, where an overload would be a function
    compiled for every pair of types.
    """
    dtype = like.dtype if isinstance(like, types.Array) else like
    source = types.unliteral(value)

    def codegen(context, builder, signature, arguments):
        return context.cast(builder, arguments[1], source, dtype)

    return dtype(like, source), codegen


def fill_view(context, builder, view, source, data, shape, strides):
    """Set the fields of ``view`` (an array struct from ``make_array``) to ``data`` with
    ``shape`` and ``strides`` (lists of intp values), borrowing ``source``'s memory."""
    intp = context.get_value_type(types.intp)
    nitems = ir.Constant(intp, 1)
    for extent in shape:
        nitems = builder.mul(nitems, extent)
    view.data = data
    view.shape = cgutils.pack_array(builder, shape, intp)
    view.strides = cgutils.pack_array(builder, strides, intp)
    view.itemsize = source.itemsize
    view.meminfo = source.meminfo
    view.parent = source.parent
    view.nitems = nitems


def view_of(context, builder, source_type, value, view_type, shape=None, strides=None):
    """Inside an intrinsic's codegen: an array of ``view_type`` over the memory of ``value`` (an
    array of ``source_type``), with its shape and strides unless others are given. The view
    borrows the source's reference, as Numba's own views do (the caller returns it through
    ``impl_ret_borrowed``)."""
    source = make_array(source_type)(context, builder, value=value)
    view = make_array(view_type)(context, builder)
    ndim = source_type.ndim
    if shape is None:
        shape = cgutils.unpack_tuple(builder, source.shape, ndim)
    if strides is None:
        strides = cgutils.unpack_tuple(builder, source.strides, ndim)
    fill_view(
        context, builder, view, source, builder.bitcast(source.data, view.data.type), shape,
        strides,
    )  # fmt: skip
    return view._getvalue()


@intrinsic
def readonly(typingctx, a):
    """The array ``a`` typed as read-only (the same memory, the same data model): a kernel
    called with it and with a read-only input is then compiled once, not once per kind."""
    if not isinstance(a, types.Array):
        return None
    result = a.copy(readonly=True)

    def codegen(context, builder, signature, arguments):
        return impl_ret_borrowed(context, builder, result, arguments[0])

    return result(a), codegen


#: The unsigned integer type of each float's width.
_BITS = {types.float64: types.uint64, types.float32: types.uint32}


@intrinsic
def magnitude_bits(typingctx, a):
    """``(bits, mask)``: float array ``a`` viewed as unsigned integers of its width, and the mask
    that clears the sign bit.

    For floats without their sign, integer order is value order and NaN and inf sit above every
    finite value, so ``max(bits & mask)`` is the largest magnitude, or the sign that one is not
    finite. An integer maximum vectorises without fast-math flags (a float one would not).
    """
    if not isinstance(a, types.Array) or a.dtype not in _BITS:
        return None
    width = _BITS[a.dtype]
    view = a.copy(dtype=width)
    result = types.Tuple((view, width))

    def codegen(context, builder, signature, arguments):
        bits = view_of(context, builder, a, arguments[0], view)
        mask = context.get_constant(width, (1 << (a.dtype.bitwidth - 1)) - 1)
        pair = context.make_tuple(builder, result, (bits, mask))
        return impl_ret_borrowed(context, builder, result, pair)

    return result(a), codegen


@kernel
def max_magnitude_bits(a):
    """The largest ``magnitude_bits`` of the 1-d array ``a`` (0 when empty), vectorised.
    Callers pass ``a`` read-only (``readonly``), as X is, so that it compiles once."""
    bits, mask = magnitude_bits(a)
    largest = mask ^ mask
    for k in range(bits.size):
        largest = max(largest, bits[k] & mask)
    return largest


@numba.njit(fastmath=REORDER_SUMS, **INTERNAL)
def sum_chunk(a, squares):
    """sum(a), or sum(a**2) with ``squares``, of a 1-d array, its additions reordered into
    vector lanes (a leaf: the flags must not reach its callers' arithmetic)."""
    s = cast(a, 0)
    for k in range(a.size):
        s += a[k] * a[k] if squares else a[k]
    return s


@kernel
def largest_of(bits):
    """max(bits) over a 1-d array of ``magnitude_bits`` (the blocks' or rows' results)."""
    largest = bits[0]
    for c in range(1, bits.size):
        largest = max(largest, bits[c])
    return largest


@kernel
def as_float(bits, scratch):
    """The float whose bits are ``bits`` (a ``magnitude_bits`` value), read back through
    ``scratch[0]`` (an array of the float's dtype) so that nothing is allocated."""
    view, _ = magnitude_bits(scratch)
    view[0] = bits
    return scratch[0]
