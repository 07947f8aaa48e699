"""The engine's internal functions are emitted once, inside the entry point's library, and what
Numba compiled for them along the way stays usable by the user's own compiled code."""

import subprocess
import sys
import textwrap

import numba
import numpy as np
from numba.core.registry import cpu_target

from mlp_numba._engine import _codegen, engine_for


def test_this_numba_supports_emitting_the_entry_point_only():
    # Without it the engine still compiles, correctly and slowly: this test tells that a Numba
    # release changed what deferring relies on.
    assert _codegen.supported(cpu_target.target_context.codegen())


def test_the_entry_points_library_holds_every_kernel_and_is_cacheable():
    engine = engine_for(np.float64)
    (result,) = engine._run.overloads.values()
    library = result.library
    assert not library.has_dynamic_globals
    # Compiled here or loaded from the cache, the library carries its whole module's IR.
    module = library._get_module_for_linking()
    defined = [f.name for f in module.functions if not f.is_declaration]
    # The kernel the parallel region calls by name is in the library, not only declared.
    assert any("run_block" in name for name in defined)


def test_code_compiled_after_the_engine_reuses_numbas_helpers_correctly():
    # The engine's compile leaves Numba's own helpers (reshape's, max's, finfo's) compiled as
    # deferred libraries in Numba's caches; a user's function compiled afterwards links them
    # from a library finished the usual way, and calls one from Python.
    source = textwrap.dedent(
        """
        import numba, numpy as np
        from mlp_numba import TwoLayerNet

        rng = np.random.default_rng(0)
        X, y = rng.standard_normal((60, 8)), rng.integers(0, 3, 60)
        TwoLayerNet(8, 5, 3, seed=0).train(X, y, X, y, num_iters=3, batch_size=20)

        @numba.njit
        def user(a, n):
            b = a.reshape(a.size)
            return max(n, 3), b.sum(), np.finfo(a.dtype).max, min(b.size, n)

        a = np.arange(12.0).reshape(3, 4)
        print(*(float(v) for v in user(a, 7)))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    expected = (7, 66.0, np.finfo(np.float64).max, 7)
    assert done.stdout.split() == [repr(float(v)) for v in expected]


def test_a_deferred_function_gives_an_address_when_asked():
    @numba.njit(no_cpython_wrapper=True)
    def inner(x):
        return x * 2.0 + 1.0

    @numba.njit
    def outer(x):
        return inner(x)

    with _codegen.entry_only(cpu_target.target_context.codegen()):
        assert outer(3.0) == 7.0
    (result,) = inner.overloads.values()
    address = result.library.get_pointer_to_function(result.fndesc.llvm_func_name)
    assert address != 0
