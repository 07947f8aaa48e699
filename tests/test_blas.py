"""The kernels' matrix product: NumPy's own BLAS, called from compiled code."""

import numpy as np
import pytest
from numba import njit

from mlp_numba._engine.kernels import blas as _blas


@njit
def _product(trans_a, trans_b, A, B, C):
    _blas.gemm(trans_a, trans_b, A, B, C)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("m", "n", "k"), [(1, 1, 1), (7, 3, 5), (200, 100, 64), (3, 1, 300)])
@pytest.mark.parametrize(("trans_a", "trans_b"), [(False, False), (True, False), (False, True)])
def test_gemm_matches_numpy(dtype, m, n, k, trans_a, trans_b):
    rng = np.random.default_rng(m * n * k)
    A = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    B = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    C = np.full((m, n), np.nan, dtype)
    _product(trans_a, trans_b, A, B, C)
    expected = (A.T if trans_a else A) @ (B.T if trans_b else B)
    np.testing.assert_allclose(C, expected, rtol=1e-12 if dtype == np.float64 else 1e-5)
    assert C.dtype == dtype


def test_gemm_on_a_block_of_rows():
    rng = np.random.default_rng(0)
    X, W = rng.standard_normal((50, 8)), rng.standard_normal((8, 4))
    out = np.zeros((50, 4))
    _product(False, False, X[10:20], W, out[10:20])
    np.testing.assert_allclose(out[10:20], X[10:20] @ W, rtol=1e-12)
    assert not out[:10].any() and not out[20:].any()


def test_backend_is_numpys_blas_when_it_ships_one():
    names = " ".join(p.name for p in _blas._numpy_blas_candidates())
    if "openblas" not in names:
        pytest.skip("this NumPy does not ship OpenBLAS; np.dot (SciPy's BLAS) is used")
    assert _blas.BACKEND.split(":")[0] in names


@njit
def _accumulate(trans_a, trans_b, A, B, C, alpha, beta):
    _blas.gemm_accumulate(trans_a, trans_b, A, B, C, alpha, beta)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 0.0), (-0.25, 1.0), (-1e-3, 0.999), (2.0, -3.0)])
def test_gemm_accumulate_matches_numpy(dtype, alpha, beta):
    rng = np.random.default_rng(3)
    A, B = rng.standard_normal((200, 64)).astype(dtype), rng.standard_normal((200, 30))
    B = B.astype(dtype)
    C = rng.standard_normal((64, 30)).astype(dtype)
    expected = alpha * (A.T.astype(np.float64) @ B) + beta * C
    if beta == 0:
        C[3, 4] = np.nan  # beta = 0 overwrites C, as BLAS defines it
    _accumulate(True, False, A, B, C, alpha, beta)
    np.testing.assert_allclose(C, expected, rtol=1e-12 if dtype == np.float64 else 1e-4, atol=1e-5)
    assert C.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("rows", [1, 15, 16, 33, 200])  # fewer than a block, one, several
@pytest.mark.parametrize("columns", [1, 64, 3072])
def test_products_in_blocks_match_numpy(dtype, rows, columns):
    """The loss's weight gradient X.T @ dA, cut into blocks of columns that threads run side
    by side, against the reference's product."""
    from mlp_numba import TwoLayerNet, reference

    rng = np.random.default_rng(rows + columns)
    X = rng.standard_normal((rows, columns)).astype(dtype)
    y = rng.integers(0, 7, rows)
    net = TwoLayerNet(columns, 9, 7, std=0.1, dtype=dtype, seed=rows)
    ref = reference.TwoLayerNet(columns, 9, 7, std=0.1, dtype=dtype, seed=rows)
    _, grads = net.loss(X, y, reg=0.1)
    _, expected = ref.loss(X, y, reg=0.1)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for k in ("W1", "W2"):
        assert grads[k].dtype == dtype
        np.testing.assert_allclose(grads[k], expected[k], rtol=tol * 10, atol=tol)


def test_blocks_follow_the_rows_alone():
    """How many blocks a product is cut into depends on its size only, never on threads."""
    from mlp_numba._engine.kernels.common import BLAS_PIECES, SMALLEST_BLOCK, batch_pieces

    smallest = SMALLEST_BLOCK
    pieces = batch_pieces.py_func  # the kernel itself is callable from compiled code only
    assert pieces(0, BLAS_PIECES) == pieces(1, BLAS_PIECES) == 1
    assert pieces(smallest - 1, BLAS_PIECES) == 1
    assert pieces(smallest * BLAS_PIECES, BLAS_PIECES) == BLAS_PIECES
    assert pieces(10**6, BLAS_PIECES) == BLAS_PIECES
    assert pieces(10**6, 7) == 7


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gemm_on_column_blocks_read_only_and_empty_operands(dtype):
    """The operands the kernels pass: a block of columns (its row stride above its width),
    transposed; a read-only input; a block of no rows."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((40, 30)).astype(dtype)
    X.setflags(write=False)
    dA = rng.standard_normal((40, 6)).astype(dtype)
    dW = np.full((30, 6), np.nan, dtype)
    _product(True, False, X[:, 11:19], dA, dW[11:19])
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(dW[11:19], X[:, 11:19].T @ dA, rtol=tol, atol=tol)
    assert np.isnan(dW[:11]).all() and np.isnan(dW[19:]).all()
    empty = np.zeros((0, 6), dtype)
    _product(False, False, X[5:5], dW, empty)  # m = 0: nothing to do, and no error
    C = np.full((3, 6), np.nan, dtype)
    _accumulate(False, False, X[:3, :0], dW[:0], C, 1.0, 0.0)  # k = 0: C = 0
    assert not C.any()


@njit
def _np_dot_accumulate(trans_a, trans_b, A, B, C, alpha, beta):
    _blas._np_dot_gemm_accumulate(trans_a, trans_b, A, B, C, alpha, beta)


@pytest.mark.filterwarnings("ignore::numba.NumbaPerformanceWarning")  # np.dot on transposes
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("trans_a", "trans_b"), [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 0.0), (-0.5, 0.0), (2.0, -3.0)])
def test_the_np_dot_fallback_matches_numpy(dtype, trans_a, trans_b, alpha, beta):
    """What ``gemm`` runs when NumPy ships no BLAS this module can find."""
    rng = np.random.default_rng(11)
    m, n, k = 9, 4, 13
    A = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    B = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    C = rng.standard_normal((m, n)).astype(dtype)
    a, b = (A.T if trans_a else A), (B.T if trans_b else B)
    expected = alpha * (a.astype(np.float64) @ b) + beta * C
    _np_dot_accumulate(trans_a, trans_b, A, B, C, alpha, beta)
    np.testing.assert_allclose(C, expected, rtol=1e-12 if dtype == np.float64 else 1e-5)
