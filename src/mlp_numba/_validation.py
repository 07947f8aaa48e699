"""Checks shared by the compiled net and the reference: every message names the argument.

Pure Python and NumPy, so that the reference can use it without touching the compiled engine.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Mapping

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


def check_int(name, value, minimum=None):
    """Return ``value`` as an int; reject bools, floats and values below ``minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = operator.index(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_float(name, value, *, minimum=None, strict=False):
    """Return ``value`` as a finite float, optionally bounded below (``strict``: > minimum)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None:
        if strict and value <= minimum:
            raise ValueError(f"{name} must be > {minimum}, got {value}")
        if not strict and value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_dtype(dtype):
    """Return the working dtype: float64 (default) or float32."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from exc
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def check_seed(seed):
    """Return None (use NumPy's global random state, as the course does) or a Generator."""
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    seed = check_int("seed", seed, minimum=0)
    return np.random.default_rng(seed)


def check_features(name, X, n_features, dtype, all_finite=None):
    """Return ``X`` as a C-contiguous (N, n_features) array of ``dtype`` with finite values.

    Integer, unsigned (e.g. uint8 images) and bool inputs are converted; complex, object and
    string inputs are rejected. ``all_finite(X)``, when given, replaces NumPy's finiteness test
    in the common, finite case (the compiled net passes its own, faster one).
    """
    converted, original = features_as(name, X, n_features, dtype)
    return check_finite(name, converted, original, all_finite)


def features_as(name, X, n_features, dtype):
    """``check_features`` without the finiteness test: ``(X converted, X as given)``, for a
    caller that tests finiteness another way and calls ``check_finite`` only when in doubt."""
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if X.ndim != 2:
        hint = f"; flatten it with {name}.reshape(len({name}), -1)" if X.ndim > 2 else ""
        raise ValueError(f"{name} must be 2-D (samples, features), got shape {X.shape}{hint}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has 0 rows")
    if X.shape[1] != n_features:
        raise ValueError(
            f"{name} has {X.shape[1]} features per row but the net expects {n_features}"
        )
    with np.errstate(over="ignore"):  # an overflow is reported by check_finite, by name
        return np.ascontiguousarray(X, dtype=dtype), X


def check_finite(name, X, original, all_finite=None):
    """Return the converted ``X`` if all its values are finite; otherwise raise ValueError,
    telling a NaN or inf in the ``original`` input from an overflow in the conversion."""
    finite = all_finite(X) if all_finite is not None else np.isfinite(X).all()
    if not finite:  # one pass over the data in the common, finite case
        if original.dtype.kind == "f" and not np.isfinite(original).all():
            bad = int(original.size - np.count_nonzero(np.isfinite(original)))
            raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
        raise ValueError(f"{name} has values too large for {X.dtype} (they overflow to inf)")
    return X


def check_labels(name, y, n_samples, n_classes, samples_name="X"):
    """Return ``y`` as a C-contiguous intp vector of class indices in [0, n_classes)."""
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {y.shape}")
    if y.shape[0] != n_samples:
        raise ValueError(f"{name} has {y.shape[0]} labels but {samples_name} has {n_samples} rows")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(
            f"{name} must hold labels in [0, {n_classes - 1}] (output_size={n_classes}), "
            f"got values from {y.min()} to {y.max()}"
        )
    return np.ascontiguousarray(y, dtype=np.intp)


def param_shapes(sizes):
    """The params' names and shapes, ``{"W1": (n0, n1), "b1": (n1,), ...}``, for the layer
    widths ``sizes`` = (inputs, hidden..., classes)."""
    shapes = {}
    for layer in range(1, len(sizes)):
        shapes[f"W{layer}"] = (sizes[layer - 1], sizes[layer])
        shapes[f"b{layer}"] = (sizes[layer],)
    return shapes


def check_params(params, sizes, dtype):
    """Check the ``params`` dict the user may have edited: keys, shapes, dtype, finiteness.
    Returns the arrays in the order W1, b1, W2, b2, ..."""
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict, got {type(params).__name__}")
    for key, shape in param_shapes(sizes).items():
        if key not in params:
            raise ValueError(f"params is missing {key!r}")
        p = params[key]
        if not isinstance(p, np.ndarray):
            raise TypeError(f"params[{key!r}] must be a numpy array, got {type(p).__name__}")
        if p.shape != shape:
            raise ValueError(f"params[{key!r}] must have shape {shape}, got {p.shape}")
        if p.dtype != dtype:
            raise TypeError(f"params[{key!r}] must be {dtype} like the net, got {p.dtype}")
        if not p.flags.c_contiguous or not p.flags.writeable:
            raise ValueError(f"params[{key!r}] must be a C-contiguous, writeable array")
    return tuple(params[key] for key in param_shapes(sizes))


#: Initialisations by name: the standard deviation of a layer's weights from its fan-in and
#: fan-out (He et al. 2015 for ReLU-like activations; Glorot and Bengio 2010).
INITS = {
    "he": lambda fan_in, fan_out: np.sqrt(2.0 / fan_in),
    "glorot": lambda fan_in, fan_out: np.sqrt(2.0 / (fan_in + fan_out)),
}


def init_params(sizes, std, dtype, rng, init=None):
    """Draw initial params: the weights W1, W2, ... in that order from ``scale * randn``, the
    biases zero. The scale is ``std``, or when ``init`` names one of :data:`INITS`, that
    rule's for each layer.

    ``rng`` None draws from NumPy's global random state in the course's order, so
    ``np.random.seed(0)`` before construction reproduces a course net. Draws are made in
    float64 and cast, so a float32 net starts from the float64 net's values, rounded.
    """
    randn = np.random.randn if rng is None else (lambda *shape: rng.standard_normal(shape))
    params = {}
    for key, shape in param_shapes(sizes).items():
        if key.startswith("W"):
            scale = std if init is None else INITS[init](*shape)
            params[key] = np.ascontiguousarray(scale * randn(*shape), dtype=dtype)
        else:
            params[key] = np.zeros(shape, dtype=dtype)
    return params


def check_sizes(input_size, hidden_size, output_size):
    return (
        check_int("input_size", input_size, minimum=1),
        check_int("hidden_size", hidden_size, minimum=1),
        check_int("output_size", output_size, minimum=2),
    )


def check_hidden_sizes(hidden_sizes):
    """``hidden_sizes`` as a tuple of one or more positive ints."""
    if isinstance(hidden_sizes, (str, bytes)) or not hasattr(hidden_sizes, "__iter__"):
        raise TypeError(
            "hidden_sizes must be a sequence of integers (one width per hidden layer), "
            f"got {type(hidden_sizes).__name__} {hidden_sizes!r}"
        )
    widths = tuple(hidden_sizes)
    if not widths:
        raise ValueError("hidden_sizes must hold at least one width, got an empty sequence")
    return tuple(check_int(f"hidden_sizes[{i}]", w, minimum=1) for i, w in enumerate(widths))


def check_init(init):
    """``init``: one of :data:`INITS`."""
    if not isinstance(init, str):
        raise TypeError(f"init must be a string, got {type(init).__name__}")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; valid names: {', '.join(INITS)}")
    return init


def check_train_args(learning_rate, learning_rate_decay, reg, num_iters, batch_size):
    return (
        check_float("learning_rate", learning_rate, minimum=0.0, strict=True),
        check_float("learning_rate_decay", learning_rate_decay, minimum=0.0, strict=True),
        check_float("reg", reg, minimum=0.0),
        check_int("num_iters", num_iters, minimum=0),
        check_int("batch_size", batch_size, minimum=1),
    )


class TrainingDivergedError(FloatingPointError):
    """Training met a non-finite loss or gradient; the params keep their last finite values.

    Attributes
    ----------
    iteration : int
        The iteration whose loss or gradients were not finite (its update was not applied).
    loss : float
        That iteration's loss (NaN or inf, or finite when only a gradient overflowed).
    history : dict
        ``loss_history``, ``train_acc_history`` and ``val_acc_history`` up to that iteration.
    """

    def __init__(self, iteration, loss, history):
        self.iteration = int(iteration)
        self.loss = float(loss)
        self.history = history
        super().__init__(
            f"training diverged at iteration {self.iteration}: the loss or a gradient is not "
            f"finite (loss {self.loss}); the params keep their values from before that "
            "iteration. Try a smaller learning_rate or a smaller std."
        )
