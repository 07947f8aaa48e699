"""``mlp-numba info``: what a bug report needs, and where the library keeps its files."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import numba
import numpy as np
import scipy

from .._engine import path
from .._version import __version__
from ..datasets import data_home
from ._errors import UserError

_ENVIRONMENT = (
    "OMP_WAIT_POLICY",
    "GOMP_SPINCOUNT",
    "NUMBA_NUM_THREADS",
    "NUMBA_THREADING_LAYER",
    "NUMBA_CACHE_DIR",
    "MLP_NUMBA_PLAIN_JIT",
    "MLP_NUMBA_NO_SHIPPED",
    "MLP_NUMBA_CACHE_DIR",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_THREAD_TIMEOUT",
    "MLP_NUMBA_DATA",
)


def _blas():
    try:
        import scipy.linalg.cython_blas  # noqa: F401  (the BLAS Numba's np.dot calls)
        import threadpoolctl
    except ImportError:
        try:
            config = np.show_config(mode="dicts")
        except TypeError:  # NumPy < 1.25
            config = {}
        blas = config.get("Build Dependencies", {}).get("blas", {})
        return [f"numpy: {blas.get('name', '?')} {blas.get('version', '')}".rstrip()]
    return [
        f"{Path(lib['filepath']).name}: {lib.get('internal_api')} {lib.get('version')}, "
        f"{lib.get('num_threads')} threads, {lib.get('architecture', '?')}"
        for lib in threadpoolctl.threadpool_info()
        if lib.get("user_api") == "blas"
    ]


def _data_home():
    try:
        return data_home()
    except ImportError as exc:
        return f"unknown ({exc})"


def _fork_safety(safe):
    if safe:
        return "fork-safe: yes (children made by fork use every thread)"
    return (
        "fork-safe: no (in a child made by fork the engine runs on one thread; "
        "pip install 'mlp-numba[tbb]' for a fork-safe layer)"
    )


def run_info(args):
    # Deciding the path imports the engine's compile set-up, which starts Numba's threads:
    # then the threading layer can be named.
    chosen = path()
    from .._engine import _numba_private, compiled_code, entry
    from .._engine._threads import layer_is_fork_safe
    from .._engine.engine import STAMP
    from .._engine.kernels.blas import BACKEND

    problem = compiled_code.shipped_problem(entry.run, STAMP)
    shipped = f"serves ({STAMP.split(';')[0]})" if problem is None else f"does not serve: {problem}"
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    lines = [
        f"mlp-numba {__version__}",
        f"python {platform.python_version()} ({sys.executable})",
        f"numpy {np.__version__}, numba {numba.__version__}, scipy {scipy.__version__}",
        f"platform: {platform.platform()}",
        f"CPUs: {os.cpu_count()} (usable by this process: {affinity})",
        f"numba threads: {numba.get_num_threads()} of {numba.config.NUMBA_NUM_THREADS}, "
        f"threading layer {numba.threading_layer()}",
        _fork_safety(layer_is_fork_safe()),
        f"engine path: {chosen.name} ({chosen.reason})",
        f"fast-path verdict: {_numba_private.verdict_file()}",
        f"kernels' matrix products: {BACKEND}",
        *(f"BLAS loaded: {line}" for line in _blas()),
        f"shipped engine: {compiled_code.SHIPPED_FOLDER} {shipped}",
        f"compiled-code cache (writable): {_numba_private.cache_folder()}",
        f"data home: {_data_home()}",
        *(f"{name}={os.environ[name]}" for name in _ENVIRONMENT if name in os.environ),
    ]
    print("\n".join(lines))
    return 0


def run_compile(args):
    """``mlp-numba compile``: the engine compiled into the writable cache folder now."""
    from .._engine import _numba_private, compiled_code

    dtypes = args.dtype or list(compiled_code.DTYPES)
    folder = _numba_private.cache_folder()
    target = "this CPU" if args.native else compiled_code.BASELINE_CPU
    print(f"compiling the {' and '.join(dtypes)} engine for {target} into {folder} ...")
    try:
        seconds = compiled_code.compile_ahead(folder, dtypes, native=args.native)
    except compiled_code.CompileFailed as exc:
        raise UserError(f"the compile failed: {exc}") from exc
    print(f"compiled in {seconds:.1f} s")
    return 0
