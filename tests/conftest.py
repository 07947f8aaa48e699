import os

# The suite runs on the threading layer users get by default (the tbb extra, when installed,
# would make Numba pick tbb); tests of the other layers run them in processes of their own.
# Set NUMBA_THREADING_LAYER to run the whole suite on another layer.
os.environ.setdefault("NUMBA_THREADING_LAYER", "omp")

import numpy as np
import pytest

from mlp_numba import ACTIVATIONS
from mlp_numba._activation_spec import SPECS
from mlp_numba.gradient_check import rel_error

#: Canonical activation names (aliases are tested separately).
CANONICAL = tuple(SPECS)
DTYPES = (np.float64, np.float32)
#: Largest rel_error allowed between compiled and reference results, per dtype.
TOL = {np.float64: 1e-10, np.float32: 1e-4}

assert set(CANONICAL) <= set(ACTIVATIONS)


def assert_rel(ref, comp, tol, what=""):
    err = rel_error(ref, comp)
    assert err <= tol, f"{what}: rel_error {err:.3e} > {tol:.0e}"


@pytest.fixture
def toy():
    """The course notebook's toy data: seed 1, X = 10 * randn(5, 4), y = [0, 1, 2, 2, 1]."""
    np.random.seed(1)
    X = 10 * np.random.randn(5, 4)
    y = np.array([0, 1, 2, 2, 1])
    return X, y


@pytest.fixture
def dask_cluster():
    """A two-worker Dask LocalCluster of processes on this machine: yields its client, whose
    ``get_task_stream()`` lists the tasks it ran (each with the worker that ran it)."""
    distributed = pytest.importorskip("dask.distributed")
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                 processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):  # fmt: skip
        client.get_task_stream()  # starts recording
        yield client
