"""The compiled engine: what the public nets call, and the buffers they lend it.

``engine_for(dtype)`` gives the :class:`~.engine.Engine` of a dtype, compiled or loaded from
Numba's on-disk cache on first use. The layers, from the public API down: ``mlp_numba.net``
(validation, bookkeeping) -> :class:`~.engine.Engine` (bundles, BLAS threads) -> ``entry``
(compiled control flow) -> ``parallel`` (the one parallel region) -> ``kernels`` (the
numerical loops). Every use of Numba beyond its extension API is in ``_numba_private``, which
chooses the fast or the plain path. Numba itself is imported on the first call, not with this
package.
"""

from __future__ import annotations

import importlib
import sys
import threading

__all__ = ["engine_for", "path"]

_ENGINES = {}
_LOCK = threading.Lock()


def engine_for(dtype):
    """The :class:`~.engine.Engine` for ``dtype`` (float64 or float32), compiled or loaded
    once per process."""
    import numpy as np

    key = np.dtype(dtype)
    engine = _ENGINES.get(key)
    if engine is None:
        with _LOCK:
            engine = _ENGINES.get(key)
            if engine is None:
                engine = _ENGINES[key] = _build(key)
    return engine


def path():
    """The path the engine runs on in this process (``_numba_private.Path``): deciding it
    imports Numba and, the first time for these versions, probes the fast path."""
    from . import _numba_private

    return _numba_private.path()


def _build(dtype):
    from . import _numba_private
    from .engine import Engine

    try:
        return Engine(dtype)
    except Exception as exc:
        if not _numba_private.path().fast:
            raise
        # The probe passed but the engine itself failed on the fast path: never a crash for
        # that; this process (and later ones of these versions) compile on the plain path.
        _numba_private.fall_back(
            f"compiling the engine on the fast path failed: {type(exc).__name__}: {exc}"
        )
    return _fresh_engine_module().Engine(dtype)


def _fresh_engine_module():
    """The engine's modules imported anew, so that their kernels are decorated for the plain
    path (the decorators read the path when their module is imported)."""
    keep = {__name__, f"{__name__}._numba_private", f"{__name__}._threads"}
    for name in [m for m in sys.modules if m.startswith(f"{__name__}.") and m not in keep]:
        del sys.modules[name]
    return importlib.import_module(f"{__name__}.engine")
