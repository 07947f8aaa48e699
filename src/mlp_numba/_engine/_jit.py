"""How the engine is compiled: Numba's process set-up, the kernels' decorators and the cache.

Compile time is a design constraint here (a user waits for it before the first result), and
with Numba most of it goes to a few things, each avoided by a rule:

- Numba finishes every function as if Python could call it: it links in its callees, then
  optimises and emits machine code for the whole library, again in every caller. The entry
  point compiles inside ``_codegen.entry_only``, so the functions it calls stay LLVM IR until
  the entry point's library links, optimises and emits them all once.
- Each call site of a function inlined as Numba IR (``inline="always"``) is copied, typed
  and lowered anew. So kernels are functions of their own (:data:`kernel`), typed and lowered
  once per signature and inlined by LLVM; only helpers that return a view of an argument,
  which a function without Numba's reference counting cannot return, are inlined as IR
  (:data:`view`).
- A helper that is a few instructions wherever it is used (a cast, a view of an array as
  bits or as 1-d, a BLAS call) is an ``@intrinsic``: it emits those instructions where it is
  called, where a function or an overload would be typed and compiled for every combination
  of its argument types.
- Every ``prange`` loop becomes a parallel region compiled on its own, at a cost of about a
  second each. The engine has one (``parallel.in_parallel``), which runs every kind of work
  the kernels cut into pieces.
- Every distinct argument type is a new specialisation. The entry point is compiled once per
  dtype for explicit types (:func:`compiled_entry`), which accept read-only and writeable
  inputs alike, and the activation and the optimizer are run-time integers, not types.

Caching: only the entry point is cached on disk (the functions it calls are not, so that a
cached library never links code loaded from another process's cache, cf. numba issue
#4807), and its cache entry is stamped with the source of every module of this package.
"""

from __future__ import annotations

import hashlib
import itertools
import pathlib
import secrets

import numba
from numba import njit
from numba.core import bytecode
from numba.core.caching import CompileResultCacheImpl, FunctionCache
from numba.core.runtime import rtsys

from . import _codegen, _threads

#: Options of every compiled function: a division gives inf or NaN like NumPy, without a
#: zero check that would keep LLVM from vectorising the loop.
OPTIONS = {"error_model": "numpy", "nogil": True, "_nrt": False}

#: Options of a function that only compiled code calls: no wrappers to call it from Python or
#: C, which would be compiled (and linked into every caller) for nothing.
INTERNAL = {**OPTIONS, "no_cpython_wrapper": True, "no_cfunc_wrapper": True}

#: Decorator of the kernels: internal functions (see the module's rules).
kernel = njit(**INTERNAL)

#: Decorator of a helper that returns a view of an argument: inlined into its caller as IR.
view = njit(inline="always", **OPTIONS)

#: Decorator of the scalar formulas (an activation and its derivative): inlined as IR into the
#: one loop that calls each.
scalar = view


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
_threads.start()

#: The folder whose modules end up inside the cached entry point: all of this subpackage.
ENGINE_FOLDER = pathlib.Path(__file__).parent


def sources_stamp(extra=""):
    """A digest of Numba's version, ``extra`` and every ``.py`` file below the engine's folder."""
    digest = hashlib.sha256(f"{numba.__version__} {extra}".encode())
    for path in sorted(ENGINE_FOLDER.rglob("*.py")):
        digest.update(str(path.relative_to(ENGINE_FOLDER)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _stamped_cache(stamp):
    """A Numba function cache whose entries are valid only for this ``stamp``."""

    def stamped(locator_class):
        class Stamped(locator_class):
            def get_source_stamp(self):
                return (super().get_source_stamp(), stamp)

        Stamped.__name__ = f"Stamped{locator_class.__name__}"
        return Stamped

    class StampedCacheImpl(CompileResultCacheImpl):
        _locator_classes = tuple(stamped(c) for c in CompileResultCacheImpl._locator_classes)

    class StampedFunctionCache(FunctionCache):
        _impl_class = StampedCacheImpl

        def load_overload(self, sig, target_context):
            # Numba refreshes the target context first: it imports and registers every typing
            # and lowering implementation it has (all of numba.np, SciPy's linalg), half a
            # second that machine code loaded from disk never uses. Loading needs Numba's
            # runtime alone; a compile, if one follows, refreshes the context itself.
            rtsys.initialize(target_context)
            with self._guard_against_spurious_io_errors():
                return self._load_overload(sig, target_context)

    return StampedFunctionCache


def compiled_entry(py_func, signature, stamp):
    """``py_func`` compiled (or loaded from the on-disk cache) for ``signature`` alone.

    Compiling for no other types, the dispatcher accepts any arguments that convert to these
    without a copy (a writeable array where a read-only one is declared, a C-contiguous one
    where any layout is), and never compiles again for a new combination of flags.
    """
    # Python calls it; no C caller does, so no C wrapper (code to compile for nothing).
    dispatcher = njit(no_cfunc_wrapper=True, **OPTIONS)(py_func)
    dispatcher._cache = _stamped_cache(stamp)(py_func)
    with _codegen.entry_only(dispatcher.targetctx.codegen()):
        dispatcher.compile(signature)
    dispatcher.disable_compile()
    return dispatcher
