"""Compiled kernels against the NumPy reference and against numerical gradients."""

import numpy as np
import pytest

from conftest import CANONICAL, DTYPES, TOL, assert_rel
from mlp_numba import TwoLayerNet
from mlp_numba import reference as ref_module
from mlp_numba.gradient_check import eval_numerical_gradient, rel_error

PARAMS = ("W1", "b1", "W2", "b2")


def make_pair(D, H, C, activation, dtype, std=0.5, seed=0, **kw):
    net = TwoLayerNet(D, H, C, std=std, activation=activation, dtype=dtype, seed=seed, **kw)
    ref = ref_module.TwoLayerNet(
        D, H, C, std=std, activation=activation, dtype=dtype, seed=seed, **kw
    )
    for k in PARAMS:
        assert np.array_equal(net.params[k], ref.params[k])
    # Non-zero biases so that their paths are exercised too.
    rng = np.random.default_rng(seed + 1)
    for k in ("b1", "b2"):
        b = rng.standard_normal(net.params[k].shape).astype(dtype)
        net.params[k][...] = b
        ref.params[k][...] = b
    return net, ref


def batch(N, D, C, seed=2, scale=1.0):
    rng = np.random.default_rng(seed)
    return scale * rng.standard_normal((N, D)), rng.integers(0, C, N)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", CANONICAL)
@pytest.mark.parametrize(
    "shape", [(7, 5, 6, 3), (1, 3, 4, 2), (33, 17, 9, 10)], ids=["small", "one-row", "wide"]
)
def test_scores_loss_grads_match_reference(activation, dtype, shape):
    N, D, H, C = shape
    net, ref = make_pair(D, H, C, activation, dtype)
    X, y = batch(N, D, C)
    tol = TOL[dtype]

    scores, ref_scores = net.loss(X), ref.loss(X)
    assert scores.dtype == dtype and ref_scores.dtype == dtype
    assert_rel(ref_scores, scores, tol, "scores")

    loss, grads = net.loss(X, y, reg=0.1)
    ref_loss, ref_grads = ref.loss(X, y, reg=0.1)
    assert isinstance(loss, dtype) and isinstance(ref_loss, dtype)
    assert_rel(ref_loss, loss, tol, "loss")
    for k in PARAMS:
        assert grads[k].dtype == dtype and grads[k].shape == net.params[k].shape
        assert_rel(ref_grads[k], grads[k], tol, f"grad {k}")

    assert np.array_equal(net.predict(X), ref.predict(X))
    assert_rel(ref.predict_proba(X), net.predict_proba(X), tol, "predict_proba")


@pytest.mark.parametrize("activation", CANONICAL)
def test_gradients_match_numerical_gradients(activation):
    # reg keeps every weight-gradient element well away from 0, so that the element-wise
    # relative error measures the gradient rather than the roundoff of a difference quotient.
    reg = 0.5
    net, ref = make_pair(5, 6, 3, activation, np.float64)
    X, y = batch(7, 5, 3)
    for model in (net, ref):
        _, grads = model.loss(X, y, reg=reg)
        for k in PARAMS:
            num = eval_numerical_gradient(
                lambda _, m=model: m.loss(X, y, reg=reg)[0], model.params[k], verbose=False
            )
            err = rel_error(num, grads[k])
            assert err <= 1e-7, f"{type(model).__module__} {k}: {err:.2e}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_is_stable_for_huge_scores(dtype):
    # Scores in the thousands overflow a naive exp; log-sum-exp keeps the loss finite.
    net, ref = make_pair(4, 8, 5, "relu", dtype, std=30.0)
    X, y = batch(6, 4, 5, scale=30.0)
    assert np.abs(net.loss(X)).max() > 1000
    loss, grads = net.loss(X, y)
    ref_loss, ref_grads = ref.loss(X, y)
    assert np.isfinite(loss) and loss > 0
    assert_rel(ref_loss, loss, TOL[dtype], "loss")
    for k in PARAMS:
        assert np.isfinite(grads[k]).all()
        assert_rel(ref_grads[k], grads[k], TOL[dtype], k)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_training_matches_reference(activation, dtype):
    # Same seed: same minibatches; compiled SGD must follow the reference step by step.
    net, ref = make_pair(6, 8, 3, activation, dtype, std=0.1)
    X, y = batch(120, 6, 3)
    Xv, yv = batch(40, 6, 3, seed=9)
    kw = dict(learning_rate=0.05, learning_rate_decay=0.9, reg=1e-3, num_iters=60, batch_size=25)
    s, rs = net.train(X, y, Xv, yv, **kw), ref.train(X, y, Xv, yv, **kw)
    tol = 1e-9 if dtype == np.float64 else 1e-3
    assert_rel(rs["loss_history"], s["loss_history"], tol, "loss history")
    assert s["val_acc_history"] == rs["val_acc_history"]
    for k in PARAMS:
        assert net.params[k].dtype == dtype
        assert_rel(ref.params[k], net.params[k], tol, k)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("wide", [False, True], ids=["narrow", "wide"])
def test_training_matches_reference_on_each_parallel_path(wide, optimizer, dtype):
    """Batches big enough to be cut into blocks of rows, and weights into blocks of their
    rows, at a small D and at CIFAR-10's."""
    from mlp_numba._engine.kernels.common import BLAS_PIECES

    if BLAS_PIECES == 1:
        pytest.skip("one CPU: every product is one block")
    D, H, C = (3072, 100, 10) if wide else (300, 40, 10)
    net, ref = make_pair(D, H, C, "relu", dtype, std=1e-2)
    X, y = batch(400, D, C)
    kw = dict(learning_rate=1e-3, learning_rate_decay=0.9, reg=1e-3, num_iters=12, batch_size=64,
              optimizer=optimizer)  # fmt: skip
    s, rs = net.train(X, y, X[:50], y[:50], **kw), ref.train(X, y, X[:50], y[:50], **kw)
    tol = 1e-9 if dtype == np.float64 else 2e-3
    assert_rel(rs["loss_history"], s["loss_history"], tol, "loss history")
    for k in PARAMS:
        ours, theirs = net.params[k], ref.params[k]
        assert ours.dtype == dtype
        assert np.linalg.norm(ours - theirs) <= tol * 1e-2 * np.linalg.norm(theirs), k
        # Element by element, except Adam in float32: its step is +-lr wherever the gradient
        # is near zero, so float32 rounding flips a few elements' steps (3 of 307,200 here).
        if not (optimizer == "adam" and dtype == np.float32):
            assert_rel(theirs, ours, tol, k)


def test_predict_handles_more_rows_than_one_scoring_chunk(monkeypatch):
    import mlp_numba.net as net_module

    monkeypatch.setattr(net_module, "_SCORE_ROWS", 16)
    net, ref = make_pair(5, 6, 3, "relu", np.float64)
    X, _ = batch(50, 5, 3)
    assert np.array_equal(net.predict(X), ref.predict(X))
    assert_rel(ref.loss(X), net.loss(X), 1e-10)
    assert_rel(ref.predict_proba(X), net.predict_proba(X), 1e-10)
