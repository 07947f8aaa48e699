"""Same seed, same bits: whatever the number of Numba and BLAS threads, and run after run."""

import os
import subprocess
import sys

import numpy as np
import pytest

from mlp_numba import TwoLayerNet

SCRIPT = """
import hashlib, sys
import numpy as np
from mlp_numba import TwoLayerNet
import numba
dtype, activation, optimizer, D = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rng = np.random.default_rng(3)
# W1 (D x 120) and the minibatch (200 x D) are big enough for the kernels' parallel paths;
# at D = 3000 W1 is big enough for a step to cut its product along D (splits_columns).
X = rng.standard_normal((1000, D)); y = rng.integers(0, 10, 1000)
net = TwoLayerNet(D, 120, 10, std=1e-2, activation=activation, dtype=dtype, seed=11)
stats = net.train(X, y, X[:200], y[:200], learning_rate=0.01, num_iters=25, batch_size=200,
                  optimizer=optimizer)
h = hashlib.sha256()
for k in ("W1", "b1", "W2", "b2"):
    h.update(net.params[k].tobytes())
h.update(np.asarray(stats["loss_history"]).tobytes())
print(numba.get_num_threads(), h.hexdigest())
"""


def run_in_subprocess(threads, dtype, activation, optimizer="sgd", D=600):
    # Numba's and the BLAS's threads both: the kernels run their products on one BLAS thread
    # per block, so the BLAS setting must not change a bit either.
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, dtype, activation, optimizer, str(D)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    n, digest = out.stdout.split()
    assert int(n) == threads
    return digest


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    ("activation", "optimizer"), [("relu", "sgd"), ("gelu", "sgd"), ("relu", "nesterov"),
                                  ("relu", "adamw")]
)  # fmt: skip
def test_bitwise_identical_params_with_1_and_2_threads(dtype, activation, optimizer):
    one, two = (run_in_subprocess(t, dtype, activation, optimizer) for t in (1, 2))
    assert one == two


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_bitwise_identical_when_the_product_is_cut_along_d(dtype, optimizer):
    one, two = (run_in_subprocess(t, dtype, "relu", optimizer, D=3000) for t in (1, 2))
    assert one == two


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_same_seed_same_bits_and_global_state_untouched(dtype):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((80, 5)), rng.integers(0, 3, 80)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    nets = [TwoLayerNet(5, 7, 3, std=0.1, dtype=dtype, seed=42) for _ in range(2)]
    for net in nets:
        net.train(X, y, X, y, learning_rate=0.1, num_iters=30, batch_size=16)
    for k in nets[0].params:
        assert nets[0].params[k].tobytes() == nets[1].params[k].tobytes()
    assert np.array_equal(np.random.get_state()[1], before)


def test_generator_seed_is_used_as_given():
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    a = TwoLayerNet(3, 4, 2, seed=rng_a)
    b = TwoLayerNet(3, 4, 2, seed=rng_b)
    c = TwoLayerNet(3, 4, 2, seed=6)
    assert np.array_equal(a.params["W1"], b.params["W1"])
    assert not np.array_equal(a.params["W1"], c.params["W1"])


def test_global_seed_reproduces_course_initialisation():
    np.random.seed(0)
    net = TwoLayerNet(4, 10, 3, std=1e-1)
    np.random.seed(0)
    W1 = 1e-1 * np.random.randn(4, 10)
    W2 = 1e-1 * np.random.randn(10, 3)
    assert np.array_equal(net.params["W1"], W1) and np.array_equal(net.params["W2"], W2)
    assert not net.params["b1"].any() and not net.params["b2"].any()
