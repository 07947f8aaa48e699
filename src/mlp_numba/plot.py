"""Pictures of training, as the course's notebook draws them: loss, accuracy, first-layer weights.

Needs matplotlib (``pip install 'mlp-numba[plot]'``). The ``plot_*`` functions draw on a given
Axes, or on the current pyplot Axes in a notebook; :func:`save_training_plots` writes PNG files
through matplotlib's object API, so it never touches pyplot's global state or backend.
:func:`weights_grid` is plain NumPy.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ._atomic import atomic_write


def _matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError("plots need matplotlib: pip install 'mlp-numba[plot]'") from exc


def _axes(ax):
    if ax is not None:
        return ax
    _matplotlib()
    import matplotlib.pyplot as plt

    return plt.gca()


def weights_grid(W1, image_shape, padding=3, ubound=255.0):
    """Tile each hidden unit's weights, shaped as an input image, into one grid image.

    The course's ``visualize_grid`` applied as its ``show_net_weights`` does: column h of W1 is
    reshaped to ``image_shape``, rescaled to [0, ubound] on its own, and placed in a square grid
    with ``padding`` blank pixels between tiles.

    Parameters
    ----------
    W1 : ndarray, shape (D, H)
    image_shape : tuple
        (height, width) or (height, width, channels), with a product of D.
    padding : int, default 3
    ubound : float, default 255.0

    Returns
    -------
    ndarray, shape (rows, cols, channels)

    Examples
    --------
    >>> import numpy as np
    >>> weights_grid(np.random.default_rng(0).standard_normal((12, 5)), (2, 2, 3)).shape
    (13, 13, 3)
    """
    W1 = np.asarray(W1, dtype=np.float64)
    shape = tuple(int(n) for n in image_shape)
    if len(shape) == 2:
        shape += (1,)
    if W1.ndim != 2 or math.prod(shape) != W1.shape[0]:
        raise ValueError(
            f"W1 of shape {W1.shape} does not hold images of shape {tuple(image_shape)}"
        )
    tiles = W1.reshape(*shape, -1).transpose(3, 0, 1, 2)
    count, (h, w, c) = len(tiles), shape
    size = math.ceil(math.sqrt(count))
    grid = np.zeros((h * size + padding * (size - 1), w * size + padding * (size - 1), c))
    for index, tile in enumerate(tiles):
        y0, x0 = (index // size) * (h + padding), (index % size) * (w + padding)
        low, high = tile.min(), tile.max()
        scaled = ubound * (tile - low) / (high - low) if high > low else np.zeros_like(tile)
        grid[y0 : y0 + h, x0 : x0 + w] = scaled
    return grid


def plot_loss_history(history, ax=None):
    """The loss of every iteration (``history["loss_history"]``); returns the Axes."""
    ax = _axes(ax)
    ax.plot(np.asarray(history["loss_history"], dtype=np.float64), linewidth=0.8)
    ax.set(title="Loss history", xlabel="Iteration", ylabel="Loss")
    return ax


def plot_accuracy_history(history, ax=None):
    """Training-minibatch and validation accuracy at each epoch; returns the Axes."""
    ax = _axes(ax)
    ax.plot(history["train_acc_history"], label="train", marker=".")
    ax.plot(history["val_acc_history"], label="val", marker=".")
    ax.set(title="Classification accuracy history", xlabel="Epoch",
           ylabel="Classification accuracy")  # fmt: skip
    ax.legend()
    return ax


def show_net_weights(net, image_shape=(32, 32, 3), ax=None, padding=3):
    """Draw the first-layer weights as an image grid (the course's ``show_net_weights``).

    Examples
    --------
    >>> from mlp_numba import TwoLayerNet
    >>> from mlp_numba.plot import show_net_weights
    >>> show_net_weights(TwoLayerNet(3072, 10, 10, seed=0))  # doctest: +SKIP
    """
    ax = _axes(ax)
    grid = weights_grid(net.params["W1"], image_shape, padding=padding).astype(np.uint8)
    if grid.shape[2] == 1:
        ax.imshow(grid[:, :, 0], cmap="gray")
    else:
        ax.imshow(grid)
    ax.set_axis_off()
    return ax


def save_training_plots(history, net, image_shape, directory):
    """Write ``loss.png``, ``accuracy.png`` and ``weights.png`` into ``directory``.

    Returns
    -------
    dict of str to pathlib.Path
    """
    _matplotlib()
    from matplotlib.figure import Figure

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    drawings = {
        "loss": lambda ax: plot_loss_history(history, ax),
        "accuracy": lambda ax: plot_accuracy_history(history, ax),
        "weights": lambda ax: show_net_weights(net, image_shape, ax),
    }
    written = {}
    for name, draw in drawings.items():
        fig = Figure(figsize=(6, 6) if name == "weights" else (7, 4), layout="tight")
        draw(fig.add_subplot())
        path = directory / f"{name}.png"
        with atomic_write(path) as f:
            fig.savefig(f, format="png", dpi=100)
        written[name] = path
    return written
