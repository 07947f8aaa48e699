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

from ._jit import INTERNAL
from ._linking import call_unlinked, compile_result, link


def parallel_region(run_block):
    """``(in_parallel, link_blocks)`` for the kernel ``run_block(t, p, X, y, model, work, out)``.

    ``in_parallel(t, X, y, model, work, out)`` runs the ``t.pieces`` blocks of task ``t`` side
    by side on Numba's threads (in turn when ``t.serial``: the calling thread may use one
    thread only). ``run_block`` is a library of its own, called from the
    ``prange`` loop rather than inlined into it: Numba's parallel passes then neither analyse
    all the kernels (slow) nor drop the writes they cannot trace through the bundles (wrong).

    ``link_blocks(t, X, y, model, work, out)`` copies ``run_block``'s code for these argument
    types into the library being compiled: the entry point's, which must hold every kernel
    the parallel region calls (``_linking``). It returns 0, for the caller to use so that the
    call is not dropped as dead code.
    """

    @intrinsic
    def run_unlinked(typingctx, t, p, X, y, model, work, out):
        result = compile_result(run_block, (t, p, X, y, model, work, out))

        def codegen(context, builder, signature, values):
            return call_unlinked(context, builder, result, values)

        return result.signature, codegen

    @intrinsic
    def link_blocks(typingctx, t, X, y, model, work, out):
        result = compile_result(run_block, (t, types.int64, X, y, model, work, out))

        def codegen(context, builder, signature, values):
            return link(context, builder, result)

        return types.int64(t, X, y, model, work, out), codegen

    @njit(parallel=True, **INTERNAL)
    def in_parallel(t, X, y, model, work, out):
        if t.serial:
            # A plain loop on this thread wakes no thread pool: what a forked child of an
            # OpenMP process must do (``_threads``), and the fastest way to run on one thread.
            for p in range(t.pieces):
                run_unlinked(t, np.int64(p), X, y, model, work, out)
        else:
            for p in prange(t.pieces):
                run_unlinked(t, np.int64(p), X, y, model, work, out)

    return in_parallel, link_blocks
