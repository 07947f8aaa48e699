"""Compile-time helpers for the kernels, and the rules of their on-disk cache.

Caching rules (each one fixes a crash or a stale result seen here with Numba 0.68):

1. Only the engine's entry points are cached (:func:`cached_njit`); the kernels they call are
   not. A cached function whose callee was itself loaded from the cache, compiled by another
   process, is saved in a state that segfaults when a third process loads it (cf. numba issue
   #4807). With uncached kernels every cached library is compiled in one process.
2. An entry point's cache entry is stamped with the source of every module its code comes
   from, not only its own file, so editing a kernel invalidates the entry points that inline it.
3. Numba's function-id counter starts at a random value in each process (below).
"""

import hashlib
import itertools
import os
import pathlib
import secrets

import numba
import numpy as np
from numba import njit, types
from numba.core import bytecode
from numba.core.caching import CompileResultCacheImpl, FunctionCache
from numba.extending import overload
from numba.np.numpy_support import as_dtype


def _make_symbol_names_process_unique():
    """Start Numba's function-id counter at a random point in this process.

    Numba names a parallel loop's kernel after an object address and this counter only, not
    after the function it belongs to. Cached libraries compiled by different processes can
    therefore define different kernels under one symbol name, and a process that loads both
    would call the wrong one. Ids only need to be unique within a process, so a random start
    keeps Numba's guarantees and makes names from different processes differ.
    """
    if not getattr(bytecode.FunctionIdentity, "_mlp_numba_random_ids", False):
        start = secrets.randbits(48)
        bytecode.FunctionIdentity._unique_ids = itertools.count(start)
        bytecode.FunctionIdentity._mlp_numba_random_ids = True


_make_symbol_names_process_unique()


def _start_threads_with_short_openmp_spins():
    """Start Numba's threads, its OpenMP workers spinning only briefly before they sleep
    (``GOMP_SPINCOUNT``), unless the user chose; then put the environment back.

    A training step is a few parallel regions in a row (the matrix products among them, cut
    into blocks that each run a one-thread BLAS call, see ``_parallel_blas``), and a worker
    that sleeps between regions pays a wake-up each time: 20-67 us here (passive waits),
    against a step of 0.3 ms at the MNIST shape. But a spinning worker burns a core after
    the last region, which whatever runs next may need. CPU time of a parallel region
    followed by idleness, measured here: 5.6 ms with libgomp's default (300,000 rounds),
    0.67-0.77 ms with 30,000, 0.03 ms with passive waits; steps with 30,000 were as fast as
    with 3,000,000, and slower with 3,000 (CIFAR-10 float32 1.18 -> 1.26 ms).

    libgomp reads the variable once, when it loads, which starting Numba's threads does (if
    nothing in the process loaded it before). The variable is set only for that moment:
    another library's OpenMP runtime loaded later (PyTorch ships its own) keeps its defaults.
    """
    from numba.np.ufunc import parallel

    ours = "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ
    if ours:
        os.environ["GOMP_SPINCOUNT"] = str(OPENMP_SPIN_COUNT)
    try:
        parallel._launch_threads()
    finally:
        if ours:
            del os.environ["GOMP_SPINCOUNT"]


#: Rounds an idle OpenMP worker of Numba's spins before it sleeps, unless the user chose.
OPENMP_SPIN_COUNT = 30_000


_start_threads_with_short_openmp_spins()


@njit(inline="always")
def chunk_bounds(c, n, n_chunks):
    """The slice [lo, hi) of chunk ``c`` of ``n`` elements cut into ``n_chunks`` (may be empty)."""
    step = (n + n_chunks - 1) // n_chunks
    return min(n, c * step), min(n, (c + 1) * step)


#: Let a running sum be reordered into vector lanes; NaN and inf keep their meaning.
REORDER_SUMS = {"reassoc", "nsz"}


@njit(fastmath=REORDER_SUMS, error_model="numpy")
def sum_chunk(a, squares):
    """sum(a), or sum(a**2) with ``squares``, of a 1-d array, vectorised."""
    s = cast(a, 0)
    for k in range(a.size):
        s += a[k] * a[k] if squares else a[k]
    return s


#: Fixed number of chunks of a deterministic reduction (independent of the thread count).
N_CHUNKS = 64
#: Blocks a large matrix product is cut into (``_parallel_blas``): the CPUs this process may
#: use, whatever the thread settings, so that results do not depend on the number of threads;
#: at most N_CHUNKS, as a reduction's buffer of that many values holds the blocks' results.
BLAS_PIECES = max(1, min(N_CHUNKS, numba.config.NUMBA_DEFAULT_NUM_THREADS))


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


def magnitude_bits(a):
    """``(bits, mask)``: float array ``a`` viewed as unsigned integers of its width, and the mask
    that clears the sign bit.

    For floats without their sign, integer order is value order and NaN and inf sit above every
    finite value, so ``max(bits & mask)`` is the largest magnitude, or the sign that one is not
    finite. An integer maximum vectorises without fast-math flags (a float one would not).
    """


@overload(magnitude_bits, inline="always")
def _magnitude_bits_overload(a):
    if a.dtype == types.float64:
        return lambda a: (a.view(np.uint64), np.uint64(0x7FFF_FFFF_FFFF_FFFF))
    if a.dtype == types.float32:
        return lambda a: (a.view(np.uint32), np.uint32(0x7FFF_FFFF))
    return None


# The modules whose code ends up inside a cached entry point.
_COMPILED_SOURCES = (
    "_activation_spec.py",
    "_activations.py",
    "_blas.py",
    "_engine.py",
    "_kernels.py",
    "_numba_utils.py",
    "_parallel_blas.py",
    "_scoring.py",
    "_updates.py",
)


def _sources_stamp():
    here = pathlib.Path(__file__).parent
    from ._blas import BACKEND  # cached code calls this library by its symbol name

    digest = hashlib.sha256(f"{numba.__version__} {BACKEND} {BLAS_PIECES}".encode())
    for name in _COMPILED_SOURCES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()


_SOURCES_STAMP = _sources_stamp()


def _stamped(locator_class):
    class Stamped(locator_class):
        def get_source_stamp(self):
            return (super().get_source_stamp(), _SOURCES_STAMP)

    Stamped.__name__ = f"Stamped{locator_class.__name__}"
    return Stamped


class _StampedCacheImpl(CompileResultCacheImpl):
    _locator_classes = tuple(_stamped(c) for c in CompileResultCacheImpl._locator_classes)


class _StampedFunctionCache(FunctionCache):
    _impl_class = _StampedCacheImpl


def cached_njit(func):
    """``@njit`` with an on-disk cache stamped by all of the compiled modules' sources.

    For the engine's entry points only: see the module's caching rules.
    """
    dispatcher = njit(func)
    dispatcher._cache = _StampedFunctionCache(dispatcher.py_func)
    return dispatcher
