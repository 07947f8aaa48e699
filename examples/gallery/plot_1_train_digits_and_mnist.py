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

# %%
# Digits: scikit-learn's 8x8 images, no download.
digits = prepare("digits", seed=0)
net = TwoLayerNet(digits.num_features, 100, digits.num_classes, std=1e-2, seed=0)
stats = net.train(
    digits.X_train,
    digits.y_train,
    digits.X_val,
    digits.y_val,
    num_iters=1000,
    batch_size=100,
    learning_rate=0.5,
    reg=1e-4,
    iterations_per_epoch=13,
)
print(f"digits test accuracy: {(net.predict(digits.X_test) == digits.y_test).mean():.4f}")

fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
plot_loss_history(stats, ax=axes[0])
plot_accuracy_history(stats, ax=axes[1])
show_net_weights(net, image_shape=(8, 8), ax=axes[2])
fig.tight_layout()

# %%
# MNIST: 60,000 28x28 images, the course's hyperparameters scaled to it.
MNIST_DIR = os.environ.get("MNIST_DIR", "")
if not os.path.isdir(MNIST_DIR):
    print("MNIST not found: set MNIST_DIR to the folder of its IDX files")
else:
    mnist = prepare("mnist", os.environ["MNIST_DIR"], seed=0)
    net = TwoLayerNet(mnist.num_features, 200, mnist.num_classes, std=1e-2, seed=0)
    stats = net.train(
        mnist.X_train,
        mnist.y_train,
        mnist.X_val,
        mnist.y_val,
        num_iters=3000,
        batch_size=200,
        learning_rate=0.5,
        learning_rate_decay=0.95,
        reg=1e-4,
    )
    print(f"MNIST test accuracy: {(net.predict(mnist.X_test) == mnist.y_test).mean():.4f}")

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    plot_loss_history(stats, ax=axes[0])
    plot_accuracy_history(stats, ax=axes[1])
    show_net_weights(net, image_shape=(28, 28), ax=axes[2])
    fig.tight_layout()
