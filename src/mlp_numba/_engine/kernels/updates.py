"""The optimizers: one pass over a parameter, its gradient and the optimizer's state.

Each update adds the L2 term's gradient (``2 * reg * W``) on the fly and returns ``sum(W**2)``
of the new parameter, which the next step's loss needs. The formulas are the reference's
(``reference.optimizer_update``) term for term, without fast-math flags, so they round as it
does; the optimizer codes are ``_optimizer_spec.OPTIMIZERS``'. An update works on any 1-d
slice, so the parallel region runs it block by block, right after the block's gradient.

Plain SGD on a weight needs no gradient array: W <- (1 - lr * 2 reg) W - lr * A.T @ G is one
BLAS call with alpha and beta (``stack.weight_rows``), as dW is then neither written, checked
nor read back. The other optimizers update each block of W right after its gradient, while it
is in cache. Neither can check the gradient before W changes, so they run only when a bound
proves it finite (:func:`product_bound`); otherwise the step computes the gradients, checks
them, and updates afterwards.
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel, view
from .common import cast, sum_chunk
from .reductions import flat

#: The code of plain SGD, the course's (``_optimizer_spec.OPTIMIZERS``).
SGD = 0


@kernel
def _sgd(w, g, lr, decay):
    for k in range(w.size):
        w[k] = w[k] - lr * (g[k] + decay * w[k])


@kernel
def _momentum(w, g, v, lr, decay, mu, nesterov):
    one = cast(w, 1)
    for k in range(w.size):
        previous = v[k]
        velocity = mu * previous - lr * (g[k] + decay * w[k])
        v[k] = velocity
        w[k] = w[k] - mu * previous + (one + mu) * velocity if nesterov else w[k] + velocity


@kernel
def _adam(w, g, m, v, lr, decay, beta1, beta2, eps, weight_decay, correction1, correction2):
    one = cast(w, 1)
    for k in range(w.size):
        gk = g[k] + decay * w[k]
        mk = beta1 * m[k] + (one - beta1) * gk
        vk = beta2 * v[k] + (one - beta2) * (gk * gk)
        m[k] = mk
        v[k] = vk
        w[k] = w[k] - lr * (
            (mk / correction1) / (np.sqrt(vk / correction2) + eps) + weight_decay * w[k]
        )


@kernel
def update_slice(code, w, g, s1, s2, lr, reg, hyper, step):
    """Update the 1-d slice ``w`` from its data gradient ``g`` (the L2 term is added here) with
    optimizer ``code`` at optimizer step ``step`` (1, 2, ...); ``s1`` and ``s2`` are its state
    (empty when it keeps none), ``hyper`` its float64 parameters
    (``_optimizer_spec.hyper_vector``). Returns the sum of the new values' squares."""
    decay = cast(w, 2) * reg
    if code == SGD:
        _sgd(w, g, lr, decay)
    elif code <= 2:
        _momentum(w, g, s1, lr, decay, cast(w, hyper[0]), code == 2)
    else:
        _adam(
            w, g, s1, s2, lr, decay,
            cast(w, hyper[0]), cast(w, hyper[1]), cast(w, hyper[2]),
            cast(w, hyper[3]) if code == 4 else cast(w, 0),
            cast(w, 1.0 - hyper[0] ** step), cast(w, 1.0 - hyper[1] ** step),
        )  # fmt: skip
    return sum_chunk(w, True)


@view
def state_slice(state, lo, hi):
    """Elements lo:hi of an optimizer's state buffer (flattened), or the empty buffer itself."""
    s = flat(state)
    return s[lo:hi] if s.size else s


@kernel
def product_bound(x_max, rows, dA_max):
    """A bound on the magnitude of every element of X.T @ dA, given ``x_max = max(abs(X))`` and
    ``dA_max = max(abs(dA))``: each is a sum of ``rows`` products. NaN or inf when X or dA
    holds a value that is not finite. In float64, so that the bound itself does not overflow."""
    return rows * np.float64(x_max) * np.float64(dA_max)


@kernel
def product_is_finite(bound, like):
    """Whether a ``product_bound`` proves X.T @ dA finite in the dtype of ``like``, with room for
    a few additions."""
    return bound <= np.finfo(like.dtype).max / 4


@kernel
def sgd_by_product_is_finite(bound, lr, reg, squared_norm, like):
    """Whether the fused SGD update surely leaves W1 finite, given the ``product_bound`` and a
    finite ``squared_norm >= sum(W1**2)`` (so each element of W1 is below sqrt(the largest
    float)). The bound must hold with and without the factor lr, as a BLAS may apply alpha
    before or after summing."""
    beta = 1.0 - lr * 2.0 * reg
    return (
        squared_norm <= np.finfo(like.dtype).max
        and product_is_finite(bound * max(lr, 1.0), like)
        and abs(beta) <= 2.0
    )
