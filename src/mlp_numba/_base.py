"""What the compiled net and the reference share: construction and the checks of ``train``.

Pure Python and NumPy, so that the reference stays independent of the compiled engine.
"""

from __future__ import annotations

import numpy as np

from . import _validation as v
from . import model_file
from ._activation_spec import resolve_activation
from ._optimizer_spec import OPTIMIZERS


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
        std = v.check_float("std", std, minimum=0.0)
        self._set_architecture(
            (input_size, hidden_size, output_size),
            activation,
            activation_params,
            dtype,
            v.check_seed(seed),
        )
        self.params = v.init_params(self.sizes, std, self.dtype, self._rng)

    def _set_architecture(self, sizes, activation, activation_params, dtype, rng):
        self.sizes = v.check_sizes(*sizes)
        self.input_size, self.hidden_size, self.output_size = self.sizes
        self.dtype = v.check_dtype(dtype)
        self.activation, self.activation_params = resolve_activation(activation, activation_params)
        self._rng = rng
        #: The optimizer's name, parameters, step count and buffers, kept between ``train``
        #: calls (and in model files) so that training resumes where it stopped.
        self.optimizer_state = None

    def _optimizer_state_for(self, name, values):
        """The optimizer state for a ``train`` call: the kept one if it fits, else a new one."""
        state = self.optimizer_state
        fits = (
            isinstance(state, dict)
            and state.get("name") == name
            and len(state.get("buffers", ())) == OPTIMIZERS[name][2]
            and all(
                set(buffers) == set(self.params)
                and all(
                    isinstance(b, np.ndarray)
                    and b.shape == self.params[k].shape
                    and b.dtype == self.dtype
                    and b.flags.c_contiguous
                    for k, b in buffers.items()
                )
                for buffers in state["buffers"]
            )
        )
        if not fits:
            count = OPTIMIZERS[name][2]
            buffers = [{k: np.zeros_like(p) for k, p in self.params.items()} for _ in range(count)]
            state = {"name": name, "step": 0, "buffers": buffers}
        state["params"] = dict(values)
        self.optimizer_state = state
        return state

    @classmethod
    def _restore(cls, sizes, activation, activation_params, dtype, params, rng):
        """A net with the given params, built without drawing from any random state."""
        net = cls.__new__(cls)
        net._set_architecture(sizes, activation, activation_params, dtype, rng)
        v.check_params(params, net.sizes, net.dtype)
        net.params = params
        return net

    def save(self, path, *, metadata=None, arrays=None):
        """Write the net to an ``.npz`` model file, atomically; return the path written.

        The file holds the params, the architecture, the dtype and the state of the net's
        random Generator, plus any JSON ``metadata`` and numeric ``arrays`` given; see
        :mod:`mlp_numba.model_file`. Loading gives bitwise the same params.

        Examples
        --------
        >>> import pathlib, tempfile
        >>> from mlp_numba import TwoLayerNet
        >>> net = TwoLayerNet(4, 3, 2, activation="tanh", seed=0)
        >>> path = net.save(pathlib.Path(tempfile.mkdtemp()) / "model.npz")
        >>> TwoLayerNet.load(path)
        TwoLayerNet(input_size=4, hidden_size=3, output_size=2, activation='tanh', dtype=float64)
        """
        return model_file.save_model(path, self, metadata=metadata, arrays=arrays)

    @classmethod
    def load(cls, path):
        """Read a net written by :meth:`save` (no pickle); raises ModelFileError if damaged."""
        return model_file.load_model(path, cls).net

    def _check_features(self, name, X):
        """``X`` checked and converted to the net's dtype (``_validation.check_features``)."""
        return v.check_features(name, X, self.input_size, self.dtype)

    def _check_train_data(self, X, y, X_val, y_val):
        """The training and validation arrays, checked and converted to the net's dtype."""
        X = self._check_features("X", X)
        y = v.check_labels("y", y, len(X), self.output_size)
        X_val = self._check_features("X_val", X_val)
        y_val = v.check_labels("y_val", y_val, len(X_val), self.output_size, "X_val")
        return X, y, X_val, y_val
