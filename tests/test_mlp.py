"""``MLP``: the compiled net of any depth against its NumPy reference, numerical gradients,
determinism across threads, model files, divergence and its argument checks."""

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import CANONICAL, DTYPES, TOL, assert_rel
from mlp_numba import MLP, TrainingDivergedError, TwoLayerNet
from mlp_numba import reference as ref
from mlp_numba._optimizer_spec import OPTIMIZERS
from mlp_numba.gradient_check import eval_numerical_gradient
from mlp_numba.model_file import ModelFileError, load_model

#: Hidden widths of depths 1 to 4 (a width below the kernels' smallest block among them).
DEPTHS = ((24,), (24, 17), (20, 16, 9), (12, 11, 10, 9))
D, C = 13, 5


def data(n=90, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, D)), rng.integers(0, C, n)


def pair(hidden, dtype=np.float64, **kwargs):
    """A compiled net and the reference net with the same initial params."""
    net = MLP(D, hidden, C, dtype=dtype, seed=7, **kwargs)
    twin = ref.MLP(D, hidden, C, dtype=dtype, seed=7, **kwargs)
    return net, twin


def assert_params_close(a, b, tol, what):
    """float64: every element within ``tol`` (``rel_error``). float32 rounds differently in
    the compiled and NumPy products, and an element that cancels to near zero keeps an error
    of the scale of its terms, so there each array is compared at its own scale."""
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype
        if a[k].dtype == np.float64:
            assert_rel(b[k], a[k], tol, f"{what} {k}")
        else:
            scale = max(np.abs(b[k]).max(), np.finfo(np.float32).tiny)
            err = np.abs(a[k] - b[k]).max() / scale
            assert err <= tol, f"{what} {k}: error {err:.3e} of its scale > {tol:.0e}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", CANONICAL)
@pytest.mark.parametrize("hidden", DEPTHS, ids=len)
def test_loss_grads_and_scores_match_the_reference(hidden, activation, dtype):
    net, twin = pair(hidden, dtype, activation=activation)
    X, y = data()
    loss, grads = net.loss(X, y, reg=0.05)
    ref_loss, ref_grads = twin.loss(X, y, reg=0.05)
    assert loss.dtype == dtype and all(g.dtype == dtype for g in grads.values())
    assert_rel(ref_loss, loss, TOL[dtype], "loss")
    assert_params_close(grads, ref_grads, TOL[dtype], "grad")
    outputs = {"scores": net.loss(X), "probabilities": net.predict_proba(X)}
    expected = {"scores": twin.loss(X), "probabilities": twin.predict_proba(X)}
    assert_params_close(outputs, expected, TOL[dtype], "")
    assert (net.predict(X) == twin.predict(X)).mean() > 0.95


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("hidden", DEPTHS, ids=len)
def test_training_matches_the_reference(hidden, optimizer, dtype):
    activation = CANONICAL[(len(hidden) + len(optimizer)) % len(CANONICAL)]
    net, twin = pair(hidden, dtype, activation=activation)
    X, y = data(200)
    kwargs = dict(learning_rate=0.05, reg=1e-3, num_iters=40, batch_size=32, optimizer=optimizer)
    stats = net.train(X, y, X[:50], y[:50], **kwargs)
    ref_stats = twin.train(X, y, X[:50], y[:50], **kwargs)
    # float32 rounds differently in the compiled and NumPy products; 40 steps amplify it.
    tol = TOL[dtype] if dtype == np.float64 else 1e-3
    assert_params_close(net.params, twin.params, tol, f"{optimizer} after 40 steps")
    losses = {"loss": np.array(stats["loss_history"])}
    assert_params_close(losses, {"loss": np.array(ref_stats["loss_history"])}, tol, "")
    assert stats["val_acc_history"] == pytest.approx(ref_stats["val_acc_history"], abs=0.05)


@pytest.mark.parametrize("activation", CANONICAL)
def test_every_activation_trains_like_the_reference(activation):
    net, twin = pair((20, 11), activation=activation)
    X, y = data(150)
    kwargs = dict(learning_rate=0.1, num_iters=25, batch_size=40, optimizer="momentum")
    net.train(X, y, X, y, **kwargs)
    twin.train(X, y, X, y, **kwargs)
    assert_params_close(net.params, twin.params, 1e-10, activation)


@pytest.mark.parametrize("hidden", DEPTHS, ids=len)
def test_gradients_match_numerical_gradients(hidden):
    net = MLP(D, hidden, C, activation="tanh", seed=3)
    X, y = data(20)
    _, grads = net.loss(X, y, reg=0.1)
    for name, param in net.params.items():
        numeric = eval_numerical_gradient(lambda _: net.loss(X, y, reg=0.1)[0], param, False)
        # Elementwise, central differences (h = 1e-5) leave ~1e-6 on the smallest elements;
        # at the array's scale they agree to 1e-8.
        assert_rel(numeric, grads[name], 1e-5, name)
        scale = np.abs(grads[name]).max()
        assert np.abs(numeric - grads[name]).max() <= 1e-8 * scale, name


def test_one_hidden_layer_is_the_course_net():
    """An MLP with one hidden layer and ``std`` draws and trains as TwoLayerNet (the course's
    protocol: global random state, step decay) to 1e-9."""
    X, y = data(300)
    np.random.seed(0)
    course = TwoLayerNet(D, 40, C, std=1e-1)
    np.random.seed(0)
    net = MLP(D, (40,), C, std=1e-1)
    assert_params_close(net.params, course.params, 0.0, "initial")
    kwargs = dict(learning_rate=0.1, learning_rate_decay=0.9, reg=1e-3, num_iters=120)
    np.random.seed(1)
    stats = course.train(X, y, X, y, **kwargs)
    np.random.seed(1)
    deep_stats = net.train(X, y, X, y, **kwargs)
    assert_params_close(net.params, course.params, 1e-9, "trained")
    assert_rel(np.array(stats["loss_history"]), np.array(deep_stats["loss_history"]), 1e-9)
    assert deep_stats["val_acc_history"] == stats["val_acc_history"]


def test_initialisations():
    net = MLP(400, (300, 100), 10, seed=0)
    assert net.params["W1"].std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert net.params["W2"].std() == pytest.approx(np.sqrt(2 / 300), rel=0.02)
    net = MLP(400, (300, 100), 10, init="glorot", seed=0)
    assert net.params["W2"].std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    net = MLP(400, (300, 100), 10, std=1e-3, seed=0)
    assert net.params["W3"].std() == pytest.approx(1e-3, rel=0.1)
    assert all((net.params[f"b{k}"] == 0).all() for k in (1, 2, 3))
    float32 = MLP(400, (300, 100), 10, dtype=np.float32, seed=0)
    assert all(p.dtype == np.float32 for p in float32.params.values())
    assert (float32.params["W1"] == MLP(400, (300, 100), 10, seed=0).params["W1"].astype(
        np.float32)).all()  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "gelu"])
@pytest.mark.parametrize("hidden", DEPTHS, ids=len)
def test_dropout_trains_like_the_reference(hidden, activation, dtype):
    """The same units dropped, step by step (tanh and sigmoid read their activations back,
    which dropout must not change)."""
    net, twin = pair(hidden, dtype, activation=activation)
    X, y = data(200)
    kwargs = dict(learning_rate=0.05, num_iters=30, batch_size=32, optimizer="adam",
                  dropout=0.4)  # fmt: skip
    stats = net.train(X, y, X[:50], y[:50], **kwargs)
    ref_stats = twin.train(X, y, X[:50], y[:50], **kwargs)
    tol = TOL[dtype] if dtype == np.float64 else 1e-3
    assert_params_close(net.params, twin.params, tol, "dropout")
    losses = {"loss": np.array(stats["loss_history"])}
    assert_params_close(losses, {"loss": np.array(ref_stats["loss_history"])}, tol, "")


def test_dropout_masks():
    from mlp_numba._dropout import masks

    factors = masks(123, 7, (784, 512, 256, 10), 200, 0.3, np.float32)
    assert [f.shape for f in factors] == [(200, 512), (200, 256)]
    for f in factors:
        assert f.dtype == np.float32 and set(np.unique(f)) == {0, np.float32(1 / 0.7)}
        assert (f == 0).mean() == pytest.approx(0.3, abs=0.01)
    assert not np.array_equal(factors[0], masks(123, 8, (784, 512, 256, 10), 200, 0.3,
                                                np.float32)[0])  # fmt: skip
    assert not (masks(1, 1, (4, 50, 3), 10, 0.0, np.float64)[0] == 0).any()


def test_dropout_changes_training_but_not_prediction():
    X, y = data(200)
    plain, dropped = (MLP(D, (32, 16), C, seed=0) for _ in range(2))
    kwargs = dict(learning_rate=0.1, num_iters=20, batch_size=20)
    plain.train(X, y, X, y, **kwargs)
    dropped.train(X, y, X, y, dropout=0.5, **kwargs)
    assert not np.array_equal(plain.params["W1"], dropped.params["W1"])
    dropped_again = MLP(D, (32, 16), C, seed=0)
    dropped_again.train(X, y, X, y, dropout=0.5, **kwargs)  # the same seed, the same masks
    assert all(np.array_equal(dropped_again.params[k], p) for k, p in dropped.params.items())
    # Inverted dropout: loss and predict run the whole net, unscaled.
    twin = ref.MLP(D, (32, 16), C, seed=0)
    twin.params = {k: p.copy() for k, p in dropped.params.items()}
    assert_rel(twin.loss(X), dropped.loss(X), 1e-12, "scores")


@pytest.mark.parametrize(
    ("dropout", "error", "match"),
    [(1.0, ValueError, "dropout must be < 1"), (-0.1, ValueError, "dropout must be >= 0"),
     ("0.2", TypeError, "dropout must be a real number")],
)  # fmt: skip
def test_bad_dropout_is_named(dropout, error, match):
    X, y = data()
    with pytest.raises(error, match=match):
        MLP(D, (8,), C, seed=0).train(X, y, X, y, num_iters=1, dropout=dropout)


def test_the_course_net_takes_no_dropout():
    X, y = data()
    for cls in (TwoLayerNet, ref.TwoLayerNet):
        with pytest.raises(ValueError, match=r"use mlp_numba\.MLP"):
            cls(D, 8, C, seed=0).train(X, y, X, y, num_iters=1, dropout=0.2)


DETERMINISM = """
import hashlib, sys
import numpy as np, numba
from mlp_numba import MLP
dtype, optimizer, dropout = sys.argv[1], sys.argv[2], float(sys.argv[3])
rng = np.random.default_rng(3)
X = rng.standard_normal((1000, 600)); y = rng.integers(0, 10, 1000)
net = MLP(600, (256, 120, 64), 10, dtype=dtype, seed=11)
stats = net.train(X, y, X[:200], y[:200], learning_rate=0.01, num_iters=25, batch_size=200,
                  optimizer=optimizer, dropout=dropout)
h = hashlib.sha256()
for p in net.params.values():
    h.update(p.tobytes())
h.update(np.asarray(stats["loss_history"]).tobytes())
h.update(net.predict_proba(X).tobytes())
print(numba.get_num_threads(), h.hexdigest())
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dtype", "optimizer", "dropout"),
    [("float64", "sgd", 0.0), ("float32", "adam", 0.0), ("float32", "nesterov", 0.3)],
)
def test_bitwise_identical_with_1_and_2_threads(dtype, optimizer, dropout):
    digests = []
    for threads in (1, 2):
        env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
        out = subprocess.run(
            [sys.executable, "-c", DETERMINISM, dtype, optimizer, str(dropout)],
            env=env, capture_output=True, text=True, check=True, timeout=600,
        )  # fmt: skip
        n, digest = out.stdout.split()
        assert int(n) == threads
        digests.append(digest)
    assert digests[0] == digests[1]


def test_model_file_round_trip_and_resumed_training(tmp_path):
    X, y = data(200)
    net = MLP(D, (16, 12), C, activation="leaky_relu", activation_params={"slope": 0.2},
              dtype=np.float32, seed=2)  # fmt: skip
    kwargs = dict(learning_rate=0.01, num_iters=20, batch_size=20, optimizer="adam")
    net.train(X, y, X, y, **kwargs)
    path = net.save(tmp_path / "deep", metadata={"note": "x"})
    back = MLP.load(path)
    assert repr(back) == repr(net)
    assert all(np.array_equal(back.params[k], p) for k, p in net.params.items())
    assert load_model(path).net.__class__ is MLP
    assert ref.MLP.load(path).loss(X, y)[0] == pytest.approx(net.loss(X, y)[0], rel=1e-5)
    net.train(X, y, X, y, **kwargs)
    back.train(X, y, X, y, **kwargs)  # the optimizer state and the Generator were saved
    assert all(np.array_equal(back.params[k], p) for k, p in net.params.items())
    with pytest.raises(ModelFileError, match=r"2 hidden layers.*MLP"):
        TwoLayerNet.load(path)


def test_a_two_layer_file_loads_as_an_mlp_with_one_hidden_layer(tmp_path):
    net = TwoLayerNet(D, 9, C, seed=0)
    back = MLP.load(net.save(tmp_path / "two"))
    X, _ = data()
    assert back.hidden_sizes == (9,)
    assert np.array_equal(back.loss(X), net.loss(X))


def test_divergence_stops_cleanly_with_the_params_of_the_last_good_step():
    X, y = data(200)
    X = X * 1e3
    net = MLP(D, (16, 12), C, seed=0)
    probe = MLP(D, (16, 12), C, seed=0)
    with pytest.raises(TrainingDivergedError) as info:
        net.train(X, y, X, y, learning_rate=1e30, num_iters=50, batch_size=20)
    failed = info.value.iteration
    assert len(info.value.history["loss_history"]) == failed
    if failed:
        probe.train(X, y, X, y, learning_rate=1e30, num_iters=failed, batch_size=20)
    assert all(np.array_equal(probe.params[k], p) for k, p in net.params.items())
    assert all(np.isfinite(p).all() for p in net.params.values())


def test_assigned_params_are_used_and_training_updates_the_dict():
    net = MLP(D, (8, 6), C, seed=0)
    X, y = data()
    replacement = np.full((8, 6), 0.01)
    net.params["W2"] = replacement.copy()
    twin = ref.MLP(D, (8, 6), C, seed=0)
    twin.params["W2"] = replacement.copy()
    assert_rel(twin.loss(X), net.loss(X), 1e-12, "scores")
    net.train(X, y, X, y, num_iters=5, batch_size=10, learning_rate=0.1)
    assert not np.array_equal(net.params["W2"], replacement)  # the dict's arrays are trained


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(hidden_sizes=()), ValueError, "at least one width"),
        (dict(hidden_sizes=100), TypeError, "hidden_sizes must be a sequence"),
        (dict(hidden_sizes="100"), TypeError, "hidden_sizes must be a sequence"),
        (dict(hidden_sizes=(10, 0)), ValueError, r"hidden_sizes\[1\] must be >= 1"),
        (dict(hidden_sizes=(10, 2.5)), TypeError, r"hidden_sizes\[1\] must be an integer"),
        (dict(init="xavier"), ValueError, "unknown init 'xavier'"),
        (dict(std=-1.0), ValueError, "std must be >= 0"),
        (dict(output_size=1), ValueError, "output_size must be >= 2"),
        (dict(activation="nope"), ValueError, "activation"),
        (dict(dtype=np.int32), TypeError, "dtype"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    arguments = dict(input_size=4, hidden_sizes=(8, 6), output_size=3) | kwargs
    with pytest.raises(error, match=match):
        MLP(**arguments)


def test_bad_inputs_are_named():
    net = MLP(D, (8, 6), C, seed=0)
    X, y = data()
    with pytest.raises(ValueError, match="X has 5 features per row but the net expects 13"):
        net.predict(X[:, :5])
    with pytest.raises(ValueError, match="y"):
        net.loss(X, y + C)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="X"):
        net.predict(bad)
    with pytest.raises(ValueError, match=r"params\['W3'\] must have shape \(6, 5\)"):
        net.params["W3"] = np.zeros((6, 4))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_allocates_nothing_per_step(optimizer):
    """The buffers are allocated once per ``train`` call. 20x more steps raise the peak only by
    what Python keeps per step (the minibatch's row numbers, drawn a block of steps at a
    time, and the loss history): under 900 bytes a step, where one step's activations alone
    are 150 KB."""
    import tracemalloc

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((2000, 300)).astype(np.float32), rng.integers(0, 10, 2000)
    net = MLP(300, (256, 128), 10, dtype=np.float32, seed=0)
    kwargs = dict(batch_size=100, learning_rate=1e-3, optimizer=optimizer, dropout=0.1,
                  iterations_per_epoch=10**6)  # fmt: skip
    net.train(X, y, X[:10], y[:10], num_iters=2, **kwargs)
    peaks = []
    for steps in (20, 400):
        tracemalloc.start()
        net.train(X, y, X[:10], y[:10], num_iters=steps, **kwargs)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] - peaks[0] < 380 * (100 * 8 + 100)
