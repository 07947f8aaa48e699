"""Numerical gradients, as the CS231n notebooks use them to check analytic ones.

A stand-in for the course's ``cs231n.gradient_check``: the same functions, arguments, printed
lines and results (``from mlp_numba.gradient_check import ...`` in place of ``from
cs231n.gradient_check import ...``).
"""

from __future__ import annotations

import random

import numpy as np


def _check_point(x):
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"x must be a numpy array (it is perturbed in place), got {type(x).__name__}"
        )


def _each_perturbation(f, x, h, *, copy):
    """For each index ``ix`` of x, in the course's order: ``(ix, f(x + h), f(x - h))`` with
    only ``x[ix]`` moved (copies of the values when ``copy``), x restored after each, also when
    ``f`` raises."""
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        try:
            x[ix] = old + h
            pos = f(x).copy() if copy else f(x)
            x[ix] = old - h
            neg = f(x).copy() if copy else f(x)
        finally:
            x[ix] = old
        yield ix, pos, neg
        it.iternext()


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
    _check_point(x)
    grad = np.zeros_like(x)
    for ix, fxph, fxmh in _each_perturbation(f, x, h, copy=False):
        grad[ix] = (fxph - fxmh) / (2 * h)
        if verbose:
            print(ix, grad[ix])
    return grad


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """Centred-difference gradient, at ``x``, of ``sum(f(x) * df)`` for an array-valued ``f``:
    the backward pass of a layer ``f`` given the upstream gradient ``df``.

    Parameters
    ----------
    f : callable
        ``f(x)`` returns an array shaped like ``df``.
    x : ndarray
        The point; modified during the call and restored exactly afterwards.
    df : ndarray
        The gradient of the loss with respect to ``f(x)``.
    h : float, default 1e-5
        The step.

    Returns
    -------
    ndarray
        The gradient, shaped like x.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([1.0, -2.0, 3.0])
    >>> dx = eval_numerical_gradient_array(lambda x: 2 * x, x, np.ones(3))
    >>> bool(np.allclose(dx, 2.0))
    True
    """
    _check_point(x)
    grad = np.zeros_like(x)
    for ix, pos, neg in _each_perturbation(f, x, h, copy=True):
        if pos.shape != np.shape(df):
            raise ValueError(f"df must be shaped like f(x), {pos.shape}; got {np.shape(df)}")
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
    return grad


def grad_check_sparse(f, x, analytic_grad, num_checks=10, h=1e-5):
    """Compare ``analytic_grad`` with centred differences at ``num_checks`` random elements of
    ``x``, printing a line for each, as the course's function does.

    The elements are drawn with Python's ``random.randrange`` (seed it with ``random.seed``),
    as in the course, so a seeded notebook checks the same elements.

    Parameters
    ----------
    f : callable
        ``f(x)`` returns a scalar.
    x : ndarray
        The point; modified during the call and restored exactly afterwards.
    analytic_grad : ndarray
        The gradient to check, shaped like x.
    num_checks : int, default 10
        How many random elements to check.
    h : float, default 1e-5
        The step.

    Returns
    -------
    None
        Each check prints ``numerical: N analytic: A, relative error: E``.

    Examples
    --------
    >>> import numpy as np, random
    >>> random.seed(0)
    >>> x = np.array([1.0, 2.0])
    >>> grad_check_sparse(lambda x: float(np.sum(x**2)), x, 2 * x, num_checks=1)
    numerical: 4.000000 analytic: 4.000000, relative error: ...
    """
    _check_point(x)
    if np.shape(analytic_grad) != x.shape:
        raise ValueError(
            f"analytic_grad must be shaped like x, {x.shape}; got {np.shape(analytic_grad)}"
        )
    if isinstance(num_checks, bool) or not isinstance(num_checks, (int, np.integer)):
        raise TypeError(f"num_checks must be an int, got {type(num_checks).__name__}")
    if num_checks < 0:
        raise ValueError(f"num_checks must be >= 0, got {num_checks}")
    for _ in range(num_checks):
        ix = tuple(random.randrange(m) for m in x.shape)
        old = x[ix]
        x[ix] = old + h
        fxph = f(x)
        x[ix] = old - h
        fxmh = f(x)
        x[ix] = old
        grad_numerical = (fxph - fxmh) / (2 * h)
        grad_analytic = analytic_grad[ix]
        error = abs(grad_numerical - grad_analytic) / (abs(grad_numerical) + abs(grad_analytic))
        print(
            f"numerical: {grad_numerical:f} analytic: {grad_analytic:f}, relative error: {error:e}"
        )


def rel_error(x, y):
    """Largest relative error between x and y: ``max(|x - y| / max(1e-8, |x| + |y|))``.

    Examples
    --------
    >>> rel_error(1.0, 1.0 + 1e-9) < 1e-9
    True
    """
    x, y = np.asarray(x), np.asarray(y)
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))
