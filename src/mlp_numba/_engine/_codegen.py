"""Machine code for the entry point only: the functions it calls stay LLVM IR until it links them.

Numba finishes every function it compiles as if Python could call it: it links the function's
callees into its library, optimises the whole library at the module level and emits machine
code for it. For the engine's internal functions, which only compiled code calls, all of that
is repeated in every caller, so a kernel three calls deep was optimised four times and turned
into machine code four times, and that was most of the engine's compile time. While the entry
point compiles (:func:`entry_only`), every library Numba creates is a
:class:`_DeferredLibrary`: its functions are lowered to LLVM IR and nothing more, and the one
library that Python calls (the one with a CPython wrapper, the entry point's) links all of
them at once, optimises them once (Numba's module pipeline, which also runs the function
passes Numba would have run on each piece) and emits them once. The entry point's library is
cached as usual.

Libraries created in that window that Numba itself keeps for reuse (its own helpers, the
overloads it caches) stay usable by any later compile: linked from a normal library, a
deferred one brings all it needs (:meth:`_DeferredLibrary._get_module_for_linking`), and asked
for an address it emits a copy of itself.

This relies on the attributes of ``numba.core.codegen`` named below; when the installed Numba
lacks one, :func:`entry_only` does nothing and the engine compiles the slow way, with the same
results.
"""

from __future__ import annotations

import contextlib

from numba.core import codegen
from numba.core.compiler_lock import global_compiler_lock, require_global_compiler_lock

#: What deferring uses of Numba's code generation, beyond its public API.
_LIBRARY_METHODS = (
    "add_llvm_module", "_finalize_final_module",
    "_get_module_for_linking", "_finalize_dynamic_globals", "get_pointer_to_function",
)  # fmt: skip
_CODEGEN_ATTRIBUTES = (
    "_library_class", "_engine", "_data_layout", "set_env", "_module_pass_manager",
)  # fmt: skip


def supported(target_codegen):
    """Whether this Numba's code generation has what deferring relies on."""
    return all(hasattr(codegen.JITCodeLibrary, m) for m in _LIBRARY_METHODS) and all(
        hasattr(target_codegen, a) for a in _CODEGEN_ATTRIBUTES
    )


def _as_linkonce(module):
    """``module`` with its defined functions linkonce_odr, as Numba links a library's code into
    another: a function only a caller needs is then dropped with the caller."""
    for function in module.functions:
        if not function.is_declaration and function.linkage.name == "external":
            function.linkage = "linkonce_odr"
    return module


class _DeferredLibrary(codegen.JITCodeLibrary):
    """A library whose code is linked, optimised and emitted only by a library that needs it.

    It starts deferred: its own functions are kept as lowered, with no optimisation. If it
    turns out to hold a function Python calls (Numba asks for its CPython wrapper's address),
    it becomes the entry: it links every deferred library it reaches, then is finished as
    Numba finishes any library.
    """

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

    # -- while deferred ----------------------------------------------------------------------

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
        """The libraries this one links, directly or through deferred ones, each once, every
        one after a library that refers to it (LLVM's linker copies a linkonce function only
        into a module that already refers to it)."""
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
            # Asked before any caller linked it: the entry point, whose CPython wrapper Numba
            # asks for as soon as it is lowered.
            self._deferred = False
            return super().get_pointer_to_function(name)
        return self._emitted_copy().get_pointer_to_function(name)

    def _emitted_copy(self):
        """A normal library holding this one's whole module, for an address asked later."""
        with global_compiler_lock:
            if self._emitted is None:
                library = codegen.JITCodeLibrary(self._codegen, self.name)
                library.add_llvm_module(self._whole_module().clone())
                library.finalize()
                self._emitted = library
        return self._emitted

    # -- the entry ---------------------------------------------------------------------------

    def _finalize_entry(self):
        """Numba's ``finalize``, linking every deferred library reached once."""
        require_global_compiler_lock()
        self._raise_if_finalized()
        own = _environments(self._final_module)
        for library in self._reached():
            self._reload_init.update(library._reload_init)
            self._final_module.link_in(self._linking_module(library), preserve=True)
        linked = _environments(self._final_module) - own
        _set_linkage(self._final_module, linked, "internal")
        self._optimize_entry_module()
        # An environment still referred to keeps Numba's linkage, for set_env to find it.
        _set_linkage(self._final_module, linked, "common")
        self._final_module.verify()
        self._finalize_final_module()

    def _optimize_entry_module(self):
        """Numba's full module pipeline (O3, and its pass that prunes reference counts).

        Numba first runs a cheap pipeline that inlines at O0, so that the pruning finds each
        reference's increment and decrement in one function; the engine's code counts no
        references (``_nrt`` off), so that pass would only cost time.
        """
        manager, builder = self._codegen._module_pass_manager()
        manager.run(self._final_module, builder)


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


@contextlib.contextmanager
def entry_only(target_codegen):
    """Within this block, libraries ``target_codegen`` creates are deferred (see the module)."""
    if not supported(target_codegen):
        yield
        return
    with global_compiler_lock:
        target_codegen._library_class = _DeferredLibrary
        target_codegen.set_env = _set_env_if_emitted(target_codegen.set_env, target_codegen._engine)
        try:
            yield
        finally:
            # Both were set on the instance above; removing them shows the class's again.
            del target_codegen._library_class
            del target_codegen.set_env
