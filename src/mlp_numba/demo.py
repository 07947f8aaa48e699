"""A short demo: train on scikit-learn's bundled 8x8 digits (no download) and report accuracy.

Run it with ``python -m mlp_numba``; it needs the ``demo`` extra (scikit-learn).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from .net import TwoLayerNet


def load_digits_split(seed=0):
    """The 1,797 digits, shuffled by ``seed`` and split 1,297 / 250 / 250, mean-centred."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - depends on the environment
        sys.exit("the demo needs scikit-learn: pip install 'mlp-numba[demo]'")
    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.target))
    X, y = digits.data[order], digits.target[order]
    X_train, X_val, X_test = X[:1297], X[1297:1547], X[1547:]
    mean = X_train.mean(axis=0)
    return (X_train - mean, y[:1297], X_val - mean, y[1297:1547], X_test - mean, y[1547:])


def main(seed=0):
    """Train a 64-100-10 ReLU net for 1000 iterations; print its accuracy and timings."""
    X_train, y_train, X_val, y_val, X_test, y_test = load_digits_split(seed)
    net = TwoLayerNet(64, 100, 10, std=1e-2, seed=seed)
    start = time.perf_counter()
    net.train(
        X_train, y_train, X_val, y_val, learning_rate=0.05, num_iters=10, batch_size=200
    )  # compiles the kernels (cached on disk after the first run)
    warm = time.perf_counter() - start
    net = TwoLayerNet(64, 100, 10, std=1e-2, seed=seed)
    start = time.perf_counter()
    stats = net.train(
        X_train,
        y_train,
        X_val,
        y_val,
        learning_rate=0.05,
        learning_rate_decay=0.95,
        reg=1e-4,
        num_iters=1000,
        batch_size=200,
        verbose=True,
    )
    seconds = time.perf_counter() - start
    # Not val_acc_history[-1]: with 6.485 iterations an epoch, the course's float test
    # `it % iterations_per_epoch == 0` only holds at it = 0.
    val_acc = (net.predict(X_val) == y_val).mean()
    test_acc = (net.predict(X_test) == y_test).mean()
    print(f"first call (compile or cache load): {warm:.2f} s")
    print(
        f"trained 1000 iterations in {seconds:.2f} s; final loss "
        f"{stats['loss_history'][-1]:.4f}, validation accuracy {val_acc:.4f}"
    )
    print(f"test accuracy: {test_acc:.4f}")
    return test_acc


if __name__ == "__main__":  # pragma: no cover
    main()
