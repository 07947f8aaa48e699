import random

import numpy as np
import pytest

import course
from mlp_numba import TwoLayerNet
from mlp_numba.gradient_check import (
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    grad_check_sparse,
    rel_error,
)


def test_numerical_gradient_of_a_known_function(capsys):
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    original = x.copy()
    grad = eval_numerical_gradient(lambda x: np.sum(x**3), x, verbose=True)
    np.testing.assert_allclose(grad, 3 * original**2, rtol=1e-8)
    assert np.array_equal(x, original), "x must be restored"
    assert capsys.readouterr().out.count("\n") == 4


def test_rel_error_is_the_course_definition():
    assert rel_error(np.array([1.0, 0.0]), np.array([1.0, 0.0])) == 0.0
    assert rel_error(1.0, 3.0) == pytest.approx(0.5)
    assert rel_error(0.0, 1e-10) == pytest.approx(1e-10 / 1e-8)


def test_x_must_be_an_array():
    with pytest.raises(TypeError, match="x must be a numpy array"):
        eval_numerical_gradient(lambda x: 0.0, [1.0, 2.0])


def _layer():
    """An affine layer with a ReLU, and its input and upstream gradient, as the course's
    layer notebooks check them."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 5))
    w = rng.standard_normal((5, 3))
    dout = rng.standard_normal((4, 3))
    return (lambda x: np.maximum(x @ w, 0)), x, w, dout


def test_eval_numerical_gradient_array_is_the_courses():
    f, x, w, dout = _layer()
    original = x.copy()
    ours = eval_numerical_gradient_array(f, x, dout)
    assert np.array_equal(x, original), "x must be restored"
    theirs = course.eval_numerical_gradient_array(f, x, dout)
    assert np.array_equal(ours, theirs)
    analytic = (dout * (x @ w > 0)) @ w.T
    assert rel_error(ours, analytic) < 1e-8


def test_grad_check_sparse_checks_the_courses_elements_and_prints_its_lines(capsys):
    net = TwoLayerNet(5, 4, 3, std=0.1, seed=0)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((6, 5)), np.array([0, 1, 2, 0, 1, 2])
    _, grads = net.loss(X, y, reg=0.05)
    W1 = net.params["W1"]
    before = W1.copy()

    def f(_):
        return net.loss(X, y, reg=0.05)[0]

    random.seed(7)
    grad_check_sparse(f, W1, grads["W1"], num_checks=6)
    ours = capsys.readouterr().out
    random.seed(7)
    course.grad_check_sparse(f, W1, grads["W1"], num_checks=6)
    theirs = capsys.readouterr().out
    assert ours == theirs and ours.count("\n") == 6
    assert np.array_equal(W1, before)
    errors = [float(line.rsplit(" ", 1)[1]) for line in ours.splitlines()]
    assert max(errors) < 1e-6


def test_grad_check_sparse_rejects_bad_arguments():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="analytic_grad must be shaped like x"):
        grad_check_sparse(lambda x: 0.0, x, np.zeros(3))
    with pytest.raises(TypeError, match="num_checks must be an int"):
        grad_check_sparse(lambda x: 0.0, x, x, num_checks=2.5)
    with pytest.raises(ValueError, match="num_checks must be >= 0"):
        grad_check_sparse(lambda x: 0.0, x, x, num_checks=-1)
    with pytest.raises(TypeError, match="x must be a numpy array"):
        eval_numerical_gradient_array(lambda x: x, [1.0], np.ones(1))
    with pytest.raises(ValueError, match="df must be shaped like f"):
        eval_numerical_gradient_array(lambda x: 2 * x, np.ones(3), np.ones(2))


def test_docstring_examples():
    import doctest

    import mlp_numba.gradient_check as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 4 and result.failed == 0
