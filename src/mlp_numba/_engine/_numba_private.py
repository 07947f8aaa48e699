"""Every use of Numba beyond its extension API, in one place, and the check that decides
whether the engine may use them.

The engine runs on one of two paths, chosen once per process when it is first needed
(:func:`path`):

- **fast**: the entry point compiles inside :func:`entry_only`, so the functions it calls stay
  LLVM IR until its library links, optimises and emits them all once (most of the compile
  time otherwise); the parallel region calls its blocks without copying their code into every
  library on the way (:func:`call_unlinked`, :func:`link`); the on-disk cache is stamped with
  the engine's sources and loads without refreshing Numba's registries
  (:func:`engine_cache`); the kernels carry no wrappers and no reference counting
  (:data:`FAST_OPTIONS`).
- **plain**: the same kernels through ordinary ``njit`` dispatch and ``cache=True``, none of
  the above. Its first compile is slower (as before the fast start); its results are those of
  the fast path (``tests/test_paths.py``).

The fast path is used when every internal below is present and, checked before its first
compile (:func:`ensure_probed`; loading compiled code needs none), a small program compiled,
saved, loaded back and run through all of them gives the right answer (:func:`_probe`, about
half a second beyond what the first compile costs anyway; its verdict is kept per Numba,
llvmlite and Python version and per version of this module, in the writable cache folder).
Otherwise, or with ``MLP_NUMBA_PLAIN_JIT=1``, the plain path runs, and a warning names the
reason once.

Each internal below says why it is needed. All were checked against Numba 0.59.1, 0.61.2,
0.64.0 and 0.68.1 (the versions ``.ci/run`` and the development notes test).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import pathlib
import secrets
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass

import llvmlite
import numba
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

#: The environment variable that forces the plain path.
PLAIN_JIT_VARIABLE = "MLP_NUMBA_PLAIN_JIT"

#: Options of the fast path's internal kernels: no CPython or C wrapper (code compiled and
#: linked into every caller for nothing, since only compiled code calls them) and no reference
#: counting (the engine allocates nothing in compiled code). Option names Numba accepts but
#: does not document.
FAST_OPTIONS = {"_nrt": False, "no_cpython_wrapper": True, "no_cfunc_wrapper": True}

# -- the internals, imported defensively: a missing one means the plain path ----------------

_MISSING = []

try:  # the code library class, the code generator's attributes (``entry_only``)
    from numba.core import codegen as _codegen
    from numba.core.compiler_lock import global_compiler_lock, require_global_compiler_lock
except ImportError as exc:  # pragma: no cover - depends on the installed Numba
    _codegen = None
    _MISSING.append(f"numba.core.codegen ({exc})")

try:  # the on-disk cache classes and the runtime (``engine_cache``)
    from numba.core.caching import (
        CompileResultCacheImpl,
        FunctionCache,
        IndexDataCacheFile,
        _CacheLocator,
    )
    from numba.core.runtime import rtsys
except ImportError as exc:  # pragma: no cover
    CompileResultCacheImpl = FunctionCache = IndexDataCacheFile = _CacheLocator = rtsys = None
    _MISSING.append(f"numba.core.caching ({exc})")

try:  # Numba's function ids (``_make_symbol_names_process_unique``)
    from numba.core.bytecode import FunctionIdentity
except ImportError as exc:  # pragma: no cover
    FunctionIdentity = None
    _MISSING.append(f"numba.core.bytecode.FunctionIdentity ({exc})")

try:  # ``call_unlinked`` emits a status check as Numba's own calls do
    from numba.core import cgutils
except ImportError as exc:  # pragma: no cover
    cgutils = None
    _MISSING.append(f"numba.core.cgutils ({exc})")

#: Methods of Numba's JIT code library that :class:`_DeferredLibrary` overrides or calls.
_LIBRARY_METHODS = (
    "add_llvm_module", "finalize", "_finalize_final_module", "_get_module_for_linking",
    "_finalize_dynamic_globals", "get_pointer_to_function", "_ensure_finalized",
    "_raise_if_finalized", "_unserialize",
)  # fmt: skip
#: Attributes of Numba's code generator that :func:`entry_only` sets or reads.
_CODEGEN_ATTRIBUTES = (
    "_library_class", "_engine", "_data_layout", "set_env", "_module_pass_manager",
)  # fmt: skip
#: Of the function cache (``engine_cache``).
_CACHE_ATTRIBUTES = ("_impl_class", "_index_key", "_guard_against_spurious_io_errors")
#: Of the compile context (``call_unlinked``, ``link``).
_CONTEXT_ATTRIBUTES = (
    "active_code_library", "add_linking_libs", "declare_function", "call_conv", "get_constant",
)  # fmt: skip


def _static_problems():
    """What is missing for the fast path, without compiling anything."""
    problems = list(_MISSING)
    if _codegen is not None:
        library = getattr(_codegen, "JITCodeLibrary", None)
        if library is None:
            problems.append("numba.core.codegen.JITCodeLibrary")
        else:
            problems += [f"JITCodeLibrary.{m}" for m in _LIBRARY_METHODS if not hasattr(library, m)]
        codegen = _target_codegen()
        problems += [f"JITCPUCodegen.{a}" for a in _CODEGEN_ATTRIBUTES if a not in dir(codegen)]
        context = _target_context()  # dir(): some are properties, valid only while compiling
        problems += [f"CPUContext.{a}" for a in _CONTEXT_ATTRIBUTES if a not in dir(context)]
    if FunctionCache is not None:
        problems += [
            f"FunctionCache.{a}" for a in _CACHE_ATTRIBUTES if not hasattr(FunctionCache, a)
        ]
        if not hasattr(CompileResultCacheImpl, "_locator_classes"):
            problems.append("CompileResultCacheImpl._locator_classes")
        problems += [
            f"IndexDataCacheFile.{m}"
            for m in ("load", "save")
            if not hasattr(IndexDataCacheFile, m)
        ]
    if FunctionIdentity is not None and not hasattr(FunctionIdentity, "_unique_ids"):
        problems.append("FunctionIdentity._unique_ids")
    return problems


def _target_context():
    # Numba's CPU target context: the dispatcher's ``targetctx``, reached through the registry
    # because no public name holds it.
    from numba.core.registry import cpu_target

    return cpu_target.target_context


def _target_codegen():
    return _target_context().codegen()


# -- 1. process-unique symbol names ------------------------------------------------------------


def _make_symbol_names_process_unique():
    """Start Numba's function-id counter at a random point in this process.

    Numba names a parallel loop's kernel after an object address and this counter only, not
    after the function it belongs to. Cached libraries compiled by different processes can
    therefore define different kernels under one symbol name, and a process that loads both
    would call the wrong one. Ids only need to be unique within a process, so a random start
    keeps Numba's guarantees and makes names from different processes differ.
    """
    if not getattr(FunctionIdentity, "_mlp_numba_random_ids", False):
        FunctionIdentity._unique_ids = itertools.count(secrets.randbits(48))
        FunctionIdentity._mlp_numba_random_ids = True


# -- 2. the stamped on-disk cache ----------------------------------------------------------------


class CacheMiss(Exception):
    """Raised by :func:`load_entry`'s cache when no entry serves: nothing is compiled."""


@dataclass(frozen=True)
class CacheFolders:
    """Where the entry point's compiled code is looked for, and kept."""

    #: Shipped inside the package, read only (None: not used).
    shipped: pathlib.Path | None
    #: Where compiles are saved (and looked for first).
    writable: pathlib.Path
    #: The codegen ``magic_tuple`` of the shipped baseline when this CPU can run its code, else
    #: None (then only code compiled here for this CPU serves).
    baseline: tuple | None


def engine_cache(stamp, folders):
    """A Numba function cache class for the entry point, over ``folders``.

    An entry is valid for ``stamp`` alone (a digest of the engine's sources and of the versions
    that compiled it), never for file times, which installers rewrite; Numba's index adds its
    own version. Loading looks in the writable folder for code compiled for this CPU, then in
    the shipped folder and the writable one for code compiled for the baseline CPU (when this
    CPU has the baseline's features). Saving writes the writable folder only.
    """
    writable = folders.writable

    class Locator(_CacheLocator):
        def __init__(self, py_func, py_file):
            self._lineno = py_func.__code__.co_firstlineno

        def get_cache_path(self):
            return str(writable)

        def get_source_stamp(self):
            return stamp

        def get_disambiguator(self):
            return str(self._lineno)

        @classmethod
        def from_function(cls, py_func, py_file):
            return cls(py_func, py_file)

    class EngineCacheImpl(CompileResultCacheImpl):
        _locator_classes = (Locator,)

    class EngineCache(FunctionCache):
        _impl_class = EngineCacheImpl
        #: Raise :class:`CacheMiss` instead of returning None (``load_entry``).
        miss_raises = False
        #: Where the last load found its entry: "writable", "shipped" or None.
        found_in = None

        def load_overload(self, sig, target_context):
            # Numba refreshes the target context first: it imports and registers every typing
            # and lowering implementation it has (all of numba.np, SciPy's linalg), half a
            # second that machine code loaded from disk never uses. Loading needs Numba's
            # runtime alone; a compile, if one follows, refreshes the context itself.
            rtsys.initialize(target_context)
            with self._guard_against_spurious_io_errors():
                data = self._load_any(sig, target_context)
            if data is None and self.miss_raises:
                raise CacheMiss()
            return data

        def _file(self, sig, folder):
            # One index per signature (the dtype), so that processes compiling the dtypes
            # side by side never rewrite each other's index.
            tag = hashlib.sha256(str(sig).encode()).hexdigest()[:12]
            return IndexDataCacheFile(str(folder), f"{self._impl.filename_base}.{tag}", stamp)

        def save_overload(self, sig, data):
            # A cache folder that cannot be written only means compiling again next time.
            with contextlib.suppress(OSError):
                self._save_overload(sig, data)

        def _save_overload(self, sig, data):
            if not self._impl.check_cachable(data):
                return
            self._impl.locator.ensure_cache_path()
            key = self._index_key(sig, data.codegen)
            self._file(sig, writable).save(key, self._impl.reduce(data))

        def _load_any(self, sig, target_context):
            key = self._index_key(sig, target_context.codegen())
            own = self._file(sig, writable)
            tries = [("writable", own, key)]
            if folders.baseline is not None:
                baseline_key = (key[0], folders.baseline, *key[2:])
                if folders.shipped is not None:
                    tries.append(("shipped", self._file(sig, folders.shipped), baseline_key))
                if baseline_key != key:
                    tries.append(("writable", own, baseline_key))
            for where, file, wanted in tries:
                data = file.load(wanted)
                if data is not None:
                    self.found_in = where
                    return self._impl.rebuild(target_context, data)
            return None

    return EngineCache


def shipped_index(folder, py_func):
    """``(numba version, stamp)`` of an index of ``py_func`` in ``folder`` for this Python, or
    None: what the shipped code was built with, to say why it does not serve."""
    import pickle

    lineno = py_func.__code__.co_firstlineno
    module = pathlib.Path(py_func.__code__.co_filename).stem
    python = f"py{sys.version_info[0]}{sys.version_info[1]}{getattr(sys, 'abiflags', '')}"
    for path in sorted(pathlib.Path(folder).glob(f"{module}.{py_func.__qualname__}-*.nbi")):
        if not path.name.startswith(f"{module}.{py_func.__qualname__}-{lineno}.{python}."):
            continue
        try:
            with open(path, "rb") as f:
                version = pickle.load(f)
                stamp, _ = pickle.loads(f.read())
        except (OSError, ValueError, EOFError, pickle.UnpicklingError, TypeError):
            continue
        return version, stamp
    return None


def codegen_magic():
    """The magic tuple (LLVM triple, CPU name, CPU features) of this process's code generator:
    part of every cache entry's key."""
    return _target_codegen().magic_tuple()


def fast_dispatcher(py_func, stamp, options, folders):
    """The dispatcher of ``py_func`` on the fast path, its cache :func:`engine_cache`."""
    dispatcher = njit(no_cfunc_wrapper=True, **options)(py_func)
    # The dispatcher's cache is private; ours replaces it before any compile.
    dispatcher._cache = engine_cache(stamp, folders)(py_func)
    return dispatcher


def _no_more_compiles(dispatcher):
    # Numba accepts this only once the dispatcher has a signature.
    if dispatcher.signatures:
        dispatcher.disable_compile()


def load_entry(dispatcher, signature):
    """Whether ``dispatcher`` now has ``signature``, loaded from its cache: compiles nothing.
    Returns where it was found ("writable" or "shipped"), or None."""
    if tuple(signature) in dispatcher.overloads:
        return dispatcher._cache.found_in or "writable"
    cache = dispatcher._cache
    cache.miss_raises = True
    dispatcher.disable_compile(False)
    try:
        with entry_only(dispatcher.targetctx.codegen()):
            dispatcher.compile(signature)
    except CacheMiss:
        return None
    finally:
        cache.miss_raises = False
        _no_more_compiles(dispatcher)
    return cache.found_in


def compile_entry(dispatcher, signature):
    """Compile ``signature`` into ``dispatcher`` (and its cache's writable folder), its callees
    emitted once in its library (:func:`entry_only`). Probes the fast path first, once per
    versions (:func:`ensure_probed`)."""
    ensure_probed()
    dispatcher.disable_compile(False)
    try:
        with entry_only(dispatcher.targetctx.codegen()):
            dispatcher.compile(signature)
    finally:
        _no_more_compiles(dispatcher)
    return dispatcher


# -- 3. machine code for the entry point only ----------------------------------------------------
#
# Numba finishes every function it compiles as if Python could call it: it links the
# function's callees into its library, optimises the whole library at the module level and
# emits machine code for it. For the engine's internal functions, which only compiled code
# calls, all of that is repeated in every caller, so a kernel three calls deep was optimised
# four times and turned into machine code four times. While the entry point compiles
# (``entry_only``), every library Numba creates is a ``_DeferredLibrary``: its functions are
# lowered to LLVM IR and nothing more, and the one library that Python calls (the entry
# point's) links all of them at once, optimises them once and emits them once.
#
# Libraries created in that window that Numba itself keeps for reuse (its own helpers, the
# overloads it caches) stay usable by any later compile: linked from a normal library, a
# deferred one brings all it needs, and asked for an address it emits a copy of itself.


def _as_linkonce(module):
    """``module`` with its defined functions linkonce_odr, as Numba links a library's code into
    another: a function only a caller needs is then dropped with the caller."""
    for function in module.functions:
        if not function.is_declaration and function.linkage.name == "external":
            function.linkage = "linkonce_odr"
    return module


def _deferred_library_class():
    """The :class:`_DeferredLibrary` class (defined only when Numba has its base class)."""

    class _DeferredLibrary(_codegen.JITCodeLibrary):
        """A library whose code is linked, optimised and emitted only by a library that needs
        it: deferred until it turns out to hold a function Python calls (Numba asks for its
        CPython wrapper's address), when it becomes the entry and links every deferred library
        it reaches."""

        def __init__(self, codegen_, name):
            super().__init__(codegen_, name)
            self._deferred = True
            self._alone = None
            self._whole = None
            self._emitted = None

        @classmethod
        def _unserialize(cls, codegen_, state):
            library = super()._unserialize(codegen_, state)
            library._deferred = False  # loaded from the cache, as machine code
            return library

        def add_llvm_module(self, ll_module):
            if not self._deferred:
                return super().add_llvm_module(ll_module)
            # Optimised once, in the entry's module: no function passes here.
            ll_module.data_layout = self._codegen._data_layout
            self._final_module.link_in(ll_module)

        def finalize(self):
            if not self._deferred:
                return self._finalize_entry()
            self._raise_if_finalized()
            for library in self._linking_libraries:
                library._ensure_finalized()
            self._final_module.verify()
            self._finalize_dynamic_globals()
            self._finalized = True

        def _reached(self):
            """The libraries this one links, directly or through deferred ones, each once,
            every one after a library that refers to it (LLVM's linker copies a linkonce
            function only into a module that already refers to it)."""
            order, seen, stack = [], {self}, list(reversed(self._linking_libraries))
            while stack:
                library = stack.pop()
                if library in seen:
                    continue
                seen.add(library)
                order.append(library)
                if getattr(library, "_deferred", False):
                    stack.extend(reversed(library._linking_libraries))
            return order

        def _module_alone(self):
            """Its own functions, for linking beside the libraries it reaches."""
            self._ensure_finalized()
            if self._alone is None:
                self._alone = _as_linkonce(self._final_module.clone())
            return self._alone

        def _linking_module(self, library):
            if getattr(library, "_deferred", False):
                return library._module_alone()
            return library._get_module_for_linking()

        def _whole_module(self):
            """Its functions and all they reach, external: a module that stands on its own."""
            self._ensure_finalized()
            if self._whole is None:
                whole = self._final_module.clone()
                for library in self._reached():
                    whole.link_in(self._linking_module(library), preserve=True)
                self._whole = whole
            return self._whole

        def _get_module_for_linking(self):
            # Asked by a library that Numba finishes the usual way, which links only the
            # libraries it names: give it everything.
            if not self._deferred:
                return super()._get_module_for_linking()
            return _as_linkonce(self._whole_module().clone())

        def get_pointer_to_function(self, name):
            if not self._deferred:
                return super().get_pointer_to_function(name)
            try:
                self._final_module.get_function(name)
            except NameError:
                # A function only compiled code calls has no CPython wrapper to point at.
                return 0
            if not self._finalized:
                # Asked before any caller linked it: the entry point, whose CPython wrapper
                # Numba asks for as soon as it is lowered.
                self._deferred = False
                return super().get_pointer_to_function(name)
            return self._emitted_copy().get_pointer_to_function(name)

        def _emitted_copy(self):
            """A normal library holding this one's whole module, for an address asked later."""
            with global_compiler_lock:
                if self._emitted is None:
                    library = _codegen.JITCodeLibrary(self._codegen, self.name)
                    library.add_llvm_module(self._whole_module().clone())
                    library.finalize()
                    self._emitted = library
            return self._emitted

        def _finalize_entry(self):
            """Numba's ``finalize``, linking every deferred library reached once."""
            require_global_compiler_lock()
            self._raise_if_finalized()
            own = _environments(self._final_module)
            reload_init = getattr(self, "_reload_init", None)  # Numba >= 0.62 keeps one
            for library in self._reached():
                if reload_init is not None:
                    reload_init.update(getattr(library, "_reload_init", ()))
                self._final_module.link_in(self._linking_module(library), preserve=True)
            linked = _environments(self._final_module) - own
            _set_linkage(self._final_module, linked, "internal")
            _optimize_module(self._codegen, self._final_module)
            # An environment still referred to keeps Numba's linkage, for set_env to find it.
            _set_linkage(self._final_module, linked, "common")
            self._final_module.verify()
            self._finalize_final_module()

    return _DeferredLibrary


def _optimize_module(codegen, module):
    """Numba's full module pipeline on ``module`` (O3, and its pass that prunes reference
    counts), without the cheap O0 pass Numba runs first so that the pruning finds each
    reference's increment and decrement in one function: the engine counts none."""
    manager = codegen._module_pass_manager()
    if isinstance(manager, tuple):  # the new pass manager and its builder (llvmlite >= 0.45)
        manager, builder = manager
        manager.run(module, builder)
    else:  # the legacy pass manager
        manager.run(module)


#: How Numba names the global that points at a function's environment (``declare_env_global``).
_ENVIRONMENT_PREFIX = "_ZN08NumbaEnv"


def _environments(module):
    """The names of the environment pointers ``module`` defines."""
    return {
        variable.name
        for variable in module.global_variables
        if variable.name.startswith(_ENVIRONMENT_PREFIX) and not variable.is_declaration
    }


def _set_linkage(module, names, linkage):
    """Gives the globals ``names`` of ``module`` (those still in it) this linkage.

    The linked functions' environments are internal while the module is optimised, so that
    the optimiser drops those no code reads: functions without a CPython wrapper read none.
    Numba caches every environment left in the module and, loading the cache, imports the
    module each belongs to (numba.np.arraymath imports all of SciPy's linalg, for example).
    """
    for variable in module.global_variables:
        if variable.name in names:
            variable.linkage = linkage


def _set_env_if_emitted(set_env, engine):
    """Numba's ``set_env``, skipped for a deferred library's function: its environment is not
    in the engine, and compiled code without a CPython wrapper never reads it."""

    def guarded(env_name, env):
        if engine.is_symbol_defined(env_name):
            set_env(env_name, env)

    return guarded


_DEFERRED = None


@contextlib.contextmanager
def entry_only(target_codegen):
    """Within this block, libraries ``target_codegen`` creates are deferred (see above)."""
    global _DEFERRED
    with global_compiler_lock:
        if _DEFERRED is None:
            _DEFERRED = _deferred_library_class()
        target_codegen._library_class = _DEFERRED
        target_codegen.set_env = _set_env_if_emitted(target_codegen.set_env, target_codegen._engine)
        try:
            yield
        finally:
            # Both were set on the instance above; removing them shows the class's again.
            del target_codegen._library_class
            del target_codegen.set_env


# -- 4. calling a compiled function without copying its code -------------------------------------
#
# Numba copies a callee's whole machine-code library into each caller's. A ``prange`` loop's
# body is wrapped in three libraries of Numba's own before the function that holds the loop,
# so every kernel the body called was compiled five times over. The parallel region therefore
# calls its blocks through ``call_unlinked``, which only declares the callee, and the entry
# point takes a copy once, through ``link``, so that a process loading the entry point from
# the cache finds the callee's code inside it.


def compile_result(dispatcher, argument_types):
    """``dispatcher``'s compile result for ``argument_types`` (compiled now if need be)."""
    argument_types = tuple(argument_types)
    dispatcher.compile(argument_types)
    return dispatcher.overloads[argument_types]


def call_unlinked(context, builder, result, values):
    """Emit a call to the compiled ``result`` that declares it, linking its library only when
    the library being compiled is deferred; an error status it returns is passed on."""
    fndesc = result.fndesc
    if getattr(context.active_code_library, "_deferred", False):
        # Linking copies nothing until the entry point links each library once, so link, and
        # the callee's code is there whichever entry point calls it.
        context.add_linking_libs([result.library])
    function = context.declare_function(builder.module, fndesc)
    status, value = context.call_conv.call_function(
        builder, function, fndesc.restype, fndesc.argtypes, values
    )
    with cgutils.if_unlikely(builder, status.is_error):
        context.call_conv.return_status_propagate(builder, status)
    return value


def link(context, builder, result):
    """Copy the compiled ``result``'s library into the library being compiled.

    LLVM's linker copies a library's functions only where the module already refers to them,
    and the entry point's own code does not (only the parallel region's does, linked in
    later): a reference from ``llvm.compiler.used`` is that reference, and survives the
    optimisations Numba runs before linking."""
    context.add_linking_libs([result.library])
    module = builder.module
    function = context.declare_function(module, result.fndesc)
    pointer = ir.IntType(8).as_pointer()
    used = ir.GlobalVariable(module, ir.ArrayType(pointer, 1), "llvm.compiler.used")
    used.linkage = "appending"
    used.section = "llvm.metadata"
    used.initializer = ir.Constant(used.type.pointee, [function.bitcast(pointer)])
    return context.get_constant(types.int64, 0)


# -- 5. the OpenMP runtime's vendor (both paths) --------------------------------------------------


def openmp_is_gnu():
    """Whether Numba's OpenMP layer runs on GNU's libgomp, which cannot start threads in a
    forked child. Numba tells only through its pool module's attribute; without it, assume
    GNU (the cautious answer: the engine then runs on one thread in forked children)."""
    try:
        from numba.np.ufunc import omppool

        return omppool.openmp_vendor == "GNU"
    except (ImportError, AttributeError):
        return True


# -- 6. calling an overload without dispatch (both paths, Numba 0.59) ---------------------------


def overload_entry(dispatcher, signature):
    """The Python-callable compiled function of ``dispatcher`` for ``signature``: it unboxes
    its arguments as those types without checking them, so the caller must have checked.
    Numba 0.59 with NumPy 1.24 misses some matches of arguments to the engine's signature
    (read-only arrays beside named tuples of arrays), which this gets around."""
    return dispatcher.overloads[tuple(signature)].entry_point


# -- the probe and the choice of path -------------------------------------------------------------


def _probe_program():
    """A new small program on every internal of the fast path (new, so that nothing of it was
    compiled before): a loop calling its block unlinked, the block linked into the entry
    point. Returns the entry point's Python function."""

    @njit(error_model="numpy", **FAST_OPTIONS)
    def block(p, out):
        out[p] = 2.0 * p + 1.0

    @intrinsic
    def block_unlinked(typingctx, p, out):
        result = compile_result(block, (p, out))

        def codegen(context, builder, signature, values):
            return call_unlinked(context, builder, result, values)

        return result.signature, codegen

    @intrinsic
    def link_block(typingctx, out):
        result = compile_result(block, (types.int64, out))

        def codegen(context, builder, signature, values):
            return link(context, builder, result)

        return types.int64(out), codegen

    # A plain loop where the engine has its prange loop: the calls and the linking are the
    # same, and a parallel region would double the probe's compile time.
    @njit(error_model="numpy", **FAST_OPTIONS)
    def region(out):
        for p in range(out.shape[0]):
            block_unlinked(np.int64(p), out)

    def probe_entry(out):
        n = link_block(out)
        region(out)
        return n + out.shape[0]

    return probe_entry


def _probe():
    """Compile :func:`_probe_program` through every internal of the fast path, save it to a
    cache of its own and load it back in a second dispatcher, and run both. Returns None, or
    what went wrong."""
    if FunctionIdentity is not None:
        _make_symbol_names_process_unique()
    signature = (types.float64[::1],)
    try:
        with tempfile.TemporaryDirectory(prefix="mlp_numba-probe-") as folder:
            folders = CacheFolders(None, pathlib.Path(folder), None)
            stamp = f"probe {secrets.token_hex(8)}"
            program = _probe_program()
            compiled = fast_dispatcher(program, stamp, {}, folders)
            compiled.disable_compile(False)
            with entry_only(compiled.targetctx.codegen()):
                compiled.compile(signature)
            compiled.disable_compile()
            loaded = fast_dispatcher(program, stamp, {}, folders)
            if load_entry(loaded, signature) is None:
                return "the probe program did not load back from its cache"
            results = []
            for dispatcher in (compiled, loaded):
                out = np.zeros(16)
                results.append((dispatcher(out), out))
    except Exception as exc:  # any failure of an internal means: not this path
        return f"the probe program failed: {type(exc).__name__}: {exc}"
    for count, out in results:
        if count != 16 or not np.array_equal(out, 2.0 * np.arange(16) + 1.0):
            return f"the probe program gave wrong results ({count}, {out[:4]})"
    return None


class FastPathFailed(RuntimeError):
    """The probe found the fast path's internals not working (:func:`ensure_probed`)."""


def ensure_probed():
    """Probe the fast path before its first compile, once per versions (the verdict is kept
    beside the compiled code): raises :class:`FastPathFailed` with the reason when it fails.
    Loading compiled code needs no probe."""
    file = verdict_file()
    verdict = _read_verdict(file)
    if verdict is None:
        started = time.perf_counter()
        problem = _probe()
        seconds = time.perf_counter() - started
        verdict = {"versions": _versions(), "problem": problem, "seconds": round(seconds, 3)}
        _write_verdict(file, verdict)
    if verdict.get("problem"):
        raise FastPathFailed(verdict["problem"])


@dataclass(frozen=True)
class Path:
    """The path the engine runs on in this process, and why."""

    #: True for the fast path.
    fast: bool
    #: Why this path: the reason for the plain path, or what checked the fast one.
    reason: str

    @property
    def name(self):
        return "fast" if self.fast else "plain"


_PATH = None
_PATH_LOCK = threading.Lock()


def _versions():
    return (
        f"numba {numba.__version__}, llvmlite {llvmlite.__version__}, "
        f"python {sys.version_info[0]}.{sys.version_info[1]}"
    )


#: Where compiled code and the fast path's verdict are kept (``cache_folder``), when set.
CACHE_DIR_VARIABLE = "MLP_NUMBA_CACHE_DIR"


def cache_folder():
    """The writable folder of the engine's compiled code: ``MLP_NUMBA_CACHE_DIR`` when set, else
    ``NUMBA_CACHE_DIR/mlp_numba``, else the engine's ``__pycache__`` when writable, else the
    user's cache folder (``XDG_CACHE_HOME`` or ``~/.cache``, then ``mlp_numba``)."""
    if os.environ.get(CACHE_DIR_VARIABLE):
        return pathlib.Path(os.environ[CACHE_DIR_VARIABLE])
    if numba.config.CACHE_DIR:
        return pathlib.Path(numba.config.CACHE_DIR) / "mlp_numba"
    folder = pathlib.Path(__file__).parent / "__pycache__"
    if _writable(folder):
        return folder
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "mlp_numba"


def verdict_file():
    """Where the probe's verdict is kept: in :func:`cache_folder`, per versions of Numba,
    llvmlite, Python and this module."""
    own = hashlib.sha256(pathlib.Path(__file__).read_bytes()).hexdigest()[:16]
    key = hashlib.sha256(f"{_versions()} {own}".encode()).hexdigest()[:16]
    return cache_folder() / f"mlp_numba-fast-path-{key}.json"


def _writable(folder):
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def _read_verdict(file):
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError):
        return None


def _write_verdict(file, verdict):
    """Kept atomically; a folder that cannot be written only means probing again next time."""
    with contextlib.suppress(OSError):
        file.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=file.parent, prefix=".verdict-")
        with os.fdopen(handle, "w") as f:
            json.dump(verdict, f)
        os.replace(temporary, file)


def _decide():
    if os.environ.get(PLAIN_JIT_VARIABLE, "").strip() not in ("", "0"):
        return Path(False, f"{PLAIN_JIT_VARIABLE}={os.environ[PLAIN_JIT_VARIABLE]}")
    problems = _static_problems()
    if problems:
        return Path(False, f"{_versions()} lacks {', '.join(problems)}")
    verdict = _read_verdict(verdict_file())
    if verdict is not None and verdict.get("problem"):
        return Path(False, f"{_versions()}: {verdict['problem']}")
    _make_symbol_names_process_unique()
    if verdict is None:
        probed = "the probe runs before its first compile here"
    else:
        probed = f"the probe compiled and ran ({verdict['seconds']} s)"
    return Path(True, f"{_versions()}: every internal present; {probed}")


def path():
    """The :class:`Path` of this process, decided on the first call (see the module)."""
    global _PATH
    if _PATH is None:
        with _PATH_LOCK:
            if _PATH is None:
                chosen = _decide()
                if not chosen.fast and not chosen.reason.startswith(PLAIN_JIT_VARIABLE):
                    _warn_plain(chosen.reason)
                _PATH = chosen
    return _PATH


def fall_back(reason):
    """Switch this process, and later ones of these versions, to the plain path: the fast
    one failed where the probe did not."""
    global _PATH
    _write_verdict(verdict_file(), {"versions": _versions(), "problem": reason, "seconds": 0})
    _warn_plain(reason)
    _PATH = Path(False, reason)


def _warn_plain(reason):
    warnings.warn(
        f"mlp_numba: the engine compiles on its plain path ({reason}). Results are the same; "
        "its first compile takes about four times as long, once per dtype, and is "
        "then cached. Set MLP_NUMBA_PLAIN_JIT=1 to choose this path and silence this warning.",
        RuntimeWarning,
        stacklevel=3,
    )
