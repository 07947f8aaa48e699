"""What importing mlp_numba does to the process environment, and nothing more."""

import os
import subprocess
import sys

import pytest

CODE = "import os, mlp_numba; print(os.environ.get('OMP_WAIT_POLICY'))"


@pytest.mark.parametrize("given,expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_omp_wait_policy_defaults_to_passive_and_respects_the_user(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    out = subprocess.run(
        [sys.executable, "-c", CODE],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert out.stdout.strip() == expected
