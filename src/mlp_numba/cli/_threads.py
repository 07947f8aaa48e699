"""``--threads``: one setting for Numba's thread pool and the BLAS the kernels call."""

from __future__ import annotations

from ._errors import UserError


def limit_threads(threads):
    """Use ``threads`` Numba threads and BLAS threads for the rest of this process."""
    if threads is None:
        return
    import numba

    available = numba.config.NUMBA_NUM_THREADS
    if threads > available:
        raise UserError(
            f"--threads {threads} is more than the {available} threads Numba started with "
            "(set NUMBA_NUM_THREADS to allow more)"
        )
    numba.set_num_threads(threads)
    try:
        import threadpoolctl
    except ImportError:  # BLAS keeps its own setting (OPENBLAS_NUM_THREADS)
        return
    # Numba's np.dot calls SciPy's BLAS; load it so that threadpoolctl can see and limit it.
    import scipy.linalg.cython_blas  # noqa: F401

    threadpoolctl.threadpool_limits(threads)
