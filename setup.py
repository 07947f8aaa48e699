"""Build hooks (the rest of the metadata is pyproject.toml's).

The wheel carries the compiled engine: after the package is copied into the build folder, it
is compiled there for float64 and float32, for the baseline CPU of
``mlp_numba._engine.compiled_code`` (x86-64-v3), into ``mlp_numba/_engine/_shipped``. That
code is for one Python version and platform, so the wheel is tagged for them (cp3XY-cp3XY and
manylinux_2_17 on x86-64 Linux). The cache files are not ELF libraries, which auditwheel would
inspect and repair: the tag is set here instead, the same glibc floor as Numba's own wheels,
whose runtime resolves every symbol the code calls. Elsewhere (other systems and CPUs: not
built or tested here yet) no code is shipped and the wheel is pure: the engine compiles on
first use, or with ``mlp-numba compile``.

``MLP_NUMBA_SHIP_ENGINE=0`` builds a wheel without the engine.
"""

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:  # setuptools >= 70.1 has its own
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # pragma: no cover
    from wheel.bdist_wheel import bdist_wheel

# Linux on x86-64 only, for now: the one platform built and tested here.
SHIPS = (
    os.environ.get("MLP_NUMBA_SHIP_ENGINE", "1") != "0"
    and sys.platform.startswith("linux")
    and platform.machine().lower() == "x86_64"
)


class BuildPyWithEngine(build_py):
    """``build_py``, then the engine compiled into the build folder's package."""

    def run(self):
        super().run()
        if not SHIPS or self.editable_mode:
            return
        build_lib = Path(self.build_lib).resolve()
        target = build_lib / "mlp_numba" / "_engine" / "_shipped"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        paths = [str(build_lib), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths), PYTHONDONTWRITEBYTECODE="1")
        script = (
            "import sys; from mlp_numba._engine.compiled_code import DTYPES, compile_ahead; "
            "print(f'compiled the engine in {compile_ahead(sys.argv[1], DTYPES):.1f} s')"
        )
        subprocess.run([sys.executable, "-c", script, str(target)], env=env, check=True)
        for extra in target.glob("*.json"):  # the probe's verdict is this machine's
            extra.unlink()


class ShippingDistribution(Distribution):
    """Built like a package with compiled parts (platform folders, a platform wheel)."""

    def has_ext_modules(self):
        return SHIPS


class PlatformWheel(bdist_wheel):
    """A wheel tagged for the Python and platform of the code it ships."""

    def get_tag(self):
        python, abi, plat = super().get_tag()
        if SHIPS and plat.startswith("linux_"):
            machine = plat[len("linux_") :]
            plat = f"manylinux_2_17_{machine}.manylinux2014_{machine}"
        return python, abi, plat


setup(
    distclass=ShippingDistribution,
    cmdclass={"build_py": BuildPyWithEngine, "bdist_wheel": PlatformWheel},
)
