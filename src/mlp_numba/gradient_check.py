"""Numerical gradients, as the CS231n notebooks use them to check analytic ones."""

from __future__ import annotations

import numpy as np


def eval_numerical_gradient(f, x, verbose=True, h=1e-5):
    """Centred-difference gradient of the scalar function ``f`` at ``x``.

    ``x`` is perturbed in place, one element at a time, and restored: pass the array ``f``
    reads (e.g. ``net.params["W1"]``) with ``f`` ignoring its argument, as the course does.

    Parameters
    ----------
    f : callable
        ``f(x)`` returns a scalar.
    x : ndarray
        The point; modified during the call and restored exactly afterwards.
    verbose : bool, default True
        Print each index and its gradient, as the course's function does.
    h : float, default 1e-5
        The step.

    Returns
    -------
    ndarray
        The gradient, shaped like x (float64 when x is float64).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([1.0, 2.0])
    >>> g = eval_numerical_gradient(lambda x: float(np.sum(x**2)), x, verbose=False)
    >>> bool(np.allclose(g, [2.0, 4.0]))
    True
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"x must be a numpy array (it is perturbed in place), got {type(x).__name__}"
        )
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        fxph = f(x)
        x[ix] = old - h
        fxmh = f(x)
        x[ix] = old
        grad[ix] = (fxph - fxmh) / (2 * h)
        if verbose:
            print(ix, grad[ix])
        it.iternext()
    return grad


def rel_error(x, y):
    """Largest relative error between x and y: ``max(|x - y| / max(1e-8, |x| + |y|))``.

    Examples
    --------
    >>> rel_error(1.0, 1.0 + 1e-9) < 1e-9
    True
    """
    x, y = np.asarray(x), np.asarray(y)
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))
