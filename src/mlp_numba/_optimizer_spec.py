"""Optimizers and learning-rate schedules: names, parameters and defaults, shared by both nets.

The compiled update (``_updates.update``) and the NumPy reference
(``reference.optimizer_update``) implement every name here with the same formulas; tests check
that they agree. The course's plain SGD with per-epoch step decay is the default.
"""

from __future__ import annotations

import math

import numpy as np

from ._validation import check_float

# name -> (code the kernels switch on, parameters with defaults, state buffers per param)
OPTIMIZERS = {
    "sgd": (0, {}, 0),
    "momentum": (1, {"momentum": 0.9}, 1),
    "nesterov": (2, {"momentum": 0.9}, 1),
    "adam": (3, {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, 2),
    "adamw": (4, {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01}, 2),
}
# name -> parameters with defaults
SCHEDULES = {
    "step": {},  # the course's: learning_rate *= learning_rate_decay at each epoch end
    "constant": {},
    "invscaling": {"power_t": 0.5},  # learning_rate / (it + 1) ** power_t
    "cosine": {"min_lr": 0.0},  # from learning_rate down to min_lr over num_iters
}


def _resolve(kind, table, name, params):
    if not isinstance(name, str):
        raise TypeError(f"{kind} must be a string, got {type(name).__name__}")
    if name not in table:
        raise ValueError(f"unknown {kind} {name!r}; valid names: {', '.join(table)}")
    defaults = table[name][1] if kind == "optimizer" else table[name]
    given = {} if params is None else params
    if not isinstance(given, dict):
        raise TypeError(f"{kind}_params must be a dict, got {type(params).__name__}")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        allowed = ", ".join(defaults) or "none"
        raise ValueError(f"{kind}_params has {unknown}, which {name!r} does not take ({allowed})")
    return {k: check_float(f"{kind}_params[{k!r}]", given.get(k, d)) for k, d in defaults.items()}


def resolve_optimizer(name, params=None):
    """``(name, {param: value})`` after checking them.

    Examples
    --------
    >>> resolve_optimizer("adam", {"beta1": 0.8})
    ('adam', {'beta1': 0.8, 'beta2': 0.999, 'eps': 1e-08})
    """
    values = _resolve("optimizer", OPTIMIZERS, name, params)
    for key in ("momentum", "beta1", "beta2"):
        if key in values and not 0 <= values[key] < 1:
            raise ValueError(f"optimizer_params[{key!r}] must be in [0, 1), got {values[key]}")
    for key in ("eps", "weight_decay"):
        if key in values and values[key] < 0:
            raise ValueError(f"optimizer_params[{key!r}] must be >= 0, got {values[key]}")
    if name in ("adam", "adamw") and values["eps"] == 0:
        raise ValueError("optimizer_params['eps'] must be > 0 for Adam")
    return name, values


def resolve_schedule(name, params=None):
    """``(name, {param: value})`` after checking them."""
    values = _resolve("schedule", SCHEDULES, name, params)
    if values.get("power_t", 0) < 0 or values.get("min_lr", 0) < 0:
        raise ValueError(f"schedule_params must be >= 0, got {values}")
    return name, values


def hyper_vector(name, values):
    """The optimizer's parameters as the kernels take them: (momentum or beta1, beta2, eps, wd).

    Always float64, like the reference's Python floats: Adam's bias corrections are computed
    from them in float64 before being rounded to the net's dtype.
    """
    first = values.get("momentum", values.get("beta1", 0.0))
    vector = (
        first,
        values.get("beta2", 0.0),
        values.get("eps", 0.0),
        values.get("weight_decay", 0.0),
    )
    return np.array(vector, dtype=np.float64)


def scheduled_rates(schedule, values, base_rate, current_rate, start, count, num_iters, dtype):
    """Learning rates of iterations ``start .. start + count - 1`` of a ``train`` call.

    ``current_rate`` is the step schedule's rate (the course's, decayed at epoch ends by the
    caller); the others depend only on the iteration and ``base_rate``.
    """
    its = np.arange(start, start + count, dtype=np.float64)
    if schedule == "step":
        rates = np.full(count, current_rate)
    elif schedule == "constant":
        rates = np.full(count, base_rate)
    elif schedule == "invscaling":
        rates = base_rate / (its + 1.0) ** values["power_t"]
    else:  # cosine
        low = values["min_lr"]
        rates = low + 0.5 * (base_rate - low) * (1.0 + np.cos(math.pi * its / max(num_iters, 1)))
    return rates.astype(dtype)
