"""Numba's thread pool: which threading layer runs the engine, and where it may not.

Numba picks a threading layer once per process, when its threads start (``tbb`` if it can
load Intel TBB, else ``omp``, else ``workqueue``, unless ``NUMBA_THREADING_LAYER`` says
otherwise). They differ in what survives:

==========  ==========================  ==================================================
layer       several Python threads      a child made by ``fork`` after the threads started
==========  ==========================  ==================================================
omp (GNU)   yes                         no: Numba terminates the child at its first
                                        parallel region
tbb         yes                         yes
workqueue   no: Numba aborts the        yes
            process
==========  ==========================  ==================================================

The engine keeps every layer safe for its own calls (:func:`engine_call`): in a forked child
of a process whose layer is GNU OpenMP it runs its blocks in a plain loop on the calling
thread, which gives the same bits, since the blocks never depend on the number of threads; and
under ``workqueue`` its calls take turns.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.metadata
import os
import sys
import threading
import warnings

import numba

from . import _numba_private

#: Rounds an idle OpenMP worker of Numba's spins before it sleeps, unless the user chose.
OPENMP_SPIN_COUNT = 30_000


def _tbb_library():
    """The path of ``libtbb.so.12`` installed by the ``tbb`` package, or None."""
    try:
        files = importlib.metadata.files("tbb") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name in ("libtbb.so.12", "libtbb.12.dylib", "tbb12.dll"):
            path = file.locate()
            if os.path.exists(path):
                return os.path.realpath(path)
    return None


def _make_tbb_findable():
    """Load the ``tbb`` package's library, so that Numba finds it by name.

    The ``tbb`` wheel puts its library in the environment's ``lib`` folder, where the dynamic
    loader does not look: Numba then reports that no ``tbb`` layer can be loaded. A library
    already loaded is found by its name, so loading it once by path is enough.
    """
    path = _tbb_library()
    if path is not None:
        with contextlib.suppress(OSError):
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)


def _start_threads():
    """Start Numba's threads, its OpenMP workers spinning only briefly before they sleep
    (``GOMP_SPINCOUNT``), unless the user chose; then put the environment back.

    A training step is a few parallel regions in a row, and a worker that sleeps between
    regions pays a wake-up each time (20-67 us here, against a step of 0.3 ms at the MNIST
    shape); but a worker that spins long after the last region burns a core that whatever
    runs next may need (libgomp's default spins 300,000 rounds). 30,000 rounds kept the steps
    as fast as longer spins and cost well under a millisecond of CPU after a region.

    libgomp reads the variable once, when it loads, which starting Numba's threads does (if
    nothing in the process loaded it before). The variable is set only for that moment:
    another library's OpenMP runtime loaded later (PyTorch ships its own) keeps its defaults.
    """
    ours = "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ
    if ours:
        os.environ["GOMP_SPINCOUNT"] = str(OPENMP_SPIN_COUNT)
    try:
        numba.get_num_threads()  # launches the threads, if nothing did before
    finally:
        if ours:
            del os.environ["GOMP_SPINCOUNT"]


#: Values of ``NUMBA_THREADING_LAYER`` under which Numba may choose ``tbb``.
_LAYERS_THAT_MAY_BE_TBB = ("", "default", "tbb", "safe", "threadsafe", "forksafe")


def start():
    """Start Numba's threads (see :func:`_start_threads`), first making the ``tbb`` package's
    library findable when the user's ``NUMBA_THREADING_LAYER`` allows that layer."""
    if os.environ.get("NUMBA_THREADING_LAYER", "").lower() in _LAYERS_THAT_MAY_BE_TBB:
        _make_tbb_findable()
    _start_threads()


def layer_is_fork_safe(layer=None):
    """Whether a child made by ``fork`` can use Numba's threads on ``layer`` (by default the
    process's, which starting the engine chose)."""
    layer = layer or numba.threading_layer()
    return layer != "omp" or not _numba_private.openmp_is_gnu()


class _EngineCall:
    """Context manager around every call into the compiled engine.

    In a forked child (or later descendant) of a process whose layer is GNU OpenMP, which
    Numba terminates at its first parallel region, it sets the calling thread's Numba thread
    count to 1 for the call, so that the engine's parallel region runs as a plain loop
    (``parallel.in_parallel``), and says so once in a warning; under the ``workqueue`` layer,
    which aborts the process when two threads enter it at once, calls take turns.
    """

    def __init__(self):
        self._turns = threading.Lock() if numba.threading_layer() == "workqueue" else None
        self._one_thread = False
        self._warned = False
        self._saved = threading.local()

    def _after_fork_in_child(self):
        if self._turns is not None:
            # Whichever thread held it is not in the child.
            self._turns = threading.Lock()
        self._one_thread = self._one_thread or not layer_is_fork_safe()

    def __enter__(self):
        if self._turns is not None:
            self._turns.acquire()
        if self._one_thread:
            self._warn_once()
            self._saved.threads = numba.get_num_threads()
            numba.set_num_threads(1)

    def __exit__(self, *exc):
        if self._one_thread:
            numba.set_num_threads(self._saved.threads)
        if self._turns is not None:
            self._turns.release()

    def _warn_once(self):
        if self._warned:
            return
        self._warned = True
        warnings.warn(
            "mlp_numba: this process was forked from one whose Numba threading layer is GNU "
            f"OpenMP, which cannot start threads in a forked child; its training and scoring "
            f"run on one thread here (the same results, up to {numba.config.NUMBA_NUM_THREADS}x "
            "slower). To keep every thread in child processes, start them with 'spawn' or "
            "'forkserver' (multiprocessing.get_context('forkserver')), or install the tbb "
            "package (pip install 'mlp-numba[tbb]'), a fork-safe layer that Numba then uses.",
            RuntimeWarning,
            stacklevel=_caller_outside_package(),
        )


_PACKAGE_FOLDER = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _caller_outside_package():
    """The ``stacklevel`` that makes a warning issued by the caller name the first frame
    outside this package (the user's line)."""
    level, frame = 2, sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_FOLDER):
        level, frame = level + 1, frame.f_back
    return level


def engine_call():
    """The :class:`_EngineCall` guard of this process's engine (made once Numba's threads have
    started), kept up to date in forked children."""
    call = _EngineCall()
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=call._after_fork_in_child)
    return call
