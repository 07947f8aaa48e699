"""Matrix products for the kernels: ``gemm`` through the BLAS library NumPy itself uses.

Numba's ``np.dot`` calls SciPy's OpenBLAS, a second library beside NumPy's, with a thread pool
of its own. OpenBLAS workers keep spinning for a while after each call, so a NumPy product run
right after a training step (the user's own code, or a benchmark's floor) fought SciPy's idle
workers for the two cores: measured here, NumPy's two CIFAR-sized products took 9.5 ms when
interleaved with training steps against 4.7 ms on their own. Calling NumPy's library keeps one
BLAS thread pool in the process. Its CBLAS ``?gemm`` symbol is registered with llvmlite, so
compiled callers stay cacheable (a ctypes pointer would not be).

When NumPy's library cannot be found (a NumPy built against another BLAS), ``gemm`` falls back
to ``np.dot``, that is to SciPy's BLAS, with the same results.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pathlib
import threading

import llvmlite.binding
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, register_jitable

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
# (double symbol, float symbol, integer type, thread-count prefix) as OpenBLAS builds name them:
# NumPy >= 2 wheels (scipy-openblas64, prefixed), NumPy 1.2x wheels (openblas64_), then a plain
# LP64 build.
_SYMBOLS = (
    ("scipy_cblas_dgemm64_", "scipy_cblas_sgemm64_", types.int64, "scipy_openblas_"),
    ("cblas_dgemm64_", "cblas_sgemm64_", types.int64, "openblas_"),
    ("cblas_dgemm", "cblas_sgemm", types.int32, "openblas_"),
)
_THREAD_SUFFIXES = ("64_", "")


def _numpy_blas_candidates():
    """Shared libraries that ship inside NumPy's wheel and look like its BLAS."""
    package = pathlib.Path(np.__file__).parent
    folders = (package.parent / "numpy.libs", package / ".dylibs", package / "_core")
    patterns = ("*openblas*", "*blas*")
    seen = []
    for folder in folders:
        for pattern in patterns:
            for path in sorted(folder.glob(pattern)) if folder.is_dir() else ():
                if path.suffix in (".so", ".dylib", ".dll") or ".so." in path.name:
                    if path not in seen:
                        seen.append(path)
    return seen


def _thread_count_functions(library, prefix):
    """OpenBLAS's ``(set_num_threads, get_num_threads)``, or None."""
    for suffix in _THREAD_SUFFIXES:
        try:
            return (
                getattr(library, f"{prefix}set_num_threads{suffix}"),
                getattr(library, f"{prefix}get_num_threads{suffix}"),
            )
        except AttributeError:
            continue
    return None


def _find_gemm():
    """``(description, {dtype: symbol}, int type)`` for NumPy's CBLAS gemm, or None."""
    for path in _numpy_blas_candidates():
        try:
            library = ctypes.CDLL(str(path))
        except OSError:
            continue
        for double, single, int_type, prefix in _SYMBOLS:
            try:
                addresses = {"dgemm": getattr(library, double), "sgemm": getattr(library, single)}
            except AttributeError:
                continue
            threads = _thread_count_functions(library, prefix)
            for name, function in addresses.items():
                address = ctypes.cast(function, ctypes.c_void_p).value
                llvmlite.binding.add_symbol(f"mlp_numba_{name}", address)
            symbols = {
                np.dtype(np.float64): "mlp_numba_dgemm",
                np.dtype(np.float32): "mlp_numba_sgemm",
            }
            return f"{path.name}:{double}", symbols, int_type, threads
    return None


_FOUND = _find_gemm()
#: Which BLAS ``gemm`` calls.
BACKEND = _FOUND[0] if _FOUND else "numpy.dot (SciPy's BLAS)"
#: What compiled code depends on (part of its stamp): CBLAS with 64- or 32-bit integers, called
#: through a symbol resolved when the code loads, or ``np.dot``.
ABI = f"cblas {_FOUND[2]}" if _FOUND else "np.dot"


class _OneThread:
    """Context manager: the BLAS library ``gemm`` calls runs on one thread inside it.

    The kernels cut their large products into blocks that Numba's threads run side by side,
    each a BLAS call that must not start BLAS threads of its own. The library's count is
    process-wide, so nested and concurrent users (threads training side by side) share one
    count of how many are inside, and the first one in sets 1 and the last one out puts back
    what it found: the user's own NumPy code runs with the BLAS threads it had before.
    """

    def __init__(self, functions):
        self._set, self._get = functions
        self._lock = threading.Lock()
        self._inside = 0
        self._saved = None
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork_in_child)

    def _after_fork_in_child(self):
        # The threads that were inside are not in the child: put back the parent's count.
        self._lock = threading.Lock()
        if self._inside:
            self._inside = 0
            self._set(self._saved)

    def __enter__(self):
        with self._lock:
            if self._inside == 0:
                self._saved = self._get()
                self._set(1)
            self._inside += 1

    def __exit__(self, *exc):
        with self._lock:
            self._inside -= 1
            if self._inside == 0:
                self._set(self._saved)


def _one_thread_functions():
    if not (_FOUND and _FOUND[3]):
        return None
    setter, getter = _FOUND[3]
    setter.argtypes, setter.restype = [ctypes.c_int], None
    getter.argtypes, getter.restype = [], ctypes.c_int
    return setter, getter


_functions = _one_thread_functions()
#: ``with one_blas_thread: ...`` runs ``gemm`` single-threaded (a no-op when the BLAS found
#: offers no thread count; the fallback ``np.dot`` then keeps its own threads).
one_blas_thread = _OneThread(_functions) if _functions else contextlib.nullcontext()


def _as_index(builder, value, index):
    """An intp ``value`` as the BLAS's integer type ``index`` (64 or 32 bits)."""
    if value.type.width > index.width:
        return builder.trunc(value, index)
    return value


def _leading(builder, shape, strides, itemsize):
    """The leading dimension to pass: the row stride in elements, which an array of no or one
    row may report below its number of columns, the least BLAS accepts (max(stride, columns,
    1))."""
    one = ir.Constant(shape[1].type, 1)
    stride = builder.sdiv(strides[0], ir.Constant(strides[0].type, itemsize))
    widest = builder.select(builder.icmp_signed(">", stride, shape[1]), stride, shape[1])
    return builder.select(builder.icmp_signed(">", widest, one), widest, one)


def _call_gemm(context, builder, operands, trans, alpha, beta):
    """Emits the CBLAS ``?gemm`` call C = alpha op(A) @ op(B) + beta C, row-major.

    ``operands`` is ((type, value) of A, of B, of C); ``trans`` the two flags as LLVM i1
    values; ``alpha`` and ``beta`` LLVM values of C's dtype.
    """
    (a_type, a), (b_type, b), (c_type, c) = operands
    dtype = np.dtype(c_type.dtype.name)
    symbol, int_type = _FOUND[1][dtype], _FOUND[2]
    index = context.get_value_type(int_type)
    real = context.get_value_type(c_type.dtype)
    flag, pointer = ir.IntType(32), ir.IntType(8).as_pointer()
    arrays = []
    for array_type, value in ((a_type, a), (b_type, b), (c_type, c)):
        array = context.make_array(array_type)(context, builder, value)
        shape = [_as_index(builder, v, index) for v in cgutils.unpack_tuple(builder, array.shape)]
        strides = [
            _as_index(builder, v, index) for v in cgutils.unpack_tuple(builder, array.strides)
        ]
        data = builder.bitcast(array.data, pointer)
        arrays.append((shape, data, _leading(builder, shape, strides, dtype.itemsize)))
    (a_shape, a_data, lda), (_, b_data, ldb), (c_shape, c_data, ldc) = arrays

    def transposed(is_set):
        return builder.select(is_set, ir.Constant(flag, _TRANS), ir.Constant(flag, _NO_TRANS))

    k = builder.select(trans[0], a_shape[0], a_shape[1])
    function_type = ir.FunctionType(
        ir.VoidType(),
        [flag, flag, flag, index, index, index, real, pointer, index, pointer, index, real,
         pointer, index],
    )  # fmt: skip
    function = cgutils.get_or_insert_function(builder.module, function_type, symbol)
    builder.call(
        function,
        [ir.Constant(flag, _ROW_MAJOR), transposed(trans[0]), transposed(trans[1]),
         c_shape[0], c_shape[1], k, alpha, a_data, lda, b_data, ldb, beta, c_data, ldc],
    )  # fmt: skip


def _emit_gemm(context, builder, signature, values, alpha, beta):
    """The codegen of ``gemm`` and ``gemm_accumulate`` (their first five arguments are alike),
    with ``alpha`` and ``beta`` as LLVM values of C's dtype."""
    # The transpose flags as i1 values (they may come typed as literals).
    flags = [context.cast(builder, values[i], signature.args[i], types.boolean) for i in (0, 1)]
    operands = tuple(zip(signature.args[2:5], values[2:5], strict=True))
    _call_gemm(context, builder, operands, flags, alpha, beta)
    return context.get_dummy_value()


@register_jitable
def _np_dot_gemm_accumulate(trans_a, trans_b, A, B, C, alpha, beta):
    """``gemm_accumulate`` through ``np.dot`` (SciPy's BLAS): the fallback."""
    a = A.T if trans_a else A
    b = B.T if trans_b else B
    if alpha == 1 and beta == 0:
        np.dot(a, b, C)
    elif beta == 0:  # BLAS overwrites C then, NaN included
        C[:, :] = np.dot(a, b) * alpha
    else:
        C[:, :] = np.dot(a, b) * alpha + C * beta


if _FOUND:

    @intrinsic
    def gemm_accumulate(typingctx, trans_a, trans_b, A, B, C, alpha, beta):
        """``C[...] = alpha * op(A) @ op(B) + beta * C`` inside compiled code (BLAS's own
        form), op transposing when ``trans_*`` is True; ``alpha`` and ``beta`` are converted
        to C's dtype. A, B and C are 2-D, of one float dtype, with unit stride along their
        rows (C-contiguous or a block of rows or columns of such an array); C must not overlap
        A or B.

        An intrinsic, the call emitted where it is made: as a function it would be typed,
        lowered and compiled for every combination of layouts and flags of its arguments.
        """

        def codegen(context, builder, signature, values):
            scales = (context.cast(builder, values[i], signature.args[i], C.dtype) for i in (5, 6))
            return _emit_gemm(context, builder, signature, values, *scales)

        return types.none(trans_a, trans_b, A, B, C, alpha, beta), codegen

    @intrinsic
    def gemm(typingctx, trans_a, trans_b, A, B, C):
        """``C[...] = op(A) @ op(B)`` inside compiled code; otherwise as ``gemm_accumulate``."""

        def codegen(context, builder, signature, values):
            real = context.get_value_type(C.dtype)
            one, zero = ir.Constant(real, 1.0), ir.Constant(real, 0.0)
            return _emit_gemm(context, builder, signature, values, one, zero)

        return types.none(trans_a, trans_b, A, B, C), codegen

else:

    @register_jitable
    def gemm_accumulate(trans_a, trans_b, A, B, C, alpha, beta):
        """``C[...] = alpha * op(A) @ op(B) + beta * C`` through ``np.dot``."""
        _np_dot_gemm_accumulate(trans_a, trans_b, A, B, C, alpha, beta)

    @register_jitable
    def gemm(trans_a, trans_b, A, B, C):
        """``C[...] = op(A) @ op(B)`` through ``np.dot``."""
        _np_dot_gemm_accumulate(trans_a, trans_b, A, B, C, 1.0, 0.0)
