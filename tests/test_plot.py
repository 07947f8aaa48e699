"""Plots: the course's weight grid, and the PNG files the command line writes."""

from math import ceil, sqrt

import numpy as np
import pytest

from mlp_numba import TwoLayerNet
from mlp_numba.plot import weights_grid


def course_visualize_grid(Xs, ubound=255.0, padding=1):
    """The course's visualize_grid (cs231n/vis_utils.py), as the oracle."""
    (N, H, W, C) = Xs.shape
    grid_size = int(ceil(sqrt(N)))  # noqa: RUF046  (as the course wrote it)
    grid_height = H * grid_size + padding * (grid_size - 1)
    grid_width = W * grid_size + padding * (grid_size - 1)
    grid = np.zeros((grid_height, grid_width, C))
    next_idx = 0
    y0, y1 = 0, H
    for _ in range(grid_size):
        x0, x1 = 0, W
        for _ in range(grid_size):
            if next_idx < N:
                img = Xs[next_idx]
                low, high = np.min(img), np.max(img)
                grid[y0:y1, x0:x1] = ubound * (img - low) / (high - low)
                next_idx += 1
            x0 += W + padding
            x1 += W + padding
        y0 += H + padding
        y1 += H + padding
    return grid


@pytest.mark.parametrize("hidden", [1, 7, 16])
def test_weights_grid_matches_the_course(hidden):
    W1 = np.random.default_rng(hidden).standard_normal((32 * 32 * 3, hidden))
    expected = course_visualize_grid(W1.reshape(32, 32, 3, -1).transpose(3, 0, 1, 2), padding=3)
    np.testing.assert_allclose(weights_grid(W1, (32, 32, 3)), expected, rtol=0, atol=1e-12)


def test_weights_grid_grayscale_and_constant_tiles():
    W1 = np.zeros((64, 4))
    W1[:, 1] = np.arange(64)
    grid = weights_grid(W1, (8, 8), padding=1)
    assert grid.shape == (17, 17, 1)
    assert grid[:8, :8].max() == 0  # a constant tile is blank, not NaN
    assert grid[:8, 9:].max() == 255 and np.isfinite(grid).all()
    with pytest.raises(ValueError, match="does not hold images of shape"):
        weights_grid(W1, (9, 9))


def test_training_plots_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    from mlp_numba.plot import save_training_plots

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 64)), rng.integers(0, 3, 50)
    net = TwoLayerNet(64, 9, 3, std=0.1, seed=0)
    history = net.train(X, y, X, y, num_iters=20, batch_size=10, iterations_per_epoch=5)
    paths = save_training_plots(history, net, (8, 8), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "accuracy.png", "loss.png", "weights.png"]  # fmt: skip
    for path in paths.values():
        image = imread(path)
        assert image.ndim == 3 and image.shape[0] >= 300 and image.std() > 0
