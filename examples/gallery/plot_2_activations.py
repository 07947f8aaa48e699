"""
Compare activations
===================

The course reports compare ReLU with its relatives on the same data: here on digits, each
activation trained with the same seed and hyperparameters. The engine is compiled once per
dtype for every activation, so the second and later ones start at once.
"""

import time

import matplotlib.pyplot as plt

from mlp_numba import TwoLayerNet
from mlp_numba.datasets import prepare

data = prepare("digits", seed=0)
fig, ax = plt.subplots(figsize=(7, 4))
for activation in ("relu", "leaky_relu", "swish", "selu", "tanh", "gelu"):
    net = TwoLayerNet(
        data.num_features, 100, data.num_classes, std=1e-2, seed=0, activation=activation
    )
    started = time.perf_counter()
    stats = net.train(
        data.X_train,
        data.y_train,
        data.X_val,
        data.y_val,
        num_iters=1000,
        batch_size=100,
        learning_rate=0.5,
        reg=1e-4,
        iterations_per_epoch=13,
    )
    seconds = time.perf_counter() - started
    test = (net.predict(data.X_test) == data.y_test).mean()
    print(f"{activation:>10}: test accuracy {test:.4f}, {seconds:.2f} s")
    ax.plot(stats["val_acc_history"], label=activation)
ax.set_xlabel("epoch")
ax.set_ylabel("validation accuracy")
ax.legend()
fig.tight_layout()
