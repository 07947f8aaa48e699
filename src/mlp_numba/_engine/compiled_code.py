"""Where the engine's compiled code comes from: shipped in the wheel, kept in a writable cache,
or compiled now.

A wheel carries the entry point compiled for float64 and float32 (``_shipped/``, written when
the wheel is built) for a fixed CPU baseline, :data:`BASELINE_CPU` (x86-64-v3: AVX2, FMA, BMI2),
so that a wheel built on one machine serves every machine that has the baseline's features.
The engine only reads that folder. When the shipped code cannot serve (another Numba, llvmlite,
NumPy or BLAS kind than it was built with, another Python, a CPU without the baseline, the
plain path, ``MLP_NUMBA_NO_SHIPPED=1``, a source or editable install), the engine compiles, with
one log line saying why: in a separate process for the baseline CPU (Numba's documented
``NUMBA_CPU_NAME``/``NUMBA_CPU_FEATURES``, which only apply to a whole process), so that its
results are bitwise those of the shipped code; or, where that cannot run, in this process for
this CPU. Compiled code goes to the writable cache folder (``_numba_private.cache_folder``).

``mlp-numba compile`` compiles into that folder up front; ``--native`` compiles for this CPU
(:func:`compile_ahead`).
"""

from __future__ import annotations

import functools
import logging
import os
import pathlib
import platform
import subprocess
import sys
import time

#: The CPU model the shipped code and every stand-in compile target (LLVM's name).
BASELINE_CPU = "x86-64-v3"
#: The features that model implies, which a CPU must have to run its code (LLVM's names).
BASELINE_FEATURES = (
    "avx", "avx2", "bmi", "bmi2", "cx16", "f16c", "fma", "lzcnt", "movbe", "popcnt", "sse3",
    "sse4.1", "sse4.2", "ssse3", "xsave",
)  # fmt: skip
#: Set to 1 to ignore the shipped code (benchmarks and tests of a compile from nothing).
NO_SHIPPED_VARIABLE = "MLP_NUMBA_NO_SHIPPED"
#: The shipped code's folder inside the installed package.
SHIPPED_FOLDER = pathlib.Path(__file__).parent / "_shipped"
#: The dtypes the wheel carries code for.
DTYPES = ("float64", "float32")
#: Set in the process :func:`compile_ahead` starts for ``--native``: code for this CPU only.
_NATIVE_VARIABLE = "_MLP_NUMBA_COMPILE_NATIVE"

log = logging.getLogger("mlp_numba")


class CompileFailed(RuntimeError):
    """A compile in a separate process failed; its message ends with the process's output."""


def baseline_environment():
    """The environment variables that make Numba compile a whole process for the baseline."""
    return {"NUMBA_CPU_NAME": BASELINE_CPU, "NUMBA_CPU_FEATURES": ""}


def compiles_for_baseline():
    """Whether this process compiles for the baseline CPU (a stand-in or wheel-build child)."""
    return all(os.environ.get(k) == v for k, v in baseline_environment().items())


def _compiles_natively():
    return os.environ.get(_NATIVE_VARIABLE) == "1"


@functools.cache
def baseline_problem():
    """Why this machine cannot run code compiled for the baseline, or None (asked once)."""
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64"):
        return f"{BASELINE_CPU} code does not run on {machine}"
    import llvmlite.binding as ll

    features = ll.get_host_cpu_features()
    missing = [name for name in BASELINE_FEATURES if not features.get(name)]
    if missing:
        return f"this CPU lacks {', '.join(missing)} of {BASELINE_CPU}"
    return None


def shipped_folder():
    """The shipped code's folder, or None when there is none or it is to be ignored."""
    if os.environ.get(NO_SHIPPED_VARIABLE, "").strip() not in ("", "0"):
        return None
    return SHIPPED_FOLDER if SHIPPED_FOLDER.is_dir() else None


def folders():
    """The :class:`~._numba_private.CacheFolders` of this process."""
    from . import _numba_private

    triple = _numba_private.codegen_magic()[0]
    usable = not (_compiles_natively() or baseline_problem())
    baseline = (triple, BASELINE_CPU, "") if usable else None
    return _numba_private.CacheFolders(shipped_folder(), _numba_private.cache_folder(), baseline)


def shipped_problem(py_func, stamp):
    """Why the shipped code of ``py_func`` cannot serve this process (whose stamp is
    ``stamp``), or None when it can."""
    from . import _numba_private

    if os.environ.get(NO_SHIPPED_VARIABLE, "").strip() not in ("", "0"):
        return f"{NO_SHIPPED_VARIABLE}={os.environ[NO_SHIPPED_VARIABLE]}"
    if not SHIPPED_FOLDER.is_dir():
        return "no compiled code ships with this install (a source or editable install)"
    problem = baseline_problem()
    if problem:
        return problem
    index = _numba_private.shipped_index(SHIPPED_FOLDER, py_func)
    if index is None:
        return f"no shipped code for Python {sys.version_info[0]}.{sys.version_info[1]}"
    version, shipped = index
    import numba

    if version != numba.__version__:
        return f"the shipped code was built with numba {version}, this is numba {numba.__version__}"
    if shipped != stamp:
        built, here = str(shipped).split(";")[0], str(stamp).split(";")[0]
        if built != here:
            return f"the shipped code was built with {built}; this is {here}"
        return "the shipped code was built from other sources of the engine"
    return None


def why_not_shipped(py_func, stamp):
    """Why the engine compiles: :func:`shipped_problem`, or that the shipped code lacks the
    entry."""
    return shipped_problem(py_func, stamp) or "the shipped code has no entry for these types"


def stand_in(dtype, reason):
    """Compile the engine of ``dtype`` for the baseline in a separate process into the writable
    folder, so that this process loads it; returns whether it did. Not when this process
    already compiles for the baseline (it is such a process), nor when nothing ships with
    this install (a source or editable one), nor on a CPU without the baseline's features:
    the caller then compiles here, for this CPU."""
    from . import _numba_private

    folder = _numba_private.cache_folder()
    if compiles_for_baseline() or _compiles_natively():
        return False
    if not SHIPPED_FOLDER.is_dir():
        # Nothing ships with this install, so no shipped results to match: compile here.
        log.info("mlp_numba: compiling the %s engine for this CPU (%s)", dtype, reason)
        return False
    problem = baseline_problem()
    if problem:
        log.warning("mlp_numba: compiling the %s engine for this CPU (%s)", dtype, reason)
        return False
    log.warning(
        "mlp_numba: compiling the %s engine for %s into %s, once (%s)",
        dtype, BASELINE_CPU, folder, reason,
    )  # fmt: skip
    try:
        compile_ahead(folder, [dtype])
    except (OSError, CompileFailed) as exc:
        log.warning("mlp_numba: that compile failed; compiling in this process (%s)", exc)
        return False
    return True


def compile_ahead(folder, dtypes, native=False):
    """Compile the engine of each of ``dtypes`` into ``folder``, one process per dtype side by
    side, for the baseline CPU (or this CPU with ``native``). Returns the seconds it took;
    raises :class:`CompileFailed` when a process fails."""
    started = time.perf_counter()
    env = dict(os.environ)
    env.update({"MLP_NUMBA_CACHE_DIR": str(folder), NO_SHIPPED_VARIABLE: "1"})
    if native:
        env.pop("NUMBA_CPU_NAME", None)
        env.pop("NUMBA_CPU_FEATURES", None)
        env[_NATIVE_VARIABLE] = "1"
    else:
        env.update(baseline_environment())
    command = [sys.executable, "-m", "mlp_numba._engine.compiled_code"]
    output = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    processes = [subprocess.Popen([*command, dtype], env=env, **output) for dtype in dtypes]
    failures = []
    for dtype, process in zip(dtypes, processes, strict=True):
        output, _ = process.communicate()
        if process.returncode != 0:
            failures.append(f"{dtype}: exit {process.returncode}: {output.strip()[-2000:]}")
    if failures:
        raise CompileFailed("; ".join(failures))
    return time.perf_counter() - started


def _compile_here(dtype):
    """The child of :func:`compile_ahead`: compile (or find) the engine of ``dtype``; exit 3
    when it ran on the plain path, whose code Numba keeps in a cache of its own."""
    from . import engine_for, path

    engine_for(dtype)
    if not path().fast:
        print(f"the engine compiled on the plain path ({path().reason})")
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(_compile_here(sys.argv[1]))
