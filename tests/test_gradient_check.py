import numpy as np
import pytest

from mlp_numba.gradient_check import eval_numerical_gradient, rel_error


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
