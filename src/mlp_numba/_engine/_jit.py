"""How the engine is compiled: the kernels' decorators and the entry point, on either path.

Compile time is a design constraint here (a user waits for it before the first result), and
with Numba most of it goes to a few things, each avoided by a rule:

- Numba finishes every function as if Python could call it: it links in its callees, then
  optimises and emits machine code for the whole library, again in every caller. On the fast
  path (``_numba_private``) the entry point's library links, optimises and emits them all
  once.
- Each call site of a function inlined as Numba IR (``inline="always"``) is copied, typed
  and lowered anew. So kernels are functions of their own (:data:`kernel`), typed and lowered
  once per signature and inlined by LLVM; only helpers that return a view of an argument,
  which a function without Numba's reference counting cannot return, are inlined as IR
  (:data:`view`).
- LLVM inlines a kernel into each of its callers' call sites, and optimises and emits every
  copy. So a function calls each kernel once, its input chosen before the call (one type
  for all the inputs: ``kernels.common.readonly``), rather than once per kind of input.
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
- A compile creates and keeps hundreds of thousands of Python objects (Numba's IR, types and
  compile results), which Python's cyclic garbage collector walks at every full collection
  while the compile goes on. The collector is paused while the entry point compiles
  (:func:`gc_paused`).

Caching: only the entry point is cached on disk (the functions it calls are not, so that a
cached library never links code loaded from another process's cache, cf. numba issue
#4807). On the fast path its cache entry is stamped with the source of every module of this
package; on the plain path Numba's own stamp applies (the entry module's file time and size,
which an install or upgrade of the package renews).

Importing this module decides the path (``_numba_private.path``): the engine's modules import
it first, when the engine is first needed.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import pathlib
import threading

import numba
from numba import njit

from . import _numba_private, _threads, compiled_code

#: The path of this process (``_numba_private.Path``).
PATH = _numba_private.path()

#: Options of every compiled function: a division gives inf or NaN like NumPy, without a
#: zero check that would keep LLVM from vectorising the loop.
OPTIONS = {"error_model": "numpy", "nogil": True}

#: Options of a function that only compiled code calls (on the fast path without wrappers
#: or reference counting: ``_numba_private.FAST_OPTIONS``).
INTERNAL = {**OPTIONS, **(_numba_private.FAST_OPTIONS if PATH.fast else {})}

#: Decorator of the kernels: internal functions (see the module's rules).
kernel = njit(**INTERNAL)

#: Decorator of a helper that returns a view of an argument: inlined into its caller as IR.
view = njit(inline="always", **INTERNAL)

#: Decorator of the scalar formulas (an activation and its derivative): inlined as IR into the
#: one loop that calls each.
scalar = view

_threads.start()

#: The folder whose modules end up inside the cached entry point: all of this subpackage.
ENGINE_FOLDER = pathlib.Path(__file__).parent


def sources_stamp(extra=""):
    """The stamp of compiled code: what built it (Numba, llvmlite, NumPy's major version and
    ``extra``), then ``;`` and a digest of every ``.py`` file below the engine's folder. No
    file time and nothing measured on the machine: the stamp travels with shipped code."""
    import llvmlite
    import numpy as np

    built = (
        f"numba {numba.__version__}, llvmlite {llvmlite.__version__}, "
        f"numpy {np.__version__.split('.')[0]}, {extra}"
    )
    digest = hashlib.sha256()
    for path in sorted(ENGINE_FOLDER.rglob("*.py")):
        digest.update(str(path.relative_to(ENGINE_FOLDER).as_posix()).encode())
        digest.update(path.read_bytes())
    return f"{built}; sources {digest.hexdigest()}"


_GC_LOCK = threading.Lock()
#: [compiles under way, whether the collector was enabled before the first of them]
_GC_STATE = [0, False]


@contextlib.contextmanager
def gc_paused():
    """Python's cyclic garbage collector paused within the block, then as it was before.

    With the collector on, its full collections during a compile walk every object the
    compile keeps (about a tenth of a first compile); paused, the compile's cyclic garbage
    stays until the first collection after it (some 70 MB at the peak of the engine's
    compile). Blocks nested or in other threads share one pause: the first in pauses the
    collector, the last out restores it, and a collector the caller had disabled stays
    disabled.
    """
    with _GC_LOCK:
        if _GC_STATE[0] == 0:
            _GC_STATE[1] = gc.isenabled()
            gc.disable()
        _GC_STATE[0] += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_STATE[0] -= 1
            if _GC_STATE[0] == 0 and _GC_STATE[1]:
                gc.enable()


#: The dispatcher of each entry point: one for every dtype (Numba 0.59 does not match the
#: arguments of a second dispatcher of the same function to its overloads).
_ENTRIES = {}


def compiled_entry(py_func, signature, stamp, stand_in=None):
    """``py_func``'s dispatcher, loaded from compiled code or compiled for ``signature`` in
    addition to the signatures it has.

    Compiling for no other types, the dispatcher accepts any arguments that convert to these
    without a copy (a writeable array where a read-only one is declared, a C-contiguous one
    where any layout is), and never compiles again for a new combination of flags. On the
    fast path the code comes from the shipped or the writable cache (``compiled_code``); when
    neither has it, ``stand_in(reason)`` may compile it elsewhere (returning True), else it
    is compiled here.
    """
    dispatcher = _ENTRIES.get(py_func)
    if PATH.fast:
        # Python calls it; no C caller does, so no C wrapper (code to compile for nothing).
        options = OPTIONS | {"_nrt": False}
        if dispatcher is None:
            folders = compiled_code.folders()
            dispatcher = _numba_private.fast_dispatcher(py_func, stamp, options, folders)
        found = _numba_private.load_entry(dispatcher, signature)
        if found is None and stand_in is not None:
            reason = compiled_code.why_not_shipped(py_func, stamp)
            if stand_in(reason):
                found = _numba_private.load_entry(dispatcher, signature)
        if found is None:
            with gc_paused():
                _numba_private.compile_entry(dispatcher, signature)
    else:
        # Compiled (or loaded) now for these types; with the signature given to njit instead,
        # Numba 0.59 fails to match the arguments to an overload loaded from its cache.
        dispatcher = dispatcher or njit(cache=True, **OPTIONS)(py_func)
        with gc_paused():
            dispatcher.compile(signature)
    _ENTRIES[py_func] = dispatcher
    return dispatcher
