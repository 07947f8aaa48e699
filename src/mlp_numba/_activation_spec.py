"""Names, parameters and defaults of the activations: the one table both implementations follow.

The compiled kernels (``_activations.py``) and the NumPy reference (``reference.py``) each map
every name here to a forward function and its derivative; a test checks that all three agree.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_float

# name -> (parameters with their defaults, in the order the kernels receive them; formula)
SPECS = {
    "relu": ({}, "max(z, 0)"),
    "leaky_relu": ({"slope": 0.01}, "z if z > 0 else slope * z"),
    "elu": ({"alpha": 1.0}, "z if z > 0 else alpha * (exp(z) - 1)"),
    "selu": ({}, "scale * (z if z > 0 else alpha * (exp(z) - 1)), the standard constants"),
    "swish": ({}, "z * sigmoid(z)"),
    "gelu": ({}, "z * Phi(z) = 0.5 * z * (1 + erf(z / sqrt(2))), the exact (erf) form"),
    "gelu_tanh": ({}, "0.5 * z * (1 + tanh(sqrt(2 / pi) * (z + 0.044715 * z**3)))"),
    "softplus": ({}, "log(1 + exp(z))"),
    "sigmoid": ({}, "1 / (1 + exp(-z))"),
    "tanh": ({}, "tanh(z)"),
    "identity": ({}, "z"),
}
ALIASES = {"silu": "swish"}

#: Every name the ``activation`` argument accepts, aliases included.
ACTIVATIONS = tuple(SPECS) + tuple(ALIASES)

# SELU's fixed point constants (Klambauer et al., 2017).
SELU_SCALE = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717


def resolve_activation(activation, activation_params=None):
    """Return ``(canonical name, {param: value})`` or raise naming what was wrong.

    Examples
    --------
    >>> resolve_activation("leaky_relu", {"slope": 0.2})
    ('leaky_relu', {'slope': 0.2})
    >>> resolve_activation("silu")
    ('swish', {})
    """
    if not isinstance(activation, str):
        raise TypeError(f"activation must be a string, got {type(activation).__name__}")
    name = ALIASES.get(activation.lower(), activation.lower())
    if name not in SPECS:
        raise ValueError(
            f"unknown activation {activation!r}; valid names: {', '.join(ACTIVATIONS)}"
        )
    defaults = SPECS[name][0]
    given = {} if activation_params is None else activation_params
    if not isinstance(given, dict):
        raise TypeError(f"activation_params must be a dict, got {type(activation_params).__name__}")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        allowed = ", ".join(defaults) if defaults else "none"
        raise ValueError(
            f"activation_params has {unknown} which {name!r} does not take (it takes: {allowed})"
        )
    values = {
        k: check_float(f"activation_params[{k!r}]", given.get(k, v)) for k, v in defaults.items()
    }
    if name == "elu" and values["alpha"] <= 0:
        raise ValueError(f"activation_params['alpha'] must be > 0, got {values['alpha']}")
    return name, values


def param_vector(name, values, dtype):
    """The parameters as the kernels take them: a non-empty vector of the working dtype."""
    vec = [values[k] for k in SPECS[name][0]] or [0.0]
    return np.array(vec, dtype=dtype)
