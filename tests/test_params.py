"""Live params: ``net.params[k]`` is the array the engine reads and writes, from construction
on, for every net; what a caller holds stays the parameter."""

import copy
import pickle

import joblib
import numpy as np
import pytest

from mlp_numba import MLP, TwoLayerNet, reference
from mlp_numba.gradient_check import eval_numerical_gradient, rel_error

rng = np.random.default_rng(0)
X = rng.standard_normal((12, 5))
y = rng.integers(0, 3, 12)


def _nets():
    return [
        TwoLayerNet(5, 7, 3, std=0.1, seed=0),
        MLP(5, (7, 4), 3, seed=0),
        MLP(5, (6,), 3, seed=1, dtype=np.float32),
        reference.TwoLayerNet(5, 7, 3, std=0.1, seed=0),
        reference.MLP(5, (7, 4), 3, seed=0),
    ]


NETS = _nets()
IDS = [f"{type(n).__module__.split('.')[-1]}.{type(n).__name__}-{n.dtype}" for n in NETS]


@pytest.fixture(params=range(len(NETS)), ids=IDS)
def net(request):
    return _nets()[request.param]


@pytest.mark.parametrize("cls", [TwoLayerNet, MLP])
def test_the_course_gradient_check_works_on_a_fresh_net(cls):
    """The course's check perturbs ``net.params[name]`` in place; on a net that has never run,
    the engine must see each perturbation (it saw none when the params were repacked on the
    first call)."""
    net = cls(5, 7, 3, std=0.5, seed=0) if cls is TwoLayerNet else cls(5, (7, 4), 3, seed=0)
    _, grads = net.loss(X, y, reg=0.1)
    fresh = cls(5, 7, 3, std=0.5, seed=0) if cls is TwoLayerNet else cls(5, (7, 4), 3, seed=0)
    for name in fresh.params:
        numerical = eval_numerical_gradient(
            lambda _: fresh.loss(X, y, reg=0.1)[0], fresh.params[name], verbose=False
        )
        assert np.abs(numerical).max() > 0, name
        assert rel_error(numerical, grads[name]) < 1e-7, name


def test_a_held_array_stays_the_parameter(net):
    W1 = net.params["W1"]
    before = net.loss(X)
    W1 *= 2.0  # an edit in place takes effect at the next call
    after = net.loss(X)
    assert not np.array_equal(before, after)
    net.train(X, y, X, y, num_iters=3, batch_size=4, learning_rate=0.1)
    assert net.params["W1"] is W1
    net.predict(X)
    W1[...] = 0.0
    np.testing.assert_array_equal(net.params["W1"], 0.0)
    twin = copy.deepcopy(net)
    np.testing.assert_array_equal(twin.loss(X), net.loss(X))


def test_assignment_copies_into_the_parameter(net):
    W2 = net.params["W2"]
    new = np.full(W2.shape, 0.25, net.dtype)
    net.params["W2"] = new
    assert net.params["W2"] is W2 and np.array_equal(W2, new)
    new[...] = 1.0  # the caller's array is not the parameter
    assert (W2 == 0.25).all()
    fortran = np.asfortranarray(np.arange(W2.size, dtype=net.dtype).reshape(W2.shape))
    net.params["W2"] = fortran
    np.testing.assert_array_equal(net.params["W2"], fortran)
    scores = net.loss(X)
    twin = copy.deepcopy(net)
    twin.params = {k: p.copy() for k, p in net.params.items()}
    np.testing.assert_array_equal(twin.loss(X), scores)


def test_replacing_the_whole_dict_copies_in_and_takes_effect(net):
    held = dict(net.params)
    other = type(net)(
        *((5, 7, 3) if "TwoLayer" in type(net).__name__ else (5, net.hidden_sizes, 3)),
        seed=9,
        dtype=net.dtype,
    )
    net.params = {k: p.copy() for k, p in other.params.items()}
    for k, p in held.items():
        assert net.params[k] is p
        np.testing.assert_array_equal(p, other.params[k])
    np.testing.assert_array_equal(net.loss(X), other.loss(X))


@pytest.mark.parametrize(
    "roundtrip",
    [
        copy.deepcopy,
        lambda n: pickle.loads(pickle.dumps(n)),
        "joblib",
    ],
    ids=["deepcopy", "pickle", "joblib"],
)
def test_copies_keep_live_params(net, roundtrip, tmp_path):
    net.train(X, y, X, y, num_iters=2, batch_size=4, learning_rate=0.1, optimizer="adam")
    if roundtrip == "joblib":
        joblib.dump(net, tmp_path / "net.joblib")
        twin = joblib.load(tmp_path / "net.joblib")
    else:
        twin = roundtrip(net)
    for k, p in net.params.items():
        np.testing.assert_array_equal(twin.params[k], p)
    np.testing.assert_array_equal(twin.loss(X), net.loss(X))
    held = twin.params["b1"]
    saved = held.copy()
    held += 1.0
    assert not np.array_equal(twin.loss(X), net.loss(X))
    assert twin.params["b1"] is held
    # Both resume the same Adam state: the same steps give the same bits.
    held[...] = saved
    if net._rng is not None:
        twin._rng = copy.deepcopy(net._rng)
    kw = dict(num_iters=3, batch_size=4, learning_rate=0.1, optimizer="adam")
    net.train(X, y, X, y, **kw)
    twin.train(X, y, X, y, **kw)
    for k, p in net.params.items():
        np.testing.assert_array_equal(twin.params[k], p)


def test_params_pickle_alone_as_a_plain_dict():
    net = MLP(5, (4,), 3, seed=0)
    assert isinstance(net.params, dict)  # as the course's params are
    back = pickle.loads(pickle.dumps(net.params))
    assert type(back) is dict and set(back) == {"W1", "b1", "W2", "b2"}
    for k, p in back.items():
        np.testing.assert_array_equal(p, net.params[k])
        assert not np.shares_memory(p, net.params[k])
