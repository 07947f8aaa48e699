"""Optimizers and schedules: compiled == reference for each, state kept across calls and files."""

import numba
import numpy as np
import pytest

from mlp_numba import TwoLayerNet, reference
from mlp_numba._optimizer_spec import OPTIMIZERS, SCHEDULES
from mlp_numba.gradient_check import rel_error

rng = np.random.default_rng(3)
X = rng.standard_normal((80, 9))
y = rng.integers(0, 4, 80)
TOL = {np.float64: 1e-10, np.float32: 2e-4}


def _pair(dtype, **net_kw):
    return (cls(9, 12, 4, std=0.1, dtype=dtype, seed=5, **net_kw)
            for cls in (TwoLayerNet, reference.TwoLayerNet))  # fmt: skip


def _train(net, **kw):
    args = dict(learning_rate=0.01, learning_rate_decay=0.9, reg=1e-3, num_iters=45,
                batch_size=10, iterations_per_epoch=8)  # fmt: skip
    return net.train(X, y, X, y, **{**args, **kw})


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_each_optimizer_matches_the_reference(dtype, optimizer):
    ours, ref = _pair(dtype)
    h1 = _train(ours, optimizer=optimizer)
    h2 = _train(ref, optimizer=optimizer)
    for key in ours.params:
        assert ours.params[key].dtype == dtype
        assert rel_error(ours.params[key], ref.params[key]) < TOL[dtype], key
    np.testing.assert_allclose(h1["loss_history"], h2["loss_history"], rtol=TOL[dtype])
    assert ours.optimizer_state["step"] == ref.optimizer_state["step"] == 45
    for mine, theirs in zip(ours.optimizer_state["buffers"], ref.optimizer_state["buffers"],
                            strict=True):  # fmt: skip
        for key in mine:
            assert rel_error(mine[key], theirs[key]) < TOL[dtype] * 10


@pytest.mark.parametrize("schedule", list(SCHEDULES))
@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_each_schedule_matches_the_reference(schedule, optimizer):
    ours, ref = _pair(np.float64)
    params = {"cosine": {"min_lr": 1e-4}, "invscaling": {"power_t": 0.3}}.get(schedule)
    _train(ours, optimizer=optimizer, schedule=schedule, schedule_params=params)
    _train(ref, optimizer=optimizer, schedule=schedule, schedule_params=params)
    for key in ours.params:
        assert rel_error(ours.params[key], ref.params[key]) < 1e-10


def test_optimizer_params_are_used():
    a, b = (TwoLayerNet(9, 12, 4, std=0.1, seed=5) for _ in range(2))
    _train(a, optimizer="momentum", optimizer_params={"momentum": 0.5})
    _train(b, optimizer="momentum")
    assert not np.array_equal(a.params["W1"], b.params["W1"])
    c = TwoLayerNet(9, 12, 4, std=0.1, seed=5)
    _train(c, optimizer="momentum", optimizer_params={"momentum": 0.0})
    d = TwoLayerNet(9, 12, 4, std=0.1, seed=5)
    _train(d)  # momentum 0 is plain SGD
    np.testing.assert_allclose(c.params["W1"], d.params["W1"], rtol=1e-12)


@pytest.mark.parametrize("optimizer", ["momentum", "nesterov", "adam"])
def test_training_resumes_where_it_stopped(tmp_path, optimizer):
    kw = dict(optimizer=optimizer, schedule="constant")
    whole = TwoLayerNet(9, 12, 4, std=0.1, seed=5)
    _train(whole, num_iters=40, **kw)
    halves = TwoLayerNet(9, 12, 4, std=0.1, seed=5)
    _train(halves, num_iters=20, **kw)
    path = halves.save(tmp_path / "half.npz")
    resumed = TwoLayerNet.load(path)  # the optimizer state and the Generator travel with it
    assert resumed.optimizer_state["step"] == 20
    _train(resumed, num_iters=20, **kw)
    _train(halves, num_iters=20, **kw)
    for key in whole.params:
        assert halves.params[key].tobytes() == whole.params[key].tobytes()
        assert resumed.params[key].tobytes() == whole.params[key].tobytes()


def test_changing_optimizer_starts_a_fresh_state():
    net = TwoLayerNet(9, 12, 4, std=0.1, seed=5)
    _train(net, optimizer="adam", num_iters=5)
    assert net.optimizer_state["name"] == "adam" and net.optimizer_state["step"] == 5
    _train(net, optimizer="momentum", num_iters=3)
    assert net.optimizer_state["name"] == "momentum" and net.optimizer_state["step"] == 3


@pytest.mark.parametrize("optimizer", ["momentum", "nesterov", "adam", "adamw"])
def test_every_optimizer_learns_a_separable_problem(optimizer):
    data = np.random.default_rng(0)
    X2 = data.standard_normal((300, 9))
    y2 = np.argmax(X2 @ data.standard_normal((9, 4)), axis=1)
    net = TwoLayerNet(9, 30, 4, std=0.1, seed=0)
    net.train(X2, y2, X2, y2, learning_rate=0.01, num_iters=400, batch_size=30,
              optimizer=optimizer, schedule="constant")  # fmt: skip
    assert (net.predict(X2) == y2).mean() > 0.9


@pytest.mark.parametrize(
    ("kw", "error", "message"),
    [
        ({"optimizer": "rmsprop"}, ValueError, "unknown optimizer 'rmsprop'; valid names: sgd"),
        ({"optimizer": 3}, TypeError, "optimizer must be a string"),
        ({"optimizer": "momentum", "optimizer_params": {"momentum": 1.5}}, ValueError, r"\[0, 1\)"),
        ({"optimizer": "adam", "optimizer_params": {"lr": 1}}, ValueError, "does not take"),
        ({"optimizer": "adam", "optimizer_params": {"eps": 0}}, ValueError, "eps"),
        ({"optimizer": "sgd", "optimizer_params": [1]}, TypeError, "optimizer_params must be"),
        ({"schedule": "linear"}, ValueError, "unknown schedule 'linear'"),
        ({"schedule": "cosine", "schedule_params": {"min_lr": -1}}, ValueError, ">= 0"),
    ],
)
@pytest.mark.parametrize("cls", [TwoLayerNet, reference.TwoLayerNet])
def test_bad_optimizer_arguments(cls, kw, error, message):
    net = cls(9, 12, 4, seed=0)
    before = net.params["W1"].copy()
    with pytest.raises(error, match=message):
        _train(net, **kw)
    np.testing.assert_array_equal(net.params["W1"], before)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_one_compiled_update_is_the_reference_bit_for_bit(dtype, optimizer):
    """The update pass (L2 term added on the fly, then the optimizer) rounds like the reference:
    no fast-math reordering reaches its arithmetic. 1000 elements span several chunks."""
    from mlp_numba._engine.kernels.reductions import flat
    from mlp_numba._engine.kernels.updates import state_slice, update_slice
    from mlp_numba._optimizer_spec import hyper_vector, resolve_optimizer

    @numba.njit  # the kernels take compiled callers
    def update(code, W, G, s1, s2, lr, reg, hyper, step):
        n = W.size
        return update_slice(
            code, flat(W), flat(G), state_slice(s1, 0, n), state_slice(s2, 0, n),
            lr, reg, hyper, step,
        )  # fmt: skip

    r = np.random.default_rng(7)
    W, G, M = (r.standard_normal((100, 10)).astype(dtype) * dtype(s) for s in (1, 1e-3, 1e-3))
    V = np.abs(r.standard_normal((100, 10))).astype(dtype) * dtype(1e-6)
    _, values = resolve_optimizer(optimizer)
    code, _, n_buffers = OPTIMIZERS[optimizer]
    lr, reg, step = dtype(0.01), dtype(1e-3), 3
    mine = [W.copy(), M.copy(), V.copy()]
    theirs = [W.copy(), M.copy(), V.copy()]
    state = mine[1:] if n_buffers else [np.empty(0, dtype)] * 2
    norm = update(code, mine[0], G, *state, lr, reg, hyper_vector(optimizer, values), step)
    full_grad = G + dtype(2) * reg * theirs[0]
    reference.optimizer_update(optimizer, values, theirs[0], full_grad, theirs[1:1 + n_buffers],
                               lr, step)  # fmt: skip
    for a, b in zip(mine, theirs, strict=True):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(norm, np.sum(theirs[0].astype(np.float64) ** 2), rtol=1e-5)
