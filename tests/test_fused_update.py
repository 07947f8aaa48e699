"""Plain SGD's weight update fused into the weight-gradient product, and the bound that guards it.

The training loop updates W1 by one BLAS call, W1 <- beta W1 - lr X.T @ G, when a bound proves
the result finite; otherwise it computes dW1, checks it and updates as every optimizer does.
These tests compare the pieces with NumPy and make sure an overflowing step still stops before
anything is written.
"""

import numpy as np
import pytest
from numba import njit

from mlp_numba import TrainingDivergedError, TwoLayerNet
from mlp_numba._engine import _numba_private, engine_for, entry, parallel, path
from mlp_numba._engine.kernels import layers, updates
from mlp_numba._engine.kernels.blas import one_blas_thread
from mlp_numba._engine.kernels.common import as_float, max_magnitude_bits
from mlp_numba._engine.kernels.reductions import flat
from mlp_numba._optimizer_spec import hyper_vector

DTYPES = [np.float64, np.float32]


def _compiled(kernel):
    """``kernel`` callable from Python (the engine's kernels take compiled callers only)."""
    return njit(lambda *arguments: kernel(*arguments))


def _like_the_entry_point(function):
    """``function`` compiled as the engine's entry point is (on the fast path,
    ``_numba_private.entry_only``: the kernels it reaches are emitted once, in its library,
    which compiles in about half the time)."""
    dispatcher = njit(function)

    def call(*arguments):
        if not path().fast:
            return dispatcher(*arguments)
        with _numba_private.entry_only(_numba_private._target_codegen()):
            return dispatcher(*arguments)

    return call


_product_bound = _compiled(updates.product_bound)
_sgd_by_product_is_finite = _compiled(updates.sgd_by_product_is_finite)
_product_is_finite = _compiled(updates.product_is_finite)


@njit
def _update(code, W, dW, lr, reg, hyper, step):
    """The general update of all of W (no optimizer state)."""
    w, g = flat(W), flat(dW)
    none = w[:0]
    return updates.update_slice(code, w, g, none, none, lr, reg, hyper, step)


@njit
def _max_magnitude(a, scratch):
    return as_float(max_magnitude_bits(a), scratch)


@_like_the_entry_point
def _gather(X, y, idx, model, optimizer, steps, work, out):
    entry._forward_backward(
        X, y, idx, parallel.GATHER_ROWS, model, optimizer, steps, 1, work, out, 0.0, 0.0
    )


@_like_the_entry_point
def _weight_step(X, y, idx, model, optimizer, steps, work, out, mode, lr, reg):
    """One batch's forward and backward pass, then its weight-gradient task in ``mode``."""
    entry._forward_backward(
        X, y, idx, parallel.GATHER_ROWS, model, optimizer, steps, 1, work, out, 0.0, 0.0
    )
    blocks = entry.weight_pieces(model.widths, work)
    weights = parallel.task(
        parallel.WEIGHT_GRADIENT, blocks, mode, idx, lr, reg, 1, optimizer, steps
    )
    parallel.in_parallel(weights, X, y, model, work, out)
    return blocks


def _bundles(net, rows):
    e = engine_for(net.dtype)
    work = e.workspace(rows, net.sizes, batch=True)
    return net._model(), e._none["optimizer"], e._none["steps"], work, e._none["out"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [0, 1, 67 * 33, 600 * 201])
def test_max_magnitude_matches_numpy(dtype, size):
    scratch = np.empty(1, dtype)
    a = np.random.default_rng(size).standard_normal(size).astype(dtype)
    expected = np.abs(a).max() if size else 0.0
    assert _max_magnitude(a, scratch) == expected
    if size:
        a[size // 3] = -np.finfo(dtype).max
        assert _max_magnitude(a, scratch) == np.finfo(dtype).max
        a[size - 1] = -np.inf
        assert _max_magnitude(a, scratch) == np.inf
        a[0] = np.nan
        assert np.isnan(_max_magnitude(a, scratch))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", [1, 200])
def test_gather_copies_the_rows_and_records_their_largest_magnitude(dtype, rows):
    rng = np.random.default_rng(rows)
    D, H, C = 3072, 20, 10
    X = rng.standard_normal((500, D)).astype(dtype)
    y = rng.integers(0, C, 500)
    X[17, 5] = -50.0  # the largest magnitude, in a row drawn below
    idx = np.append(rng.integers(0, 500, rows - 1), 17)
    net = TwoLayerNet(D, H, C, std=1e-3, dtype=dtype, seed=0)
    model, optimizer, steps, work, out = _bundles(net, rows)

    def gather():
        # Each block's largest magnitude of the first layer's input: column 0 of block_max.
        with one_blas_thread:
            _gather(X, y, idx, model, optimizer, steps, work, out)
        return np.abs(work.block_max[:, 0]).max()

    largest = gather()
    assert np.array_equal(work.Xb, X[idx]) and np.array_equal(work.yb, y[idx])
    assert largest == 50.0
    X[idx[0], 100] = np.nan
    assert np.isnan(gather())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reg", [0.0, 1e-3])
def test_fused_sgd_agrees_with_the_general_update(dtype, reg):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 300)).astype(dtype)
    y = rng.integers(0, 10, 200)
    idx = np.arange(200)
    lr = dtype(1e-2)
    results = {}
    for mode in (layers.GRADIENT, layers.SGD_BY_PRODUCT):
        net = TwoLayerNet(300, 40, 10, std=1.0, dtype=dtype, seed=0)
        model, optimizer, steps, work, out = _bundles(net, 200)
        with one_blas_thread:
            blocks = _weight_step(X, y, idx, model, optimizer, steps, work, out, mode, lr, reg)
        W1 = net.params["W1"]
        if mode == layers.GRADIENT:
            dW1 = work.grads[: W1.size].reshape(W1.shape)
            G1 = work.G[: 200 * 40].reshape(200, 40)
            np.testing.assert_allclose(dW1, X.T @ G1, rtol=1e-4, atol=1e-6)
            norm = _update(updates.SGD, W1, dW1, lr, dtype(reg), hyper_vector("sgd", {}), 1)
        else:
            # The blocks of W1 (layer 1) are every other one of the two layers' blocks.
            norm = work.partial[:blocks:2].sum()
        results[mode] = W1.copy(), norm
    (general, sq_general), (fused, sq_fused) = results.values()
    tol = 1e-13 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(fused, general, rtol=tol, atol=tol)
    np.testing.assert_allclose(sq_fused, np.sum(fused.astype(np.float64) ** 2), rtol=tol * 10)
    np.testing.assert_allclose(sq_fused, sq_general, rtol=tol * 10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_update_runs_only_when_its_result_is_surely_finite(dtype):
    """The bound behind the fused update, and behind skipping the check of dW1 otherwise."""
    scratch = np.empty(1, dtype)
    big = np.finfo(dtype).max
    dA = np.full((200, 10), 0.5, dtype)

    def safe(x_max, lr=1e-3, reg=1e-4, squared_norm=1.0, grad=dA):
        dA_max = _max_magnitude(grad.ravel(), scratch)
        bound = _product_bound(dtype(x_max), len(grad), dA_max)
        return _sgd_by_product_is_finite(bound, lr, dtype(reg), dtype(squared_norm), dA)

    assert safe(1e3)
    assert not safe(np.nan) and not safe(np.inf)
    # 200 rows of products near the largest float overflow, whether lr scales them or not
    assert not safe(big / 10) and not safe(big / 10, lr=1e-30)
    assert safe(big / 1000) and not safe(big / 1000, lr=10.0)
    # The same bound lets every other optimizer skip the check of dW1.
    for x_max, proven in ((big / 1000, True), (big / 10, False), (np.nan, False)):
        dA_max = _max_magnitude(dA.ravel(), scratch)
        bound = _product_bound(dtype(x_max), len(dA), dA_max)
        assert _product_is_finite(bound, dA) == proven
    assert not safe(1.0, lr=1e300 if dtype == np.float64 else 1e36)
    assert not safe(1.0, lr=1.0, reg=10.0)  # |1 - 2 lr reg| > 2: W1 itself could overflow
    assert not safe(1.0, squared_norm=np.inf)
    for bad in (np.nan, -np.inf):
        grad = dA.copy()
        grad[199, 9] = bad
        assert not safe(1.0, grad=grad)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_an_overflowing_weight_gradient_stops_before_any_update(dtype, optimizer):
    """X near the largest float, tiny W1 and large W2: the loss and dA are finite but X.T @ dA
    overflows. The fused path must decline, and the general path stop with the params
    untouched."""
    rng = np.random.default_rng(0)
    X = (np.finfo(dtype).max / 4 * np.sign(rng.standard_normal((40, 6)))).astype(dtype)
    y = rng.integers(0, 3, 40)
    net = TwoLayerNet(6, 5, 3, std=1e-3, dtype=dtype, seed=0)
    net.params["W1"][...] = dtype(1e-30) if dtype == np.float32 else 1e-300
    net.params["W2"][...] = 1e3 * rng.standard_normal((5, 3))
    before = {k: p.copy() for k, p in net.params.items()}
    with pytest.raises(TrainingDivergedError) as info:
        net.train(X, y, X, y, learning_rate=1e-3, num_iters=5, batch_size=20, optimizer=optimizer)
    assert info.value.iteration == 0
    assert np.isfinite(info.value.history["loss_history"]).all()
    for k, p in net.params.items():
        assert np.array_equal(p, before[k]), k
