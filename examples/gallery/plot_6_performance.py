"""
Performance: a step against its floor
=====================================

A training step of the two-layer net is dominated by two large matrix products (X @ W1 and
X.T @ dZ). ``bench/compare.py`` times a whole step against those two products done by NumPy in
the same process, and against the NumPy reference, PyTorch and scikit-learn; a ratio near 1
means the step costs little beyond its floor. This example does the same measurement, smaller.

Read ratios taken within one run, not absolute times: machines and their load differ. To
follow performance across commits, use the airspeed velocity suite in ``bench/``::

    pip install -e '.[bench]'
    asv run v0.1.0..main         # every commit of the range, each in its own environment
    asv compare v0.1.0 main      # the changes between two commits
    asv publish && asv preview   # the HTML report with a graph per benchmark

The asv suite also holds ``timeraw_`` benchmarks: the time from a fresh process to the first
result, with an empty and with a filled compiled-code cache.
"""

import time

import matplotlib.pyplot as plt
import numpy as np

from mlp_numba import TwoLayerNet, reference

B, C, ITERS = 200, 10, 100


def measure(D, H, rounds=5):
    """Median ms of the step's two products (NumPy), of mlp_numba's step and of the
    reference's, timed in turn in ``rounds`` rounds."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((5000, D)), rng.integers(0, C, 5000)
    W1, dZ = rng.standard_normal((D, H)), rng.standard_normal((B, H))
    Xb = X[:B]
    nets = {cls: cls(D, H, C, std=1e-3, seed=0) for cls in (TwoLayerNet, reference.TwoLayerNet)}

    def steps(net):
        net.train(X, y, X[:B], y[:B], num_iters=ITERS, batch_size=B, learning_rate=1e-4)

    timers = {
        "floor": (lambda: (Xb @ W1, Xb.T @ dZ), 1),
        "mlp_numba": (lambda: steps(nets[TwoLayerNet]), ITERS),
        "reference": (lambda: steps(nets[reference.TwoLayerNet]), ITERS),
    }
    samples = {k: [] for k in timers}
    for _ in range(rounds):
        for key, (fn, per) in timers.items():
            started = time.perf_counter()
            fn()
            samples[key].append((time.perf_counter() - started) / per * 1e3)
    return {k: float(np.median(v)) for k, v in samples.items()}


rows = []
for name, D, H in (("digits", 64, 100), ("MNIST", 784, 100)):
    medians = measure(D, H)
    rows.append((name, medians))
    floor, ours, ref = medians["floor"], medians["mlp_numba"], medians["reference"]
    print(f"{name}: floor {floor:.3f} ms, mlp_numba {ours:.3f} ms ({ours / floor:.2f}x the floor)")
    print(f"{' ' * len(name)}  reference {ref:.3f} ms ({ref / ours:.2f}x mlp_numba)")

fig, ax = plt.subplots(figsize=(6, 3.5))
width = 0.25
for i, key in enumerate(("floor", "mlp_numba", "reference")):
    ax.bar(np.arange(len(rows)) + (i - 1) * width, [m[key] for _, m in rows], width, label=key)
ax.set_xticks(range(len(rows)), [name for name, _ in rows])
ax.set_ylabel("ms per step (median)")
ax.legend()
fig.tight_layout()
