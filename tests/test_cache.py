"""The on-disk cache of compiled code: reused by later processes, and never a crash."""

import os
import subprocess
import sys

import pytest

TRAIN = """
import numpy as np
from mlp_numba import TwoLayerNet
rng = np.random.default_rng(0)
X, y = rng.standard_normal((80, 5)), rng.integers(0, 3, 80)
net = TwoLayerNet(5, 7, 3, std=0.1, seed=42)
print(repr(net.train(X, y, X, y, learning_rate=0.1, num_iters=30, batch_size=16)
           ["loss_history"][-1]))
"""

SCORES = """
import numpy as np
from mlp_numba import TwoLayerNet
from mlp_numba._engine import engine_for
net = TwoLayerNet(4, 5, 3, std=0.1, seed=1)
print(repr(net.loss(np.linspace(-1, 1, 24).reshape(6, 4))[0, 0]),
      sum(engine_for(np.float64)._run.stats.cache_hits.values()))
"""


LOADED = """
import sys
import numba
import numpy as np
from mlp_numba import TwoLayerNet
from mlp_numba._engine import engine_for
rng = np.random.default_rng(0)
X, y = rng.standard_normal((80, 5)), rng.integers(0, 3, 80)
TwoLayerNet(5, 7, 3, std=0.1, seed=42).train(X, y, X, y, num_iters=3, batch_size=16)
hits = sum(engine_for(np.float64)._run.stats.cache_hits.values())
heavy = [m for m in ("numba.np.arraymath", "scipy.linalg") if m in sys.modules]
user = numba.njit(lambda a: a.max() + np.sum(a))  # a compile after a load refreshes Numba
print(hits, ",".join(heavy) or "-", user(np.arange(4.0)))
"""


def run(code, cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    env.pop("MLP_NUMBA_CACHE_DIR", None)  # it would win over NUMBA_CACHE_DIR
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, f"exit {out.returncode}: {out.stderr[-2000:]}"
    return out.stdout.split()


@pytest.mark.slow
def test_cached_entry_points_load_in_a_new_process(tmp_path):
    # Regression: when the kernels were cached too, a process that compiled an entry point
    # while loading its kernels from a cache written by another process saved an entry that
    # segfaulted in the next process that loaded it. Now the one entry point that training
    # compiled also serves scoring: later processes load it and compile nothing.
    (train_loss,) = run(TRAIN, tmp_path)
    first, hits_first = run(SCORES, tmp_path)
    second, hits_second = run(SCORES, tmp_path)
    assert hits_first == hits_second == "1"
    assert first == second
    assert run(TRAIN, tmp_path) == [train_loss]
    # Loading the entry point imports the module of each environment cached with it and, by
    # Numba's default, every typing and lowering module Numba has (SciPy's linalg among
    # them): most of a warm start's time. The engine caches its entry point's environment
    # alone and loads without that refresh; a compile afterwards still works.
    assert run(LOADED, tmp_path) == ["1", "-", "9.0"]
