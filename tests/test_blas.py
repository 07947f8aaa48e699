"""The kernels' matrix product: NumPy's own BLAS, called from compiled code."""

import numpy as np
import pytest
from numba import njit

from mlp_numba import _blas


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
