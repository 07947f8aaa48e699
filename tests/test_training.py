"""Training behaviour beyond the course's numbers: dtypes, divergence, edge sizes."""

import numpy as np
import pytest

from mlp_numba import TrainingDivergedError, TwoLayerNet
from mlp_numba import reference as ref_module

rng = np.random.default_rng(1)
X = rng.standard_normal((60, 5))
y = rng.integers(0, 3, 60)


@pytest.mark.parametrize("cls", [TwoLayerNet, ref_module.TwoLayerNet])
def test_float32_stays_float32(cls):
    net = cls(5, 8, 3, std=0.1, dtype=np.float32, seed=0)
    stats = net.train(X, y, X, y, learning_rate=0.1, num_iters=15, batch_size=10)
    assert all(p.dtype == np.float32 for p in net.params.values())
    assert all(isinstance(v, np.float32) for v in stats["loss_history"])
    loss, grads = net.loss(X, y, reg=0.1)
    assert isinstance(loss, np.float32)
    assert all(g.dtype == np.float32 for g in grads.values())
    assert net.loss(X).dtype == np.float32 and net.predict_proba(X).dtype == np.float32


# The reference's NumPy reports the overflow that leads to the divergence as it happens.
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("cls", [TwoLayerNet, ref_module.TwoLayerNet])
def test_divergence_stops_with_error_and_keeps_finite_params(cls):
    net = cls(5, 8, 3, std=1.0, seed=0)
    Xbig = 1e3 * X
    with pytest.raises(TrainingDivergedError, match=r"diverged at iteration (\d+)") as info:
        net.train(
            Xbig,
            y,
            Xbig,
            y,
            learning_rate=1e12,
            learning_rate_decay=1.0,
            num_iters=500,
            batch_size=10,
        )
    err = info.value
    assert err.iteration >= 1
    assert len(err.history["loss_history"]) == err.iteration
    assert all(np.isfinite(err.history["loss_history"]))
    for p in net.params.values():
        assert np.isfinite(p).all()
    # The error is an ArithmeticError a user can catch as FloatingPointError.
    assert isinstance(err, FloatingPointError)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_matches_reference():
    kw = dict(learning_rate=1e12, learning_rate_decay=1.0, num_iters=500, batch_size=10)
    found = []
    for cls in (TwoLayerNet, ref_module.TwoLayerNet):
        net = cls(5, 8, 3, std=1.0, seed=0)
        with pytest.raises(TrainingDivergedError) as info:
            net.train(1e3 * X, y, X, y, **kw)
        found.append((info.value.iteration, net.params["W2"].copy()))
    assert found[0][0] == found[1][0]
    np.testing.assert_allclose(found[0][1], found[1][1], rtol=1e-9)


def test_zero_iterations_returns_empty_histories():
    net = TwoLayerNet(5, 8, 3, seed=0)
    before = net.params["W1"].copy()
    stats = net.train(X, y, X, y, num_iters=0)
    assert stats == {"loss_history": [], "train_acc_history": [], "val_acc_history": []}
    assert np.array_equal(net.params["W1"], before)


def test_params_are_updated_in_place():
    net = TwoLayerNet(5, 8, 3, std=0.1, seed=0)
    W1 = net.params["W1"]
    before = W1.copy()
    net.train(X, y, X, y, num_iters=5, batch_size=10)
    assert net.params["W1"] is W1 and not np.array_equal(W1, before)


def test_training_learns_a_separable_problem():
    r = np.random.default_rng(4)
    centres = 4 * r.standard_normal((3, 5))
    yy = r.integers(0, 3, 600)
    XX = centres[yy] + r.standard_normal((600, 5))
    net = TwoLayerNet(5, 20, 3, std=0.1, seed=0)
    stats = net.train(XX, yy, XX, yy, learning_rate=0.1, num_iters=300, batch_size=50)
    assert stats["val_acc_history"][-1] > 0.9
    assert np.mean(stats["loss_history"][-20:]) < np.mean(stats["loss_history"][:20])
    assert (net.predict(XX) == yy).mean() > 0.9


def test_predict_and_predict_proba_agree():
    net = TwoLayerNet(5, 8, 3, std=0.5, seed=0)
    p = net.predict_proba(X)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    assert np.array_equal(net.predict(X), np.argmax(net.loss(X), axis=1))
    assert np.array_equal(net.predict(X), np.argmax(p, axis=1))


def test_repr_names_the_configuration():
    net = TwoLayerNet(
        5, 8, 3, activation="leaky_relu", activation_params={"slope": 0.2}, dtype="float32"
    )
    assert repr(net) == (
        "TwoLayerNet(input_size=5, hidden_size=8, output_size=3, "
        "activation='leaky_relu', slope=0.2, dtype=float32)"
    )


def test_callback_sees_progress_and_can_stop_training():
    seen = []

    def stop_after_300(progress):
        seen.append(progress.iteration)
        assert progress.num_iters == 1000 and np.isfinite(progress.loss)
        assert progress.val_acc is None or 0 <= progress.val_acc <= 1
        return progress.iteration < 300

    net = TwoLayerNet(5, 8, 3, std=0.1, seed=0)
    stats = net.train(
        X, y, X, y, learning_rate=0.1, num_iters=1000, batch_size=10, callback=stop_after_300
    )
    assert seen == sorted(seen) and len(seen) >= 2 and seen[-1] >= 300
    assert len(stats["loss_history"]) == seen[-1]
    # Stopping after k iterations leaves exactly what a k-iteration run gives.
    twin = TwoLayerNet(5, 8, 3, std=0.1, seed=0)
    twin_stats = twin.train(X, y, X, y, learning_rate=0.1, num_iters=seen[-1], batch_size=10)
    assert twin.params["W1"].tobytes() == net.params["W1"].tobytes()
    assert twin_stats["val_acc_history"] == stats["val_acc_history"]


def test_callback_does_not_change_results():
    a, b = (TwoLayerNet(5, 8, 3, std=0.1, seed=0) for _ in range(2))
    a.train(X, y, X, y, learning_rate=0.1, num_iters=700, batch_size=10)
    b.train(X, y, X, y, learning_rate=0.1, num_iters=700, batch_size=10, callback=lambda p: None)
    assert a.params["W2"].tobytes() == b.params["W2"].tobytes()


def test_whole_number_epochs_on_request():
    # 60 rows / 7 per batch: the course's float epoch (8.57...) only ends at it = 0.
    course = TwoLayerNet(5, 8, 3, std=0.1, seed=0).train(
        X, y, X, y, learning_rate=0.1, num_iters=40, batch_size=7
    )
    assert len(course["val_acc_history"]) == 1
    whole = TwoLayerNet(5, 8, 3, std=0.1, seed=0).train(
        X, y, X, y, learning_rate=0.1, num_iters=40, batch_size=7, iterations_per_epoch=9
    )
    assert len(whole["val_acc_history"]) == 5  # it = 0, 9, 18, 27, 36
    with pytest.raises(ValueError, match="iterations_per_epoch must be >= 1"):
        TwoLayerNet(5, 8, 3).train(X, y, X, y, iterations_per_epoch=0)
    with pytest.raises(TypeError, match="iterations_per_epoch must be an integer"):
        TwoLayerNet(5, 8, 3).train(X, y, X, y, iterations_per_epoch=8.5)


def test_progress_bar_shows_training_and_changes_nothing(capsys):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((300, 8)), rng.integers(0, 3, 300)
    runs = []
    for progress in (False, True):
        net = TwoLayerNet(8, 6, 3, std=0.1, seed=0)
        stats = net.train(X, y, X, y, num_iters=120, batch_size=30, learning_rate=0.1,
                          progress=progress)  # fmt: skip
        runs.append((net.params["W1"].copy(), stats["loss_history"], capsys.readouterr().err))
    (quiet_W1, quiet_losses, quiet_err), (W1, losses, err) = runs
    assert np.array_equal(W1, quiet_W1) and losses == quiet_losses
    assert quiet_err == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("train: 100%") and "120/120" in last and "val_acc" in last


def test_progress_must_be_a_bool_and_needs_tqdm(monkeypatch):
    import sys

    net = TwoLayerNet(4, 3, 2, std=0.1, seed=0)
    X, y = np.zeros((10, 4)), np.zeros(10, int)
    with pytest.raises(TypeError, match="progress must be True or False"):
        net.train(X, y, X, y, num_iters=2, progress="yes")
    monkeypatch.setitem(sys.modules, "tqdm", None)
    with pytest.raises(ImportError, match="progress=True needs tqdm"):
        net.train(X, y, X, y, num_iters=2, progress=True)
    # Without tqdm, training without a bar works.
    assert len(net.train(X, y, X, y, num_iters=2, batch_size=5)["loss_history"]) == 2
