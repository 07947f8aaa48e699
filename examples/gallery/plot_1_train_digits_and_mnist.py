"""
Train the course's net on digits and on MNIST
=============================================

The CS231n two-layer net, trained as the course's notebook does: plain SGD with step decay,
then the loss and accuracy curves and the first layer's weights as images. MNIST is read from
``MNIST_DIR``, an environment variable naming the folder of its four IDX files (without it,
``prepare("mnist", download=True)`` fetches them into the data folder).
"""

import os

import matplotlib.pyplot as plt

from mlp_numba import TwoLayerNet
from mlp_numba.datasets import prepare
from mlp_numba.plot import plot_accuracy_history, plot_loss_history, show_net_weights


def train_and_show(data, hidden_size, image_shape, **settings):
    """Train the course's net on ``data``, print its test accuracy, and draw its loss, its
    accuracies and its first layer's weights."""
    net = TwoLayerNet(data.num_features, hidden_size, data.num_classes, std=1e-2, seed=0)
    stats = net.train(data.X_train, data.y_train, data.X_val, data.y_val, **settings)
    print(f"{data.name} test accuracy: {(net.predict(data.X_test) == data.y_test).mean():.4f}")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    plot_loss_history(stats, ax=axes[0])
    plot_accuracy_history(stats, ax=axes[1])
    show_net_weights(net, image_shape=image_shape, ax=axes[2])
    fig.tight_layout()


# %%
# Digits: scikit-learn's 8x8 images, no download.
digits = prepare("digits", seed=0)
train_and_show(
    digits,
    100,
    (8, 8),
    num_iters=1000,
    batch_size=100,
    learning_rate=0.5,
    reg=1e-4,
    iterations_per_epoch=13,
)

# %%
# MNIST: 60,000 28x28 images, the course's hyperparameters scaled to it.
MNIST_DIR = os.environ.get("MNIST_DIR", "")
if not os.path.isdir(MNIST_DIR):
    print("MNIST not found: set MNIST_DIR to the folder of its IDX files")
else:
    mnist = prepare("mnist", MNIST_DIR, seed=0)
    train_and_show(
        mnist,
        200,
        (28, 28),
        num_iters=3000,
        batch_size=200,
        learning_rate=0.5,
        learning_rate_decay=0.95,
        reg=1e-4,
    )
