"""Compiled code shipped with the package: loaded with no compile, read only; when it cannot
serve, a compile with one log line saying why (for the baseline CPU in a separate process, so
bitwise the shipped code's results), never a crash."""

import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mlp_numba._engine import compiled_code, path

pytestmark = pytest.mark.skipif(
    not path().fast or compiled_code.baseline_problem() is not None,
    reason=f"shipped code needs the fast path and the {compiled_code.BASELINE_CPU} baseline",
)

#: Trains and scores in a fresh process whose shipped folder is argv[1]; prints where the
#: entry point came from, the compiles it took, and the params and predictions (hex).
TRAIN = textwrap.dedent(
    """
    import logging, sys
    from pathlib import Path
    import numpy as np
    logging.basicConfig(level=logging.INFO, format="LOG %(message)s")
    from mlp_numba._engine import compiled_code
    compiled_code.SHIPPED_FOLDER = Path(sys.argv[1])
    if len(sys.argv) > 2:
        compiled_code.baseline_problem = lambda: sys.argv[2]
    from mlp_numba import TwoLayerNet
    from mlp_numba._engine import engine_for
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((300, 40)), rng.integers(0, 4, 300)
    net = TwoLayerNet(40, 30, 4, std=0.1, seed=0)
    net.train(X, y, X, y, learning_rate=0.1, num_iters=40, batch_size=50, optimizer="adam")
    classes = net.predict(X)
    small = TwoLayerNet(40, 30, 4, std=0.1, seed=0, dtype=np.float32)
    small.train(X, y, X, y, learning_rate=0.1, num_iters=5, batch_size=50)
    run = engine_for(np.float64)._run
    # (one dispatcher serves both dtypes)
    runs = {id(r): r for r in (engine_for(d)._run for d in (np.float64, np.float32))}
    misses = sum(sum(r.stats.cache_misses.values()) for r in runs.values())
    print("FOUND", run._cache.found_in, "MISSES", misses)
    print("W1", net.params["W1"].tobytes().hex()[:4000], classes.tobytes().hex())
    """
)


def _run(shipped, cache, *extra, **env):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MLP_NUMBA_")}
    environment.update(MLP_NUMBA_CACHE_DIR=str(cache), **env)
    done = subprocess.run(
        [sys.executable, "-c", TRAIN, str(shipped), *extra],
        env=environment, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines() + done.stderr.splitlines()
    found = next(line for line in lines if line.startswith("FOUND")).split()
    weights = next(line for line in lines if line.startswith("W1"))
    logs = [line for line in lines if line.startswith("LOG")]
    return {"found": found[1], "misses": int(found[3]), "weights": weights, "logs": logs}


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """Both engines compiled for the baseline side by side, as a wheel's build does."""
    folder = tmp_path_factory.mktemp("shipped")
    compiled_code.compile_ahead(folder, ["float64", "float32"])
    assert len(list(folder.glob("*.nbi"))) == 2  # one index each: no race between them
    for verdict in folder.glob("*.json"):
        verdict.unlink()
    return folder


@pytest.fixture(scope="module")
def from_shipped(shipped, tmp_path_factory):
    before = {p.name: p.stat().st_mtime_ns for p in shipped.iterdir()}
    cache = tmp_path_factory.mktemp("cache")
    result = _run(shipped, cache)
    after = {p.name: p.stat().st_mtime_ns for p in shipped.iterdir()}
    return result, before, after, cache


@pytest.mark.slow
def test_a_fresh_process_loads_the_shipped_code_and_compiles_nothing(from_shipped):
    result, before, after, cache = from_shipped
    assert result["found"] == "shipped" and result["misses"] == 0
    assert result["logs"] == []
    assert before == after  # read only
    assert not list(cache.glob("*.nbi"))  # nothing compiled, so nothing saved


@pytest.mark.slow
def test_a_compile_standing_in_for_the_shipped_code_gives_its_bits(shipped, from_shipped, tmp_path):
    # Shipped code built by another Numba: a compile for the baseline in another process.
    mismatched = tmp_path / "shipped"
    shutil.copytree(shipped, mismatched)
    _rewrite_index(mismatched, version="0.0.1")
    shipped_result = from_shipped[0]
    result = _run(mismatched, tmp_path / "cache")
    assert result["found"] == "writable" and result["misses"] == 0  # compiled elsewhere
    assert len(result["logs"]) == 2  # one line for each dtype's engine
    for log, dtype in zip(result["logs"], ("float64", "float32"), strict=True):
        assert f"the {dtype} engine for x86-64-v3" in log and "numba 0.0.1" in log
    assert result["weights"] == shipped_result["weights"]
    assert list((tmp_path / "cache").glob("*.nbi"))
    # A later process loads what the stand-in compiled, silently.
    again = _run(mismatched, tmp_path / "cache")
    assert again["logs"] == [] and again["weights"] == shipped_result["weights"]


def test_an_install_that_ships_nothing_compiles_in_the_process(tmp_path, monkeypatch):
    monkeypatch.setattr(compiled_code, "SHIPPED_FOLDER", tmp_path / "absent")
    monkeypatch.setattr(compiled_code, "compile_ahead", None)  # never called
    assert compiled_code.stand_in("float64", "a source or editable install") is False


@pytest.mark.slow
def test_a_cpu_without_the_baseline_compiles_here_for_itself(shipped, from_shipped, tmp_path):
    result = _run(shipped, tmp_path, "this CPU lacks avx2 of x86-64-v3")
    assert result["misses"] == 2  # both dtypes compiled in this process
    assert len(result["logs"]) == 2
    assert all("for this CPU" in log and "lacks avx2" in log for log in result["logs"])
    ours = np.frombuffer(bytes.fromhex(result["weights"].split()[1]), np.float64)
    theirs = np.frombuffer(bytes.fromhex(from_shipped[0]["weights"].split()[1]), np.float64)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


def _rewrite_index(folder, version=None, stamp=None):
    for index in folder.glob("*.nbi"):
        with open(index, "rb") as f:
            old_version = pickle.load(f)
            old_stamp, overloads = pickle.loads(f.read())
        with open(index, "wb") as f:
            pickle.dump(version or old_version, f)
            f.write(pickle.dumps((stamp or old_stamp, overloads)))


@pytest.fixture
def copy_of(shipped, tmp_path, monkeypatch):
    folder = tmp_path / "shipped"
    shutil.copytree(shipped, folder)
    monkeypatch.setattr(compiled_code, "SHIPPED_FOLDER", folder)
    monkeypatch.delenv(compiled_code.NO_SHIPPED_VARIABLE, raising=False)
    return folder


def _problem():
    from mlp_numba._engine import entry
    from mlp_numba._engine.engine import STAMP

    return compiled_code.shipped_problem(entry.run, STAMP)


@pytest.mark.slow
def test_each_mismatch_is_named(copy_of, monkeypatch):
    from mlp_numba._engine.engine import STAMP

    assert _problem() is None
    monkeypatch.setenv(compiled_code.NO_SHIPPED_VARIABLE, "1")
    assert _problem() == "MLP_NUMBA_NO_SHIPPED=1"
    monkeypatch.delenv(compiled_code.NO_SHIPPED_VARIABLE)

    _rewrite_index(copy_of, stamp=STAMP.replace("numba ", "numba 9"))
    assert "the shipped code was built with numba 9" in _problem()
    _rewrite_index(copy_of, stamp=STAMP.split(";")[0] + "; sources 0")
    assert _problem() == "the shipped code was built from other sources of the engine"
    _rewrite_index(copy_of, version="0.0.1", stamp=STAMP)
    assert "built with numba 0.0.1, this is numba" in _problem()

    for index in copy_of.glob("*.nbi"):  # code for another Python only
        index.rename(index.with_name(index.name.replace(".py3", ".py2")))
    assert _problem().startswith("no shipped code for Python 3.")

    monkeypatch.setattr(compiled_code, "baseline_problem", lambda: "this CPU lacks fma")
    assert _problem() == "this CPU lacks fma"
    monkeypatch.setattr(compiled_code, "SHIPPED_FOLDER", Path(copy_of) / "absent")
    assert "a source or editable install" in _problem()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity (Linux)")
def test_the_stamp_holds_no_file_time_nor_machine_value():
    from mlp_numba._engine.engine import STAMP

    built, sources = STAMP.split(";")
    assert built.startswith("numba ") and ("blas cblas" in built or "blas np.dot" in built)
    assert sources.startswith(" sources ") and ".so" not in STAMP
    # One CPU: another count of blocks, the same compiled code.
    script = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
        "from mlp_numba._engine.kernels.common import BLAS_PIECES; "
        "from mlp_numba._engine.engine import STAMP; print(BLAS_PIECES); print(STAMP)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    pieces, stamp = out.stdout.splitlines()
    assert pieces == "1" and stamp == STAMP


def _installed_problem():
    from mlp_numba._engine import entry
    from mlp_numba._engine.engine import STAMP

    return compiled_code.shipped_problem(entry.run, STAMP)


@pytest.mark.slow
def test_the_installed_package_starts_with_zero_compiles(tmp_path):
    """Of a wheel's install (``.ci/run`` sets MLP_NUMBA_EXPECT_SHIPPED=1: it must serve)."""
    problem = _installed_problem()
    if problem is not None:
        assert not os.environ.get("MLP_NUMBA_EXPECT_SHIPPED"), problem
        pytest.skip(problem)
    result = _run(compiled_code.SHIPPED_FOLDER, tmp_path)
    assert result["found"] == "shipped" and result["misses"] == 0 and result["logs"] == []
