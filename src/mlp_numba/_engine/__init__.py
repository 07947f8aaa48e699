"""The compiled engine: what the public nets call, and the buffers they lend it.

``engine_for(dtype)`` gives the :class:`~.engine.Engine` of a dtype, compiled or loaded from
Numba's on-disk cache on first use. The layers, from the public API down: ``mlp_numba.net``
(validation, bookkeeping) -> :class:`~.engine.Engine` (bundles, BLAS threads) -> ``entry``
(compiled control flow) -> ``parallel`` (the one parallel region) -> ``kernels`` (the
numerical loops). Numba itself is imported on the first call, not with this package.
"""

from __future__ import annotations

import threading

__all__ = ["engine_for"]

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
                from .engine import Engine

                engine = _ENGINES[key] = Engine(key)
    return engine
