"""The activation registry: names, aliases, parameters, and what each function computes."""

import numpy as np
import pytest

import mlp_numba
from conftest import CANONICAL
from mlp_numba import ACTIVATIONS, TwoLayerNet
from mlp_numba._activation_spec import SPECS
from mlp_numba._engine.kernels.activations import COMPILED_ACTIVATIONS
from mlp_numba.reference import REFERENCE_ACTIVATIONS


def test_registries_agree():
    assert set(COMPILED_ACTIVATIONS) == set(SPECS) == set(REFERENCE_ACTIVATIONS)
    assert set(ACTIVATIONS) == set(SPECS) | {"silu"}
    assert mlp_numba.ACTIVATIONS is ACTIVATIONS


def test_unknown_activation_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown activation 'relu6'") as info:
        TwoLayerNet(3, 4, 2, activation="relu6")
    for name in ACTIVATIONS:
        assert name in str(info.value)


def test_silu_is_swish():
    X = np.linspace(-3, 3, 12).reshape(4, 3)
    a = TwoLayerNet(3, 4, 2, std=1.0, activation="silu", seed=0)
    b = TwoLayerNet(3, 4, 2, std=1.0, activation="swish", seed=0)
    assert a.activation == "swish"
    assert np.array_equal(a.loss(X), b.loss(X))


def hidden_of(activation, z, **params):
    """Run z through a 1-unit identity-weighted net and read the hidden activation back."""
    net = TwoLayerNet(1, 1, 2, activation=activation, activation_params=params or None)
    net.params["W1"][...] = 1.0
    net.params["W2"][...] = [[1.0, 0.0]]
    return net.loss(z.reshape(-1, 1))[:, 0]


Z = np.array([-30.0, -2.5, -0.3, 0.0, 0.4, 3.0, 30.0])


@pytest.mark.parametrize(
    "activation,expected",
    [
        ("relu", np.maximum(Z, 0)),
        ("leaky_relu", np.where(Z > 0, Z, 0.01 * Z)),
        ("elu", np.where(Z > 0, Z, np.expm1(Z))),
        ("selu", 1.0507009873554805 * np.where(Z > 0, Z, 1.6732632423543772 * np.expm1(Z))),
        ("swish", Z / (1 + np.exp(-Z))),
        ("softplus", np.log1p(np.exp(Z))),
        ("sigmoid", 1 / (1 + np.exp(-Z))),
        ("tanh", np.tanh(Z)),
        ("identity", Z),
    ],
)
def test_forward_values(activation, expected):
    np.testing.assert_allclose(hidden_of(activation, Z), expected, rtol=1e-12, atol=1e-300)


def test_gelu_is_the_erf_form():
    from math import erf, sqrt

    expected = [0.5 * z * (1 + erf(z / sqrt(2))) for z in Z]
    np.testing.assert_allclose(hidden_of("gelu", Z), expected, rtol=1e-12, atol=1e-300)
    approx = hidden_of("gelu_tanh", Z)
    assert np.max(np.abs(approx - expected)) < 1e-3


@pytest.mark.parametrize(
    "activation,params,expected",
    [
        ("leaky_relu", {"slope": 0.2}, np.where(Z > 0, Z, 0.2 * Z)),
        ("elu", {"alpha": 0.5}, np.where(Z > 0, Z, 0.5 * np.expm1(Z))),
    ],
)
def test_activation_parameters_are_settable(activation, params, expected):
    np.testing.assert_allclose(hidden_of(activation, Z, **params), expected, rtol=1e-12)


@pytest.mark.parametrize("activation", CANONICAL)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_extreme_preactivations_stay_finite(activation, dtype):
    net = TwoLayerNet(1, 1, 2, activation=activation, dtype=dtype)
    net.params["W1"][...] = 1.0
    X = np.array([[-1e4], [-80.0], [0.0], [80.0], [1e4]], dtype=dtype)
    loss, grads = net.loss(X, [0, 1, 0, 1, 0])
    assert np.isfinite(loss)
    assert all(np.isfinite(g).all() for g in grads.values())


@pytest.mark.parametrize(
    "params,match",
    [
        ({"slope": 0.1}, "does not take"),
        ({"alpha": float("nan")}, "must be finite"),
        ({"alpha": -1.0}, "must be > 0"),
    ],
)
def test_bad_activation_params(params, match):
    with pytest.raises(ValueError, match=match):
        TwoLayerNet(3, 4, 2, activation="elu", activation_params=params)


def test_activation_params_type():
    with pytest.raises(TypeError, match="activation_params"):
        TwoLayerNet(3, 4, 2, activation="elu", activation_params=[1.0])
    with pytest.raises(TypeError, match="activation"):
        TwoLayerNet(3, 4, 2, activation=None)
