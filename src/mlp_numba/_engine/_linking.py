"""Calling a compiled function without copying its code into every library on the way.

Numba copies a callee's whole machine-code library into each caller's, then optimises and
compiles the copy again. A ``prange`` loop's body is wrapped in three libraries of Numba's own
(the kernel and two wrappers) before the function that holds the loop, so every kernel the
body called was compiled five times over, most of the engine's compile time. The parallel
region therefore calls its blocks through :func:`call_unlinked`, which only declares the
callee (the process's compiled code resolves it), and the entry point takes a copy once,
through :func:`link`, so that a process loading the entry point from the cache finds the
callee's code inside it. When the entry point compiles under ``_codegen.entry_only`` (the
usual case), linking copies nothing until the entry point links each library once, so the
call links its callee too; declaring alone remains for a Numba without that.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import cgutils, types


def compile_result(dispatcher, argument_types):
    """``dispatcher``'s compile result for ``argument_types`` (compiled now if need be)."""
    argument_types = tuple(argument_types)
    dispatcher.compile(argument_types)
    return dispatcher.overloads[argument_types]


def call_unlinked(context, builder, result, values):
    """Emit a call to the compiled ``result`` that declares it, linking its library only when
    the library being compiled is deferred (see the module); an error status it returns is
    passed on to the caller."""
    fndesc = result.fndesc
    if getattr(context.active_code_library, "_deferred", False):
        # Compiled for the entry point only (``_codegen``): linking copies nothing until the
        # entry point links each library once, so link, and the callee's code is there
        # whichever entry point calls it.
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
