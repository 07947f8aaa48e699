"""The engine's two paths: the fast one on Numba's internals (``_engine._numba_private``), and
the plain one, which uses none of them. Each internal missing, or misbehaving, means the plain
path with a warning, never a crash; both paths give the same results."""

import os
import subprocess
import sys
import textwrap
import warnings

import numba
import numpy as np
import pytest

from mlp_numba._engine import _numba_private as private
from mlp_numba._engine import engine_for, path

FAST = path().fast
fast_only = pytest.mark.skipif(not FAST, reason=f"this process runs the plain path: {path()}")


@pytest.fixture
def verdicts(tmp_path, monkeypatch):
    """Probe verdicts kept in a folder of the test's own."""
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))
    monkeypatch.delenv(private.PLAIN_JIT_VARIABLE, raising=False)
    monkeypatch.delenv(private.CACHE_DIR_VARIABLE, raising=False)
    return tmp_path


def _decide_quietly():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return private._decide()


def _class_attributes():
    """(class, name) of each class attribute the fast path uses."""
    from numba.core import caching, codegen

    named = [(codegen.JITCodeLibrary, name) for name in private._LIBRARY_METHODS]
    named += [(caching.FunctionCache, name) for name in private._CACHE_ATTRIBUTES]
    named.append((caching.CompileResultCacheImpl, "_locator_classes"))
    return named


@pytest.mark.parametrize(
    "owner,name", _class_attributes(), ids=lambda x: getattr(x, "__name__", str(x))
)
def test_a_missing_method_means_the_plain_path(owner, name, monkeypatch, verdicts):
    # Deleted (from every class that defines it) only while the path is decided: the engine
    # itself never runs without it here.
    for cls in owner.__mro__:
        if name in vars(cls):
            monkeypatch.delattr(cls, name)
    problems = private._static_problems()
    chosen = _decide_quietly()
    monkeypatch.undo()
    assert any(name in problem for problem in problems), problems
    assert not chosen.fast and name in chosen.reason


@pytest.mark.parametrize(
    "module_name", ["_codegen", "FunctionCache", "CompileResultCacheImpl", "FunctionIdentity"]
)
def test_a_missing_module_means_the_plain_path(module_name, monkeypatch, verdicts):
    monkeypatch.setattr(private, module_name, None)
    monkeypatch.setattr(private, "_MISSING", [f"{module_name} (removed by the test)"])
    chosen = _decide_quietly()
    assert not chosen.fast and module_name in chosen.reason


def test_missing_attributes_of_the_compiler_mean_the_plain_path(monkeypatch, verdicts):
    codegen = private._target_codegen()
    monkeypatch.setattr(private, "_CODEGEN_ATTRIBUTES", ("_no_such_attribute",))
    assert "JITCPUCodegen._no_such_attribute" in private._static_problems()
    monkeypatch.setattr(private, "_CONTEXT_ATTRIBUTES", ("add_linking_libs", "_gone"))
    assert "CPUContext._gone" in private._static_problems()
    assert codegen is private._target_codegen()


def _broken(*args, **kwargs):
    raise AttributeError("'_DeferredLibrary' object has no attribute '_reload_init'")


@pytest.mark.parametrize(
    "name,replacement,expected",
    [
        # (Older Numba releases wrap the error in their own.)
        ("link", _broken, "the probe program failed: "),
        ("call_unlinked", _broken, "the probe program failed: "),
        ("_optimize_module", _broken, "the probe program failed: "),
        # A link that returns 5 where 0 is due: the program runs and answers wrongly.
        ("link", lambda context, builder, result: context.get_constant(numba.int64, 5),
         "wrong results"),
    ],
    ids=["link raises", "call_unlinked raises", "optimising raises", "link misbehaves"],
)  # fmt: skip
def test_an_internal_that_misbehaves_fails_the_probe(
    name, replacement, expected, monkeypatch, verdicts
):
    # The probe runs before the fast path's first compile (loading compiled code needs none);
    # its verdict, kept per versions, sends this process and later ones to the plain path.
    monkeypatch.setattr(private, name, replacement)
    assert _decide_quietly().fast
    with pytest.raises(private.FastPathFailed) as failed:
        private.ensure_probed()
    assert expected in str(failed.value)
    chosen = _decide_quietly()
    assert not chosen.fast and expected in chosen.reason


def test_the_variable_forces_the_plain_path(monkeypatch, verdicts):
    monkeypatch.setenv(private.PLAIN_JIT_VARIABLE, "1")
    chosen = private._decide()
    assert not chosen.fast and chosen.reason == "MLP_NUMBA_PLAIN_JIT=1"


def test_the_plain_path_warns_once_naming_numba(monkeypatch):
    monkeypatch.setattr(private, "_PATH", None)
    monkeypatch.setattr(private, "_decide", lambda: private.Path(False, "numba 0.1 lacks x"))
    with pytest.warns(RuntimeWarning, match="plain path .numba 0.1 lacks x"):
        assert not private.path().fast
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not private.path().fast


# -- the plain path, end to end, in processes of its own ---------------------------------------

RESULTS = """
import sys, warnings
import numpy as np
from mlp_numba import MLP, TwoLayerNet
from mlp_numba._engine import path

rng = np.random.default_rng(0)
X, y = rng.standard_normal((300, 40)), rng.integers(0, 5, 300)
out = {"path": np.array(path().name)}
for dtype in (np.float64, np.float32):
    name = np.dtype(dtype).name
    net = TwoLayerNet(40, 30, 5, std=0.1, seed=1, dtype=dtype)
    h = net.train(X, y, X, y, learning_rate=0.1, num_iters=40, batch_size=64, optimizer="adam")
    deep = MLP(40, (32, 16), 5, seed=2, dtype=dtype, activation="tanh")
    deep.train(X, y, X, y, learning_rate=0.05, num_iters=40, batch_size=64, dropout=0.2,
               optimizer="nesterov")
    out[f"{name}_loss"] = np.array(h["loss_history"])
    out[f"{name}_proba"] = deep.predict_proba(X)
    out[f"{name}_grad"] = deep.loss(X[:50], y[:50], reg=0.1)[1]["W2"]
    for k, p in net.params.items():
        out[f"{name}_{k}"] = p
np.savez(sys.argv[1], **out)
"""


def _results(tmp_path, name, cache, **env):
    file = tmp_path / f"{name}.npz"
    environment = dict(os.environ, NUMBA_CACHE_DIR=str(cache), **env)
    environment.pop(private.CACHE_DIR_VARIABLE, None)  # it would win over NUMBA_CACHE_DIR
    done = subprocess.run(
        [sys.executable, "-c", RESULTS, str(file)],
        env=environment, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(np.load(file)), done.stderr


@pytest.fixture(scope="module")
def plain_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("plain-cache")


@pytest.mark.slow
def test_the_plain_path_agrees_with_the_fast_one_and_across_threads(tmp_path, plain_cache):
    plain, _ = _results(tmp_path, "plain", plain_cache, MLP_NUMBA_PLAIN_JIT="1")
    one_thread, _ = _results(
        tmp_path, "plain1", plain_cache, MLP_NUMBA_PLAIN_JIT="1", NUMBA_NUM_THREADS="1"
    )
    fast, _ = _results(tmp_path, "fast", tmp_path / "fast-cache")
    assert str(plain.pop("path")) == str(one_thread.pop("path")) == "plain"
    fast_path = str(fast.pop("path"))
    for key, value in plain.items():
        np.testing.assert_array_equal(one_thread[key], value, err_msg=key)
        tol = 1e-12 if value.dtype == np.float64 else 1e-5
        scale = np.abs(fast[key]).max()
        assert np.abs(value - fast[key]).max() <= tol * scale, (key, fast_path)


@pytest.mark.slow
def test_a_failure_of_the_fast_engine_falls_back_to_the_plain_path(tmp_path, plain_cache):
    if not FAST:
        pytest.skip("this Numba runs the plain path already")
    script = textwrap.dedent(
        """
        import sys, warnings
        import numpy as np
        from mlp_numba._engine import _numba_private, path

        def broken(*args, **kwargs):
            raise AttributeError("a Numba release changed an internal")

        assert path().fast
        _numba_private.fast_dispatcher = broken
        from mlp_numba import TwoLayerNet, reference
        rng = np.random.default_rng(0)
        X, y = rng.standard_normal((100, 6)), rng.integers(0, 3, 100)
        nets = [cls(6, 5, 3, std=0.1, seed=0) for cls in (TwoLayerNet, reference.TwoLayerNet)]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for net in nets:
                net.train(X, y, X, y, learning_rate=0.1, num_iters=20, batch_size=20)
        assert not path().fast, path()
        messages = [str(w.message) for w in caught if "plain path" in str(w.message)]
        assert len(messages) == 1 and "a Numba release changed" in messages[0], messages
        np.testing.assert_allclose(nets[0].params["W1"], nets[1].params["W1"], rtol=1e-10)
        print("fell back")
        """
    )
    environment = dict(os.environ, NUMBA_CACHE_DIR=str(plain_cache))
    # The fall-back's verdict goes to the test's folder, not a cache folder the caller set.
    for variable in (private.PLAIN_JIT_VARIABLE, private.CACHE_DIR_VARIABLE):
        environment.pop(variable, None)
    done = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["fell", "back"]


# -- the fast path's own behaviour ---------------------------------------------------------------


@fast_only
def test_the_entry_points_library_holds_every_kernel_and_is_cacheable():
    engine = engine_for(np.float64)
    library = engine._run.overloads[engine._types].library
    assert not library.has_dynamic_globals
    # Compiled here or loaded from the cache, the library carries its whole module's IR.
    module = library._get_module_for_linking()
    defined = [f.name for f in module.functions if not f.is_declaration]
    # The kernel the parallel region calls by name is in the library, not only declared.
    assert any("run_block" in name for name in defined)


@fast_only
@pytest.mark.slow
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


@fast_only
def test_a_deferred_function_gives_an_address_when_asked():
    @numba.njit(no_cpython_wrapper=True)
    def inner(x):
        return x * 2.0 + 1.0

    @numba.njit
    def outer(x):
        return inner(x)

    with private.entry_only(private._target_codegen()):
        assert outer(3.0) == 7.0
    (result,) = inner.overloads.values()
    address = result.library.get_pointer_to_function(result.fndesc.llvm_func_name)
    assert address != 0
