"""asv suites: the time to the first result (start-up and compiling, in fresh processes),
forward, loss and gradients, a training step (per activation and per optimizer), a training
epoch and predict.

Each ``setup`` of the steady-state suites builds the data and warms the JIT (the compiled code
is cached on disk, so only the first run compiles). ``track_ratio_to_gemm`` reports a step's
time over the time of its two big products (X@W1 and X^T@dZ) measured in the same process: the
step's distance from its floor. ``StartUp`` times what a user waits for before the first result,
so that a change that slows compiling shows across commits like one that slows a step.
"""

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from mlp_numba import MLP, TwoLayerNet

SHAPES = {"cifar10": (3072, 100), "mnist": (784, 100), "digits": (64, 100)}
#: Deeper nets (``MLP``): input width and hidden widths.
DEEP_SHAPES = {"mnist-512-256": (784, (512, 256)), "cifar10-1024-512": (3072, (1024, 512))}
B, C = 200, 10


def _data(D, dtype, n=4000, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, D)).astype(dtype), rng.integers(0, C, n)


def _median(fn, repeat=15):
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


class _Net:
    params = (["float64", "float32"], ["relu", "tanh", "gelu"], list(SHAPES))
    param_names = ["dtype", "activation", "shape"]

    def setup(self, dtype, activation, shape):
        D, H = SHAPES[shape]
        self.X, self.y = _data(D, dtype)
        self.Xb, self.yb = self.X[:B], self.y[:B]
        self.net = TwoLayerNet(D, H, C, std=1e-3, activation=activation, dtype=dtype, seed=0)
        self.train_kw = dict(learning_rate=1e-4, learning_rate_decay=1.0, reg=1e-5, batch_size=B)
        # Warm the JIT for every entry point used below.
        self.net.loss(self.Xb)
        self.net.loss(self.Xb, self.yb, reg=1e-5)
        self.net.train(self.X, self.y, self.Xb, self.yb, num_iters=2, **self.train_kw)


class Forward(_Net):
    def time_scores(self, dtype, activation, shape):
        self.net.loss(self.Xb)


class LossAndGradients(_Net):
    def time_loss_and_grads(self, dtype, activation, shape):
        self.net.loss(self.Xb, self.yb, reg=1e-5)


class TrainStep(_Net):
    """One SGD step, timed as 20 steps of ``train`` (no epoch bookkeeping inside)."""

    def time_20_steps(self, dtype, activation, shape):
        self.net.train(self.X, self.y, self.Xb, self.yb, num_iters=20, **self.train_kw)

    def peakmem_20_steps(self, dtype, activation, shape):
        self.net.train(self.X, self.y, self.Xb, self.yb, num_iters=20, **self.train_kw)

    def track_ratio_to_gemm(self, dtype, activation, shape):
        W1 = self.net.params["W1"]
        dZ = np.ones((B, W1.shape[1]), W1.dtype)
        floor = _median(lambda: (self.Xb @ W1, self.Xb.T @ dZ), 30)
        step = (
            _median(
                lambda: self.net.train(
                    self.X, self.y, self.Xb, self.yb, num_iters=20, **self.train_kw
                ),
                7,
            )
            / 20
        )
        return step / floor

    track_ratio_to_gemm.unit = "step / GEMMs"


def _deep_floor(X, hidden, dtype):
    """Median seconds of every product of a step of ``MLP`` (each layer's forward product, its
    weight gradient and, but for the first layer, the gradient at its input), NumPy."""
    rng = np.random.default_rng(1)
    widths = (X.shape[1], *hidden, C)
    Ws = [rng.standard_normal((a, b)).astype(dtype) for a, b in itertools.pairwise(widths)]
    As = [np.ascontiguousarray(X[:B])] + [np.ones((B, w), dtype) for w in widths[1:]]

    def step():
        for k, W in enumerate(Ws):
            As[k] @ W
        for k in range(len(Ws) - 1, -1, -1):
            As[k].T @ As[k + 1]
            if k:
                As[k + 1] @ Ws[k].T

    return _median(step, 30)


class DeepTrainStep:
    """An ``MLP`` step at the deeper shapes, timed as 20 steps of ``train``; its ratio to all of
    the step's products; the peak memory of training (no allocation per step)."""

    params = (["float64", "float32"], ["sgd", "adam"], list(DEEP_SHAPES))
    param_names = ["dtype", "optimizer", "shape"]
    timeout = 300

    def setup(self, dtype, optimizer, shape):
        D, hidden = DEEP_SHAPES[shape]
        self.hidden, self.dtype = hidden, dtype
        self.X, self.y = _data(D, dtype)
        self.Xb, self.yb = self.X[:B], self.y[:B]
        self.net = MLP(D, hidden, C, dtype=dtype, seed=0)
        self.train_kw = dict(learning_rate=1e-4, learning_rate_decay=1.0, reg=1e-5, batch_size=B,
                             optimizer=optimizer)  # fmt: skip
        self.net.train(self.X, self.y, self.Xb, self.yb, num_iters=2, **self.train_kw)

    def _steps(self, n=20):
        self.net.train(self.X, self.y, self.Xb, self.yb, num_iters=n, **self.train_kw)

    def time_20_steps(self, dtype, optimizer, shape):
        self._steps()

    def peakmem_200_steps(self, dtype, optimizer, shape):
        self._steps(200)

    def track_ratio_to_gemm(self, dtype, optimizer, shape):
        floor = _deep_floor(self.X, self.hidden, self.dtype)
        return _median(self._steps, 7) / 20 / floor

    track_ratio_to_gemm.unit = "step / GEMMs"


class TrainStepOptimizer(_Net):
    """One step of each optimizer (ReLU), timed as 20 steps, and its distance from the floor."""

    # Literal names, not imported: asv runs this file against older commits too.
    params = (["float64", "float32"], ["sgd", "momentum", "nesterov", "adam", "adamw"],
              ["cifar10", "mnist"])  # fmt: skip
    param_names = ["dtype", "optimizer", "shape"]

    def setup(self, dtype, optimizer, shape):
        super().setup(dtype, "relu", shape)
        self.train_kw["optimizer"] = optimizer
        try:
            self.net.train(self.X, self.y, self.Xb, self.yb, num_iters=2, **self.train_kw)
        except TypeError as exc:  # a commit from before the optimizers: skipped by asv
            raise NotImplementedError(str(exc)) from exc

    def time_20_steps(self, dtype, optimizer, shape):
        self.net.train(self.X, self.y, self.Xb, self.yb, num_iters=20, **self.train_kw)

    def track_ratio_to_gemm(self, dtype, optimizer, shape):
        return TrainStep.track_ratio_to_gemm(self, dtype, "relu", shape)

    track_ratio_to_gemm.unit = "step / GEMMs"


class TrainEpoch(_Net):
    """A full epoch of the course's ``train``: 20 iterations over 4,000 rows."""

    params = (["float64", "float32"], ["relu"], list(SHAPES))

    def time_epoch(self, dtype, activation, shape):
        self.net.train(
            self.X, self.y, self.Xb, self.yb, num_iters=len(self.X) // B, **self.train_kw
        )


class Predict:
    params = (["float64", "float32"], list(SHAPES))
    param_names = ["dtype", "shape"]

    def setup(self, dtype, shape):
        D, H = SHAPES[shape]
        self.X, _ = _data(D, dtype, n=10_000)
        self.net = TwoLayerNet(D, H, C, std=1e-3, dtype=dtype, seed=0)
        self.net.predict(self.X[:10])

    def time_predict_10k(self, dtype, shape):
        self.net.predict(self.X)

    def peakmem_predict_10k(self, dtype, shape):
        self.net.predict(self.X)

    def track_ratio_to_gemm(self, dtype, shape):
        W1 = self.net.params["W1"]
        return _median(lambda: self.net.predict(self.X)) / _median(lambda: self.X @ W1)

    track_ratio_to_gemm.unit = "predict / GEMM"


# A fresh process's first result: import, a 784-100-10 net, one train call that scores too.
_FIRST_TRAIN = """
import numpy as np
import mlp_numba
rng = np.random.default_rng(0)
X, y = rng.standard_normal((2000, 784)), rng.integers(0, 10, 2000)
net = mlp_numba.TwoLayerNet(784, 100, 10, activation="{activation}", dtype="{dtype}", seed=0)
net.train(X, y, X[:500], y[:500], num_iters=20)
"""
_FIRST_DEEP_TRAIN = _FIRST_TRAIN.replace(
    "mlp_numba.TwoLayerNet(784, 100, 10,", "mlp_numba.MLP(784, (100, 50), 10,"
).replace(', activation="{activation}"', "")
# A start that compiles from nothing, or loads what an earlier one compiled: the shipped code
# ignored. A start from the shipped code: an empty cache, nothing ignored. asv times a
# ``timeraw_`` statement with ``timeit``, which turns Python's garbage collector off; a user's
# process has it on, so the setup turns it back on.
_USE_CACHE = (
    "import gc, os; gc.enable(); os.environ['NUMBA_CACHE_DIR'] = {folder!r}; "
    "os.environ['MLP_NUMBA_NO_SHIPPED'] = '1'"
)
_SHIPPED = (
    "import gc, os; gc.enable(); os.environ['NUMBA_CACHE_DIR'] = {folder!r}; "
    "os.environ.pop('MLP_NUMBA_NO_SHIPPED', None)"
)


class StartUp:
    """Seconds from a fresh interpreter to the first ``train`` result (asv's ``timeraw_``: the
    statement runs in a new process, its imports included), with an empty compiled-code cache
    (``cold``: everything compiles, the shipped code ignored), one filled by an earlier process
    (``warm``: the compiled code loads), or the code the wheel ships (``shipped``)."""

    params = ["float64", "float32"]
    param_names = ["dtype"]
    repeat = (1, 3, 120.0)
    timeout = 600

    def setup(self, dtype):
        self.folder = tempfile.mkdtemp(prefix="mlp-numba-asv-")
        self.warm = os.path.join(self.folder, "warm")
        for first in (self._first(dtype, "relu"), _FIRST_DEEP_TRAIN.format(dtype=dtype)):
            code = _USE_CACHE.format(folder=self.warm) + "\n" + first
            subprocess.run([sys.executable, "-c", code], check=True, timeout=self.timeout)

    def teardown(self, dtype):
        shutil.rmtree(self.folder, ignore_errors=True)

    @staticmethod
    def _first(dtype, activation):
        return _FIRST_TRAIN.format(dtype=dtype, activation=activation)

    def _empty_cache(self):
        return _USE_CACHE.format(folder=tempfile.mkdtemp(dir=self.folder))

    def timeraw_cold_first_train(self, dtype):
        return self._first(dtype, "relu"), self._empty_cache()

    def timeraw_shipped_first_train(self, dtype):
        """From the compiled code the wheel ships (when the build shipped any: else as cold)."""
        folder = tempfile.mkdtemp(dir=self.folder)
        return self._first(dtype, "relu"), _SHIPPED.format(folder=folder)

    def timeraw_warm_first_train(self, dtype):
        return self._first(dtype, "relu"), _USE_CACHE.format(folder=self.warm)

    def timeraw_warm_next_activation(self, dtype):
        """Another activation after relu's compile: in one engine, nothing compiles."""
        return self._first(dtype, "tanh"), _USE_CACHE.format(folder=self.warm)

    def timeraw_cold_first_deep_train(self, dtype):
        """The first ``MLP.train``: its engine is another compile (once per dtype, any depth)."""
        return _FIRST_DEEP_TRAIN.format(dtype=dtype), self._empty_cache()

    def timeraw_warm_first_deep_train(self, dtype):
        return _FIRST_DEEP_TRAIN.format(dtype=dtype), _USE_CACHE.format(folder=self.warm)

    def timeraw_import(self, dtype):
        return "import mlp_numba; mlp_numba.TwoLayerNet", _USE_CACHE.format(folder=self.warm)
