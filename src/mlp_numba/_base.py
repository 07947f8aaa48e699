"""What the compiled net and the reference share: construction and the checks of ``train``.

Pure Python and NumPy, so that the reference stays independent of the compiled engine.
"""

from __future__ import annotations

import numpy as np

from . import _validation as v
from ._activation_spec import resolve_activation


class NetBase:
    """Validates the constructor's arguments and draws the course's initial params."""

    def __init__(
        self,
        input_size,
        hidden_size,
        output_size,
        std=1e-4,
        *,
        activation="relu",
        activation_params=None,
        dtype=np.float64,
        seed=None,
    ):
        self.sizes = v.check_sizes(input_size, hidden_size, output_size)
        self.input_size, self.hidden_size, self.output_size = self.sizes
        std = v.check_float("std", std, minimum=0.0)
        self.dtype = v.check_dtype(dtype)
        self.activation, self.activation_params = resolve_activation(activation, activation_params)
        self._rng = v.check_seed(seed)
        self.params = v.init_params(self.sizes, std, self.dtype, self._rng)

    def _check_train_data(self, X, y, X_val, y_val):
        """The training and validation arrays, checked and converted to the net's dtype."""
        X = v.check_features("X", X, self.input_size, self.dtype)
        y = v.check_labels("y", y, len(X), self.output_size)
        X_val = v.check_features("X_val", X_val, self.input_size, self.dtype)
        y_val = v.check_labels("y_val", y_val, len(X_val), self.output_size, "X_val")
        return X, y, X_val, y_val

    def _draw_batches(self, num_train, n_iters, batch_size):
        """Minibatch indices for n_iters iterations, one row each.

        One draw of shape (n_iters, batch_size) gives the same numbers as n_iters draws of
        batch_size, for ``np.random.choice`` on the global state as for ``Generator.integers``,
        so the course's random stream is followed exactly (a test checks it).
        """
        if self._rng is None:
            return np.random.choice(num_train, (n_iters, batch_size))
        return self._rng.integers(0, num_train, size=(n_iters, batch_size))
