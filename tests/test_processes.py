"""Training and scoring in child processes and in several threads, on each threading layer.

Each case runs in a fresh interpreter with ``NUMBA_THREADING_LAYER`` set, since Numba chooses
its layer once per process: the parent trains and scores (so its threads have run), then
children made by each start method do the same work, and their results must equal the
parent's bit for bit. Every wait has a timeout: a child that dies or hangs fails the test
instead of hanging it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from mlp_numba._engine import _threads

LAYERS = ["omp", "tbb", "workqueue"]
#: Seconds a whole scenario may take (it imports, loads the cached engine and trains a few
#: small nets in several processes).
TIMEOUT = 240


def _skip_unless_available(layer):
    if layer == "tbb" and _threads._tbb_library() is None:
        pytest.skip("the tbb package is not installed (pip install 'mlp-numba[tbb]')")


# What each process computes: a small net trained with momentum, then scored, in both dtypes.
WORK = textwrap.dedent(
    """
    import numpy as np
    from mlp_numba import TwoLayerNet

    def work(seed):
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((300, 40))
        y = rng.integers(0, 5, 300)
        out = {}
        for dtype in (np.float64, np.float32):
            net = TwoLayerNet(40, 30, 5, std=0.1, seed=seed, dtype=dtype)
            net.train(X, y, X, y, num_iters=30, batch_size=50, learning_rate=0.1,
                      optimizer="momentum", verbose=False)
            name = np.dtype(dtype).name
            out[name] = {
                "W1": net.params["W1"].tobytes().hex(),
                "loss": float(net.loss(X, y, reg=0.01)[0]),
                "classes": net.predict(X).tolist(),
                "proba": net.predict_proba(X).tobytes().hex(),
            }
        return out
    """
)


def _run(script, layer, folder, timeout=TIMEOUT):
    """Run ``script`` (after WORK) in a fresh interpreter on ``layer``; its last stdout line is
    JSON. The script is a file, which children started by ``forkserver`` import."""
    path = folder / "scenario.py"
    path.write_text(WORK + textwrap.dedent(script))
    env = {**os.environ, "NUMBA_THREADING_LAYER": layer, "PYTHONWARNINGS": "default"}
    proc = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=timeout, env=env
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


CHILDREN = """
import concurrent.futures, json, multiprocessing, os, sys, warnings
import numba

def in_os_fork(seed):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            data = json.dumps(work(seed)).encode()
            with os.fdopen(write, "wb") as f:
                f.write(data)
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    assert status == 0, status
    return json.loads(data)

if __name__ == "__main__":
    parent = [work(seed) for seed in (0, 1)]
    results = {"layer": numba.threading_layer(), "parent": parent}
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results["fork pool"] = pool.map_async(work, (0, 1)).get(timeout=120)
    fork = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=fork) as ex:
        results["fork executor"] = list(ex.map(work, (0, 1), timeout=120))
    results["os.fork"] = [in_os_fork(seed) for seed in (0, 1)]
    with multiprocessing.get_context("forkserver").Pool(2) as pool:
        results["forkserver pool"] = pool.map_async(work, (0, 1)).get(timeout=120)
    print(json.dumps(results))
"""


@pytest.mark.parametrize("layer", LAYERS)
def test_children_of_every_start_method_compute_the_parents_bits(layer, tmp_path):
    _skip_unless_available(layer)
    results, stderr = _run(CHILDREN, layer, tmp_path)
    assert results.pop("layer") == layer
    parent = results.pop("parent")
    for method, children in results.items():
        assert children == parent, method
    assert "Terminating" not in stderr
    # A forked child of GNU OpenMP runs on one thread and says so, once per child.
    warned = stderr.count("cannot start threads in a forked child")
    if _threads.layer_is_fork_safe(layer):
        assert warned == 0, stderr
    else:
        assert warned >= 2, stderr


THREADS = """
import json, threading
import numpy as np
import numba
from numba import njit, prange

@njit(parallel=True)
def users_own(x):
    total = np.zeros(x.shape[0])
    for i in prange(x.shape[0]):
        total[i] = np.sqrt(x[i]).sum()
    return total.sum()

serial = [work(seed) for seed in (0, 1)]
x = np.arange(40_000.0).reshape(200, 200)
expected = users_own(x)
results = [None, None]
errors = []

def train(i):
    try:
        results[i] = work(i)
    except BaseException as e:
        errors.append(repr(e))

threads = [threading.Thread(target=train, args=(i,)) for i in (0, 1)]
for t in threads:
    t.start()
# The user's own parallel code, between the threads' calls (not at the same moment on
# workqueue, which cannot run two parallel regions at once).
own = users_own(x) if numba.threading_layer() != "workqueue" else expected
for t in threads:
    t.join(120)
print(json.dumps({"alive": [t.is_alive() for t in threads], "errors": errors,
                  "same": results == serial, "own": own == expected}))
"""


@pytest.mark.parametrize("layer", LAYERS)
def test_two_python_threads_training_at_once_give_the_serial_bits(layer, tmp_path):
    _skip_unless_available(layer)
    results, _ = _run(THREADS, layer, tmp_path)
    assert results == {"alive": [False, False], "errors": [], "same": True, "own": True}


SEARCH = """
import json, multiprocessing
import numpy as np
from mlp_numba import TwoLayerNet

rng = np.random.default_rng(0)
X = rng.standard_normal((400, 30))
y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0).astype(int)

def trial(config):
    lr, hidden = config
    net = TwoLayerNet(30, hidden, 4, std=0.1, seed=0)
    stats = net.train(X[:300], y[:300], X[300:], y[300:], num_iters=200, batch_size=50,
                      learning_rate=lr, verbose=False)
    return stats["val_acc_history"][-1]

if __name__ == "__main__":
    grid = [(lr, h) for lr in (0.03, 0.1, 0.3) for h in (10, 30)]
    here = [trial(c) for c in grid]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        there = pool.map_async(trial, grid).get(timeout=120)
    print(json.dumps({"same": here == there, "best": max(there)}))
"""


def test_a_users_grid_search_through_a_fork_pool(tmp_path):
    results, _ = _run(SEARCH, "omp", tmp_path)
    assert results["same"] is True
    assert results["best"] > 0.8


def test_the_layer_names_its_fork_safety():
    assert _threads.layer_is_fork_safe("tbb") and _threads.layer_is_fork_safe("workqueue")


TORCH = """
import json
import numba
import numpy as np
import torch

torch.set_num_threads(2)
a = torch.randn(300, 300, dtype=torch.float64)
before = work(0)
b = (a @ a).sum().item()
after = work(0)
print(json.dumps({"same": before == after, "torch": b == (a @ a).sum().item(),
                  "layer": numba.threading_layer()}))
"""


@pytest.mark.parametrize("layer", ["omp", "tbb"])
def test_pytorch_in_the_same_process(layer, tmp_path):
    pytest.importorskip("torch", reason="PyTorch is optional: pip install torch==2.13.0")
    _skip_unless_available(layer)
    results, _ = _run(TORCH, layer, tmp_path)
    assert results == {"same": True, "torch": True, "layer": layer}
