"""The compiled engine: what the public nets call, and the buffers they lend it.

``engine_for(dtype)`` gives the :class:`Engine` of a dtype, whose one compiled entry point
(``entry.run``) is compiled on first use, or loaded from Numba's on-disk cache, for that
dtype's bundle types alone (``_jit.compiled_entry``). Every activation, optimizer and input
(read-only, a memmap, a view) then runs on that code: nothing compiles again in the process.

The layers, from the public API down: ``net.TwoLayerNet`` (validation, bookkeeping) ->
:class:`Engine` (bundles, BLAS threads) -> ``entry`` (compiled control flow) -> ``parallel``
(the one parallel region) -> ``kernels`` (the numerical loops). A net of any depth
(``mlp.MLP``) runs on ``stack_engine.StackEngine``, the same class on its own entry point
(``stack_entry`` -> ``stack_parallel`` -> ``kernels.stack``), sharing the kernels, the parallel
region's construction (``_region``) and the cache.
"""

from __future__ import annotations

import functools
import threading

import numba
import numpy as np

from . import _threads, entry
from ._jit import compiled_entry, sources_stamp
from .bundles import Model, Optimizer, Outputs, Params, Steps, Workspace
from .kernels.activations import activation_code
from .kernels.blas import BACKEND, one_blas_thread
from .kernels.common import BLAS_PIECES, N_CHUNKS
from .kernels.layers import CLASSES, PROBABILITIES, SCORES

__all__ = ["Engine", "Model", "Optimizer", "Params", "Steps", "engine_for", "model", "optimizer"]

#: Partial products a training step's workspace holds (``kernels.layers.splits_columns``).
STEP_PARTS = BLAS_PIECES - 1

#: The compiled-code cache stamp: the engine's sources, and what compiled code depends on.
STAMP = sources_stamp(f"{BACKEND} {BLAS_PIECES}")


#: Guards every call into compiled code (``_threads``): one thread in a forked child of an
#: OpenMP process, turns under the ``workqueue`` layer.
_call = _threads.engine_call()


def _readonly(array):
    array.setflags(write=False)
    return array


def params_like(sizes, dtype):
    """New arrays shaped like the params."""
    D, H, C = sizes
    return Params(
        np.empty((D, H), dtype), np.empty(H, dtype), np.empty((H, C), dtype), np.empty(C, dtype)
    )


@functools.cache
def _nothing(dtype):
    """Empty arrays of every buffer's type, shared by the calls that use no such buffer (they
    hold no element, so nothing is ever written to them)."""
    full = workspace(0, (0, 0, 0), dtype)
    return {
        "params": params_like((0, 0, 0), dtype),
        "work": Workspace(*(np.empty((0,) * a.ndim, a.dtype) for a in full)),
    }


def model(params, activation, activation_params):
    """The :class:`Model` bundle of params ``(W1, b1, W2, b2)`` and an activation's name and
    parameter vector (``_activation_spec.param_vector``)."""
    return Model(*params, activation_code(activation), activation_params)


def optimizer(code, hyper, buffers, sizes, dtype):
    """The :class:`Optimizer` bundle: ``buffers`` is a list of zero to two dicts of arrays
    shaped like the params (the net's optimizer state)."""
    states = [Params(b["W1"], b["b1"], b["W2"], b["b2"]) for b in buffers]
    while len(states) < 2:
        states.append(_nothing(dtype)["params"])
    return Optimizer(int(code), hyper, states[0], states[1])


def workspace(n_rows, sizes, dtype, *, batch=False):
    """Buffers for passes over ``n_rows`` rows; ``batch`` adds a training step's: room for its
    minibatch and for the partial products of X@W1 cut along D."""
    D, H, C = sizes
    parts = STEP_PARTS if batch else 0
    return Workspace(
        Z=np.empty((n_rows, H), dtype),
        A=np.empty((n_rows, H), dtype),
        dA=np.empty((n_rows, H), dtype),
        S=np.empty((n_rows, C), dtype),
        dS=np.empty((n_rows, C), dtype),
        row_loss=np.empty(n_rows, dtype),
        row_max=np.empty(n_rows, dtype),
        Z_parts=np.empty((parts, n_rows, H), dtype),
        partial=np.empty(N_CHUNKS, dtype),
        block_W2=np.empty((BLAS_PIECES, H, C), dtype),
        block_sums=np.empty((BLAS_PIECES, H + C + 1), dtype),
        block_max=np.empty(BLAS_PIECES, dtype),
        Xb=np.empty((n_rows if batch else 0, D), dtype),
        yb=np.empty(n_rows, np.intp),
        **dict(zip(("dW1", "db1", "dW2", "db2"), params_like(sizes, dtype), strict=True)),
    )


def scoring_workspace(n_rows, sizes, dtype):
    """Buffers for scoring ``n_rows`` rows: only those scoring writes are allocated."""
    _, H, C = sizes
    return _nothing(dtype)["work"]._replace(
        Z=np.empty((n_rows, H), dtype),
        A=np.empty((n_rows, H), dtype),
        S=np.empty((n_rows, C), dtype),
        row_max=np.empty(n_rows, dtype),
        partial=np.empty(N_CHUNKS, dtype),
    )


def rows_of(work, n):
    """``work``'s buffers for its first ``n`` rows (``work`` itself when it has ``n``)."""
    if len(work.Z) == n:
        return work
    per_row = ("Z", "A", "dA", "S", "dS", "row_loss", "row_max", "yb")
    views = {name: getattr(work, name)[:n] for name in per_row}
    return work._replace(Z_parts=work.Z_parts[:, :n], **views)


class Engine:
    """The compiled engine of one dtype: training steps, scoring, the loss and the input check.

    Each method takes the bundles of :mod:`.bundles` and runs with the BLAS on one thread
    (``kernels.blas.one_blas_thread``): the kernels cut their products into blocks that
    Numba's threads run side by side, each a BLAS call that must not start threads of its own.
    """

    #: The compiled entry point's Python function.
    ENTRY = entry.run

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self._none = self._placeholders()
        self._run = compiled_entry(type(self).ENTRY, self._signature(), STAMP)

    def _placeholders(self):
        """Empty bundles for the arguments an operation does not use."""
        dt = self.dtype
        nothing = _nothing(dt)
        empty = nothing["params"]
        return {
            "y": np.empty(0, np.intp),
            "model": model(empty, "relu", np.zeros(1, dt)),
            "optimizer": Optimizer(0, np.zeros(4), empty, empty),
            "steps": Steps(np.empty((0, 0), np.intp), np.empty(0, dt), 0.0, 0),
            "out": Outputs(np.empty(0, dt), np.empty(0, np.intp), np.empty((0, 0), dt)),
            "work": nothing["work"],
        }

    def _signature(self):
        """The entry point's argument types: read-only inputs, the bundles of this dtype."""
        dt, none = self.dtype, self._none
        arguments = (
            0,
            _readonly(np.empty((0, 0), dt)),
            _readonly(np.empty(0, np.intp)),
            none["model"],
            none["optimizer"],
            none["steps"],
            none["work"],
            none["out"],
        )
        return tuple(numba.typeof(a) for a in arguments)

    def train_steps(self, X, y, model, optimizer, steps, work, losses):
        """Run the block ``steps`` on (X, y); ``losses`` gets each loss. Returns the number of
        steps taken (fewer when one diverged: its update is not applied)."""
        out = self._none["out"]._replace(losses=losses)
        with _call, one_blas_thread:
            done, _ = self._run(entry.TRAIN, X, y, model, optimizer, steps, work, out)
        return done

    def loss_and_grads(self, X, y, model, reg, work):
        """The loss of (X, y) and, into ``work.grads``, its gradients; and whether all are
        finite."""
        none = self._none
        steps = none["steps"]._replace(reg=float(reg))
        with _call, one_blas_thread:
            finite, loss = self._run(
                entry.LOSS, X, y, model, none["optimizer"], steps, work, none["out"]
            )
        return self.dtype.type(loss), bool(finite)

    def _score(self, mode, X, model, work, out):
        none = self._none
        with _call, one_blas_thread:
            finite, _ = self._run(
                entry.SCORE_OPS + mode, X, none["y"], model, none["optimizer"], none["steps"],
                work, out,
            )  # fmt: skip
        return bool(finite)

    def scores(self, X, model, work, scores):
        """Class scores of X into ``scores``; returns whether the hidden layer was finite."""
        finite = self._score(SCORES, X, model, work, self._none["out"])
        scores[...] = work.S
        return finite

    def predict(self, X, model, work, classes):
        """Classes of X into ``classes``; returns whether the hidden layer was finite."""
        return self._score(CLASSES, X, model, work, self._none["out"]._replace(classes=classes))

    def predict_proba(self, X, model, work, probabilities):
        """Probabilities of X into ``probabilities``; returns as :meth:`predict`."""
        out = self._none["out"]._replace(probabilities=probabilities)
        return self._score(PROBABILITIES, X, model, work, out)

    def all_finite(self, X):
        """Whether every value of the C-contiguous array X (of this dtype) is finite."""
        X = X if X.ndim == 2 else X.reshape(-1, 1)
        none = self._none
        work = none["work"]._replace(partial=np.empty(N_CHUNKS, self.dtype))  # per call: threads
        with _call:
            finite, _ = self._run(
                entry.FINITE, X, none["y"], none["model"], none["optimizer"], none["steps"],
                work, none["out"],
            )  # fmt: skip
        return bool(finite)


_ENGINES = {}
_LOCK = threading.Lock()


def engine_for(dtype, kind=Engine):
    """The engine of class ``kind`` (:class:`Engine`, or ``stack_engine.StackEngine`` for nets
    of any depth) for ``dtype`` (float64 or float32), compiled or loaded once."""
    key = (kind, np.dtype(dtype))
    engine = _ENGINES.get(key)
    if engine is None:
        with _LOCK:
            engine = _ENGINES.get(key)
            if engine is None:
                engine = _ENGINES[key] = kind(key[1])
    return engine
