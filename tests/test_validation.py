"""Bad input gets a ValueError or TypeError that names the argument; good odd input works."""

import numpy as np
import pytest

from mlp_numba import TwoLayerNet
from mlp_numba import reference as ref_module

NETS = [TwoLayerNet, ref_module.TwoLayerNet]
rng = np.random.default_rng(0)
X = rng.standard_normal((20, 4))
y = rng.integers(0, 3, 20)


@pytest.fixture(params=NETS, ids=["compiled", "reference"])
def net(request):
    return request.param(4, 6, 3, std=0.1, seed=0)


# ---- constructor ------------------------------------------------------------------------
@pytest.mark.parametrize("cls", NETS)
@pytest.mark.parametrize(
    "args,kwargs,exc,match",
    [
        ((0, 5, 3), {}, ValueError, "input_size must be >= 1"),
        ((4, 0, 3), {}, ValueError, "hidden_size must be >= 1"),
        ((4, 5, 1), {}, ValueError, "output_size must be >= 2"),
        ((4.0, 5, 3), {}, TypeError, "input_size must be an integer"),
        ((4, True, 3), {}, TypeError, "hidden_size must be an integer"),
        ((4, 5, 3), {"std": -1.0}, ValueError, "std must be >= 0"),
        ((4, 5, 3), {"std": float("nan")}, ValueError, "std must be finite"),
        ((4, 5, 3), {"dtype": np.int32}, TypeError, "dtype must be float32 or float64"),
        ((4, 5, 3), {"dtype": "complex128"}, TypeError, "dtype must be float32 or float64"),
        ((4, 5, 3), {"dtype": "nonsense"}, TypeError, "dtype must be float32 or float64"),
        ((4, 5, 3), {"seed": -1}, ValueError, "seed must be >= 0"),
        ((4, 5, 3), {"seed": 1.5}, TypeError, "seed must be an integer"),
    ],
)
def test_bad_constructor_arguments(cls, args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        cls(*args, **kwargs)


# ---- X ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad,exc,match",
    [
        (np.ones(4), ValueError, "X must be 2-D"),
        (np.ones((2, 2, 2)), ValueError, r"X must be 2-D .*reshape"),
        (np.ones((20, 5)), ValueError, "X has 5 features per row but the net expects 4"),
        (np.ones((0, 4)), ValueError, "X is empty"),
        (np.full((3, 4), np.nan), ValueError, "X contains 12 non-finite"),
        (np.array([[1.0, np.inf, 0, 0]]), ValueError, "X contains 1 non-finite"),
        (np.array([[1e300, 0, 0, 0]]), None, None),  # fine in float64, checked for float32 below
        (np.ones((3, 4), complex), TypeError, "X must hold real numbers"),
        (np.array([["a", "b", "c", "d"]]), TypeError, "X must hold real numbers"),
        (np.array([[object()] * 4]), TypeError, "X must hold real numbers"),
    ],
)
def test_bad_X(net, bad, exc, match):
    if exc is None:
        net.loss(bad)
        return
    for call in (lambda: net.loss(bad), lambda: net.predict(bad), lambda: net.predict_proba(bad)):
        with pytest.raises(exc, match=match):
            call()


@pytest.mark.parametrize("cls", NETS)
def test_X_overflowing_float32(cls):
    net = cls(4, 6, 3, dtype=np.float32, seed=0)
    with pytest.raises(ValueError, match="X has values too large for float32"):
        net.loss(np.array([[1e300, 0, 0, 0]]))


@pytest.mark.parametrize("shape", [(67, 33), (600, 201)])  # serial and parallel passes
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_compiled_finiteness_check_finds_one_bad_value_anywhere(shape, dtype, value):
    """TwoLayerNet's input check: the largest finite values pass (nothing is summed that could
    overflow), and a single NaN or inf is found at either end, inside or across a chunk."""
    from mlp_numba._engine import engine_for

    all_finite = engine_for(dtype).all_finite
    X = np.full(shape, np.finfo(dtype).max, dtype)
    X[::2] *= -1
    assert all_finite(X)
    for position in (0, 1, 7, X.size // 64, X.size // 2 + 3, X.size - 1):
        bad = X.copy()
        bad.flat[position] = value
        assert not all_finite(bad), position


@pytest.mark.parametrize("std", [0.0, 1e-4])  # std=0: W1 all zeros, where NaN * 0 must show
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
# Where the bad value is: row 0, or this many rows after the first scoring chunk's end.
@pytest.mark.parametrize("after_chunk", [None, -1, 0, 999])
def test_scoring_finds_a_bad_value_through_the_hidden_layer(std, value, after_chunk):
    """predict, predict_proba and loss(X) check X only when the hidden pre-activations are not
    finite; a single NaN or inf must still be reported, whatever the weights."""
    from mlp_numba import TwoLayerNet
    from mlp_numba.net import _SCORE_ROWS

    net = TwoLayerNet(4, 6, 3, std=std, seed=0)
    bad = np.random.default_rng(0).standard_normal((_SCORE_ROWS + 1000, 4))
    bad[0 if after_chunk is None else _SCORE_ROWS + after_chunk, 2] = value
    for call in (net.predict, net.predict_proba, net.loss):
        with pytest.raises(ValueError, match="X contains 1 non-finite"):
            call(bad)


# ---- y -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad,exc,match",
    [
        (y.astype(float), TypeError, "y must hold integer class labels"),
        (y[:-1], ValueError, "y has 19 labels but X has 20 rows"),
        (y.reshape(-1, 1), ValueError, "y must be 1-D"),
        (np.where(y == 0, -1, y), ValueError, r"y must hold labels in \[0, 2\]"),
        (np.where(y == 0, 3, y), ValueError, r"y must hold labels in \[0, 2\]"),
    ],
)
def test_bad_y(net, bad, exc, match):
    with pytest.raises(exc, match=match):
        net.loss(X, bad)
    with pytest.raises(exc, match=match):
        net.train(X, bad, X, y, num_iters=1)


def test_bad_validation_set(net):
    with pytest.raises(ValueError, match="X_val has 3 features"):
        net.train(X, y, X[:, :3], y, num_iters=1)
    with pytest.raises(ValueError, match="y_val has 20 labels but X_val has 5 rows"):
        net.train(X, y, X[:5], y, num_iters=1)
    with pytest.raises(ValueError, match="X_val is empty"):
        net.train(X, y, X[:0], y[:0], num_iters=1)


# ---- hyperparameters ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"batch_size": 2.5}, TypeError, "batch_size must be an integer"),
        ({"num_iters": -1}, ValueError, "num_iters must be >= 0"),
        ({"num_iters": 10.0}, TypeError, "num_iters must be an integer"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate must be > 0"),
        ({"learning_rate": -1e-3}, ValueError, "learning_rate must be > 0"),
        ({"learning_rate": float("inf")}, ValueError, "learning_rate must be finite"),
        ({"learning_rate": "fast"}, TypeError, "learning_rate must be a real number"),
        ({"learning_rate_decay": 0.0}, ValueError, "learning_rate_decay must be > 0"),
        ({"reg": -0.1}, ValueError, "reg must be >= 0"),
        ({"reg": float("nan")}, ValueError, "reg must be finite"),
    ],
)
def test_bad_hyperparameters(net, kwargs, exc, match):
    before = {k: p.copy() for k, p in net.params.items()}
    with pytest.raises(exc, match=match):
        net.train(X, y, X, y, **kwargs)
    for k, p in net.params.items():
        assert np.array_equal(p, before[k]), "a rejected call must not change the params"


def test_bad_reg_in_loss(net):
    with pytest.raises(ValueError, match="reg must be >= 0"):
        net.loss(X, y, reg=-1.0)


# ---- params edited by the user ------------------------------------------------------------
@pytest.mark.parametrize(
    "edit,exc,match",
    [
        (lambda p: p.pop("b2"), TypeError, r"params\['b2'\] cannot be removed"),
        (lambda p: p.update(W1=np.ones((4, 5))), ValueError, r"params\['W1'\] must have shape"),
        (lambda p: p.update(W2=p["W2"].astype(np.float32)), TypeError, r"params\['W2'\] must be"),
        (lambda p: p.update(b1=[0.0] * 6), TypeError, r"params\['b1'\] must be a numpy array"),
        (lambda p: p.update(W9=np.ones(3)), KeyError, "params has no 'W9'"),
    ],
)
def test_bad_params_are_refused_where_they_are_assigned(net, edit, exc, match):
    before = {k: p.copy() for k, p in net.params.items()}
    held = net.params["W1"]
    with pytest.raises(exc, match=match):
        edit(net.params)
    assert net.params["W1"] is held
    for k, p in net.params.items():
        np.testing.assert_array_equal(p, before[k])
    net.loss(X)  # the net still works


@pytest.mark.parametrize("cls", NETS)
def test_a_whole_params_dict_with_a_bad_entry_changes_nothing(cls):
    net = cls(4, 6, 3, std=0.1, seed=0)
    before = {k: p.copy() for k, p in net.params.items()}
    good = {k: np.ones_like(p) for k, p in net.params.items()}
    for bad, exc, match in (
        ({**good, "W2": np.ones((2, 2))}, ValueError, r"params\['W2'\] must have shape"),
        ({k: p for k, p in good.items() if k != "b2"}, ValueError, "params is missing 'b2'"),
        ([1, 2], TypeError, "params must be a dict"),
    ):
        with pytest.raises(exc, match=match):
            net.params = bad
        for k, p in net.params.items():
            np.testing.assert_array_equal(p, before[k])


# ---- odd but valid input ------------------------------------------------------------------
@pytest.mark.parametrize("cls", NETS)
def test_integer_uint8_and_non_contiguous_inputs(cls):
    net = cls(4, 6, 3, std=0.1, seed=0)
    Xi = rng.integers(0, 255, (20, 4))
    expected = net.loss(Xi.astype(np.float64))
    for variant in (
        Xi.astype(np.uint8),
        Xi.astype(np.int32),
        Xi.tolist(),
        np.asfortranarray(Xi),
        np.repeat(Xi, 2, axis=1)[:, ::2],
    ):
        np.testing.assert_array_equal(net.loss(variant), expected)
    yi = y.astype(np.uint8)
    wide = np.stack([yi, yi], axis=1)[:, 0]  # a strided view
    loss, _ = net.loss(Xi, wide, reg=0.1)
    assert loss == net.loss(Xi, y, reg=0.1)[0]
    net.train(Xi.astype(np.uint8), wide, Xi[::2], y[::2], num_iters=3, batch_size=4)
