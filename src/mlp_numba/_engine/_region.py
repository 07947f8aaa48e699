"""A parallel region: the blocks of one task side by side, in a single ``prange`` loop.

Numba compiles every ``prange`` loop as a region of its own, at about a second each, so the
engine has one: :func:`parallel_region` builds it around the engine's ``run_block(t, p, X, y,
model, work, out)``, whose branches are every kind of work that engine cuts into blocks. A
block runs on one thread and writes only its own outputs, and the blocks depend on the shapes
alone, never on the number of threads (``kernels.common``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

from . import _numba_private
from ._jit import INTERNAL, PATH


def parallel_region(run_block):
    """``(in_parallel, link_blocks)`` for the kernel ``run_block(t, p, X, y, model, work, out)``.

    ``in_parallel(t, X, y, model, work, out)`` runs the ``t.pieces`` blocks of task ``t`` side
    by side on Numba's threads, or in turn on the calling thread when ``t.serial`` (it may use
    one thread only). ``run_block`` is a function of its own, called from the ``prange`` loop
    rather than inlined into it: Numba's parallel passes then neither analyse all the kernels
    (slow) nor drop the writes they cannot trace through the bundles (wrong).

    ``link_blocks(t, X, y, model, work, out)`` returns 0, for the entry point to use so that
    the call is not dropped as dead code. On the fast path it copies ``run_block``'s code for
    these argument types into the library being compiled, the entry point's, which must hold
    every kernel the parallel region calls unlinked (``_numba_private.call_unlinked``).
    """
    if PATH.fast:
        run, link_blocks = _unlinked(run_block)
    else:
        run = run_block

        @njit(**INTERNAL)
        def link_blocks(t, X, y, model, work, out):
            return np.int64(0)

    @njit(parallel=True, **INTERNAL)
    def in_parallel(t, X, y, model, work, out):
        if t.serial:
            # A plain loop on this thread wakes no thread pool: what a forked child of an
            # OpenMP process must do (``_threads``), and the fastest way to run on one thread.
            for p in range(t.pieces):
                run(t, np.int64(p), X, y, model, work, out)
        else:
            for p in prange(t.pieces):
                run(t, np.int64(p), X, y, model, work, out)

    return in_parallel, link_blocks


def _unlinked(run_block):
    """The fast path's ``(run, link_blocks)``: ``run_block`` called without linking its
    library into the region's, and linked once into the entry point's."""

    @intrinsic
    def run_unlinked(typingctx, t, p, X, y, model, work, out):
        result = _numba_private.compile_result(run_block, (t, p, X, y, model, work, out))

        def codegen(context, builder, signature, values):
            return _numba_private.call_unlinked(context, builder, result, values)

        return result.signature, codegen

    @intrinsic
    def link_blocks(typingctx, t, X, y, model, work, out):
        result = _numba_private.compile_result(run_block, (t, types.int64, X, y, model, work, out))

        def codegen(context, builder, signature, values):
            return _numba_private.link(context, builder, result)

        return types.int64(t, X, y, model, work, out), codegen

    return run_unlinked, link_blocks
