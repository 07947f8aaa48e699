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
from numba import types
from numba.extending import overload, register_jitable

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
#: Which BLAS ``gemm`` calls (part of the compiled-code cache stamp).
BACKEND = _FOUND[0] if _FOUND else "numpy.dot (SciPy's BLAS)"


def _external(symbol, dtype, int_type):
    real = types.float64 if dtype == np.float64 else types.float32
    i, p = int_type, types.voidptr
    signature = types.void(types.intc, types.intc, types.intc, i, i, i, real, p, i, p, i, real,
                           p, i)  # fmt: skip
    return types.ExternalFunction(symbol, signature)


_EXTERNALS = (
    {dtype: _external(sym, dtype, _FOUND[2]) for dtype, sym in _FOUND[1].items()} if _FOUND else {}
)


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


def gemm(trans_a, trans_b, A, B, C):
    """``C[...] = op(A) @ op(B)`` inside compiled code, op transposing when ``trans_*`` is True.

    A, B and C are 2-D, of one float dtype, with unit stride along their rows (C-contiguous or
    a block of rows of such an array); C must not overlap A or B.
    """


def gemm_accumulate(trans_a, trans_b, A, B, C, alpha, beta):
    """``C[...] = alpha * op(A) @ op(B) + beta * C`` inside compiled code (BLAS's own form);
    otherwise as ``gemm``. ``alpha`` and ``beta`` are converted to C's dtype."""


@register_jitable
def _leading(columns, row_stride):
    """The leading dimension to pass: the row stride, which an array of no or one row may
    report below its number of columns, the least BLAS accepts."""
    return max(row_stride, columns, 1)


@overload(gemm)
def _gemm_overload(trans_a, trans_b, A, B, C):
    def impl(trans_a, trans_b, A, B, C):
        gemm_accumulate(trans_a, trans_b, A, B, C, 1.0, 0.0)

    return impl


@overload(gemm_accumulate)
def _gemm_accumulate_overload(trans_a, trans_b, A, B, C, alpha, beta):
    dtype = np.dtype(C.dtype.name)
    if dtype not in _EXTERNALS:

        def fallback(trans_a, trans_b, A, B, C, alpha, beta):
            a = A.T if trans_a else A
            b = B.T if trans_b else B
            if alpha == 1 and beta == 0:
                np.dot(a, b, C)
            elif beta == 0:  # BLAS overwrites C then, NaN included
                C[:, :] = np.dot(a, b) * alpha
            else:
                C[:, :] = np.dot(a, b) * alpha + C * beta

        return fallback
    call = _EXTERNALS[dtype]
    item = dtype.itemsize
    real = np.float64 if dtype == np.float64 else np.float32

    def impl(trans_a, trans_b, A, B, C, alpha, beta):
        m, n = C.shape
        k = A.shape[0] if trans_a else A.shape[1]
        call(
            _ROW_MAJOR,
            _TRANS if trans_a else _NO_TRANS,
            _TRANS if trans_b else _NO_TRANS,
            m,
            n,
            k,
            real(alpha),
            A.ctypes,
            _leading(A.shape[1], A.strides[0] // item),
            B.ctypes,
            _leading(B.shape[1], B.strides[0] // item),
            real(beta),
            C.ctypes,
            _leading(C.shape[1], C.strides[0] // item),
        )

    return impl
