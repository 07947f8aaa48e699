"""The course notebook's checks, unchanged, and the course's training loop to the letter."""

import contextlib
import io

import numpy as np
import pytest

from conftest import assert_rel
from course import CourseTwoLayerNet
from mlp_numba import TwoLayerNet
from mlp_numba import reference as ref_module
from mlp_numba.gradient_check import eval_numerical_gradient, rel_error

# The values the course notebook prints as correct for the toy net and data.
CORRECT_SCORES = np.asarray(
    [
        [-0.81233741, -1.27654624, -0.70335995],
        [-0.17129677, -1.18803311, -0.47310444],
        [-0.51590475, -1.01354314, -0.8504215],
        [-0.15419291, -0.48629638, -0.52901952],
        [-0.00618733, -0.12435261, -0.15226949],
    ]
)
CORRECT_LOSS = 1.30378789133


def toy_net(cls):
    np.random.seed(0)
    return cls(4, 10, 3, std=1e-1)


@pytest.mark.parametrize("cls", [TwoLayerNet, ref_module.TwoLayerNet])
def test_toy_scores_and_loss(cls, toy):
    X, y = toy
    net = toy_net(cls)
    assert np.sum(np.abs(net.loss(X) - CORRECT_SCORES)) < 1e-7
    loss, _ = net.loss(X, y, reg=0.05)
    assert abs(loss - CORRECT_LOSS) < 1e-12


def test_toy_compiled_equals_reference(toy):
    X, y = toy
    net, ref = toy_net(TwoLayerNet), toy_net(ref_module.TwoLayerNet)
    assert_rel(ref.loss(X), net.loss(X), 1e-12)
    loss, grads = net.loss(X, y, reg=0.05)
    ref_loss, ref_grads = ref.loss(X, y, reg=0.05)
    assert abs(loss - ref_loss) <= 1e-12
    for k in grads:
        assert_rel(ref_grads[k], grads[k], 1e-12, k)


def test_toy_gradient_check(toy):
    X, y = toy
    net = toy_net(TwoLayerNet)
    _, grads = net.loss(X, y, reg=0.05)
    for name in grads:
        f = lambda W: net.loss(X, y, reg=0.05)[0]  # noqa: E731 (as the notebook writes it)
        param_grad_num = eval_numerical_gradient(f, net.params[name], verbose=False)
        assert rel_error(param_grad_num, grads[name]) < 1e-8, name


@pytest.mark.parametrize("cls", [TwoLayerNet, ref_module.TwoLayerNet])
def test_toy_training(cls, toy):
    X, y = toy
    net = toy_net(cls)
    stats = net.train(X, y, X, y, learning_rate=1e-1, reg=5e-6, num_iters=100, verbose=False)
    assert stats["loss_history"][-1] < 0.02


@pytest.mark.parametrize(
    "num_train,batch_size,num_iters,epochs",
    [
        (300, 50, 40, 7),  # 6 iterations an epoch
        (250, 60, 30, 1),  # 4.1666... an epoch: the course's float modulo is true at it=0 only
        (30, 200, 12, 12),  # batch larger than the data: an epoch every iteration
        (1050, 7, 700, 5),
    ],  # 150 an epoch: several compiled blocks and verbose lines
)
def test_train_follows_the_course_loop(num_train, batch_size, num_iters, epochs):
    rng = np.random.default_rng(num_train)
    X = rng.standard_normal((num_train, 12))
    y = rng.integers(0, 4, num_train)
    Xv, yv = rng.standard_normal((45, 12)), rng.integers(0, 4, 45)
    kw = dict(
        learning_rate=0.5,
        learning_rate_decay=0.9,
        reg=1e-3,
        num_iters=num_iters,
        batch_size=batch_size,
        verbose=True,
    )

    runs = []
    for cls in (CourseTwoLayerNet, TwoLayerNet):
        np.random.seed(7)
        net = cls(12, 9, 4, std=0.1)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            stats = net.train(X, y, Xv, yv, **kw)
        runs.append((net, stats, out.getvalue(), np.random.get_state()[1].copy()))

    (course, cs, course_out, course_state), (net, s, out, state) = runs
    assert len(s["loss_history"]) == num_iters
    assert_rel(cs["loss_history"], s["loss_history"], 1e-9, "loss_history")
    assert_rel(cs["train_acc_history"], s["train_acc_history"], 1e-9, "train_acc_history")
    assert_rel(cs["val_acc_history"], s["val_acc_history"], 1e-9, "val_acc_history")
    assert len(s["val_acc_history"]) == len(cs["val_acc_history"]) == epochs
    for k in course.params:
        assert_rel(course.params[k], net.params[k], 1e-9, k)
    assert out == course_out and out.startswith("iteration 0 / ")
    # The global random stream is left where the course leaves it.
    assert np.array_equal(state, course_state)
