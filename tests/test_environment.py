"""What importing mlp_numba does to the process environment, and nothing more."""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

CODE = (
    "import os, mlp_numba; mlp_numba.TwoLayerNet; "
    "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))"
)
OPENMP = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


@pytest.mark.parametrize(
    "given,expected",
    [
        ({}, "None None"),
        ({"GOMP_SPINCOUNT": "5"}, "None 5"),
        ({"OMP_WAIT_POLICY": "PASSIVE"}, "PASSIVE None"),
        ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE None"),
    ],
)
def test_import_leaves_the_openmp_environment_as_it_was(given, expected):
    """GOMP_SPINCOUNT is set only while Numba's OpenMP runtime loads (and not if the user set
    either variable), so another library's OpenMP runtime loaded later keeps its defaults."""
    env = {k: v for k, v in os.environ.items() if k not in OPENMP}
    out = subprocess.run(
        [sys.executable, "-c", CODE],
        env={**env, **given},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert out.stdout.strip() == expected


def _blas_threads():
    from mlp_numba._engine.kernels import blas as _blas

    if _blas._functions is None:
        pytest.skip(f"the BLAS found ({_blas.BACKEND}) has no thread count to check")
    return _blas._functions


def test_blas_threads_are_one_inside_and_put_back_after():
    set_threads, get_threads = _blas_threads()
    from mlp_numba import TwoLayerNet
    from mlp_numba._engine.kernels import blas as _blas

    before = get_threads()
    with _blas.one_blas_thread:
        assert get_threads() == 1
        with _blas.one_blas_thread:
            assert get_threads() == 1
        assert get_threads() == 1
    assert get_threads() == before
    set_threads(2)
    try:
        rng = np.random.default_rng(0)
        X, y = rng.standard_normal((300, 40)), rng.integers(0, 3, 300)
        net = TwoLayerNet(40, 30, 3, seed=0)
        net.train(X, y, X, y, num_iters=20, batch_size=50)
        net.predict(X)
        net.loss(X, y)
        assert get_threads() == 2
    finally:
        set_threads(before)


def test_threads_training_side_by_side_put_the_blas_threads_back():
    """The count is process-wide: the first one in sets 1, the last one out restores it."""
    _, get_threads = _blas_threads()
    from mlp_numba import TwoLayerNet

    before = get_threads()
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((400, 60)), rng.integers(0, 4, 400)

    def train(seed):
        net = TwoLayerNet(60, 30, 4, seed=seed)
        net.train(X, y, X, y, num_iters=60, batch_size=40)
        return net.params["W1"]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(train, range(8)))
    assert get_threads() == before
    alone = train(3)
    np.testing.assert_array_equal(results[3], alone)
