"""The compiled engine of one dtype, and the bundles and buffers a net lends it.

:class:`Engine` runs training steps, scoring, the loss and the input check of a net of any
depth through the one compiled entry point (``entry.run``), compiled on first use, or loaded
from the on-disk cache, for that dtype's bundle types alone (``_jit.compiled_entry``). Every
depth, width, activation, optimizer and input kind (read-only, a memmap, a view) then runs on
that code: nothing compiles again in the process.
"""

from __future__ import annotations

import functools
import itertools

import numba
import numpy as np

from .. import _dropout
from . import _numba_private, _threads, compiled_code, entry
from ._jit import compiled_entry, sources_stamp
from .bundles import Model, Optimizer, Outputs, Steps, Workspace
from .kernels.activations import activation_code
from .kernels.blas import ABI, one_blas_thread
from .kernels.common import BLAS_PIECES, N_CHUNKS
from .kernels.layers import CLASSES, PROBABILITIES, SCORES

__all__ = ["Engine", "TrainingSteps"]

#: The compiled-code stamp: the engine's sources and what compiled code depends on (the
#: BLAS's kind, not its file: code calls it through a symbol resolved when it loads).
STAMP = sources_stamp(f"blas {ABI}")

#: Guards every call into compiled code (``_threads``): one thread in a forked child of an
#: OpenMP process, turns under the ``workqueue`` layer.
_call = _threads.engine_call()


@functools.cache
def _empty(dtype):
    return np.empty(0, dtype)


def _readonly(array):
    array.setflags(write=False)
    return array


class Engine:
    """The compiled engine of one dtype: training steps, scoring, the loss and the input check.

    Each method takes the bundles of :mod:`.bundles` and runs with the BLAS on one thread
    (``kernels.blas.one_blas_thread``): the kernels cut their products into blocks that
    Numba's threads run side by side, each a BLAS call that must not start threads of its own.
    """

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self._none = self._placeholders()
        self._types = self._signature()
        stand_in = functools.partial(compiled_code.stand_in, self.dtype.name)
        self._run = compiled_entry(entry.run, self._types, STAMP, stand_in)

    def _placeholders(self):
        """Empty bundles for the arguments an operation does not use."""
        dt = self.dtype
        empty = _empty(dt)
        return {
            "y": np.empty(0, np.intp),
            "model": self.model(empty, (0, 0), "relu", np.zeros(1, dt)),
            "optimizer": self.optimizer(0, np.zeros(4), ()),
            "steps": self.steps(np.empty((0, 0), np.intp), np.empty(0, dt), 0.0, 0),
            "out": Outputs(empty, np.empty(0, np.intp), np.empty((0, 0), dt)),
            "work": self.workspace(0, (0, 0)),
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

    def _call(self, op, X, y, model, optimizer, steps, work, out):
        """``entry.run`` under the engine's guards; ``steps.serial`` says whether this thread
        may use one Numba thread only (set by the user, or in a forked child). X and y go in
        as read-only views, the type the entry point was compiled for (Numba 0.59 with NumPy
        1.24 does not pass a writeable array for a read-only one)."""
        X, y = _readonly(X.view()), _readonly(y.view())
        with _call, one_blas_thread:
            steps = steps._replace(serial=numba.get_num_threads() == 1)
            arguments = (op, X, y, model, optimizer, steps, work, out)
            try:
                return self._run(*arguments)
            except TypeError as exc:
                return self._undispatched(arguments, exc)

    def _undispatched(self, arguments, error):
        """The compiled code called without Numba's dispatch, once the arguments are checked
        to be of the compiled types: Numba 0.59's dispatcher misses some matches of bundles
        of this engine's types (its type codes of read-only arrays inside a call)."""
        if tuple(numba.typeof(a) for a in arguments) != self._types:
            raise error
        return _numba_private.overload_entry(self._run, self._types)(*arguments)

    def training_steps(self, X, y, model, optimizer, work, reg, dropout=None):
        """The :class:`TrainingSteps` of a net (its ``model`` and ``optimizer`` bundles) on
        the training set (X, y), with L2 strength ``reg`` and ``dropout`` (see :meth:`steps`);
        ``work`` is a workspace for one minibatch (``batch=True``)."""
        return TrainingSteps(self, X, y, model, optimizer, work, float(reg), dropout)

    def train_steps(self, X, y, model, optimizer, steps, work, losses):
        """Run the block ``steps`` on (X, y); ``losses`` gets each loss. Returns the number of
        steps taken (fewer when one diverged: its update is not applied)."""
        out = self._none["out"]._replace(losses=losses)
        done, _ = self._call(entry.TRAIN, X, y, model, optimizer, steps, work, out)
        return done

    def loss_and_grads(self, X, y, model, reg, work):
        """The loss of (X, y) and, into ``work.grads``, its gradients; and whether all are
        finite."""
        none = self._none
        steps = none["steps"]._replace(reg=float(reg))
        finite, loss = self._call(
            entry.LOSS, X, y, model, none["optimizer"], steps, work, none["out"]
        )
        return self.dtype.type(loss), bool(finite)

    def _score(self, mode, X, model, work, out):
        none = self._none
        finite, _ = self._call(
            entry.SCORE_OPS + mode, X, none["y"], model, none["optimizer"], none["steps"],
            work, out,
        )  # fmt: skip
        return bool(finite)

    def scores(self, X, model, work, scores):
        """Class scores of X into ``scores``; returns whether the first layer was finite."""
        finite = self._score(SCORES, X, model, work, self._none["out"])
        scores[...] = work.S
        return finite

    def predict(self, X, model, work, classes):
        """Classes of X into ``classes``; returns whether the first layer was finite."""
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
        finite, _ = self._call(
            entry.FINITE, X, none["y"], none["model"], none["optimizer"], none["steps"],
            work, none["out"],
        )  # fmt: skip
        return bool(finite)

    # The bundles and buffers a net lends this engine (``bundles``).

    @staticmethod
    def model(params, widths, activation, activation_params):
        """The :class:`~.bundles.Model` of a packed params vector, the widths n0, ..., nL, an
        activation's name and its parameter vector (``_activation_spec.param_vector``)."""
        return Model(
            params, np.asarray(widths, np.int64), activation_code(activation), activation_params
        )

    def optimizer(self, code, hyper, states):
        """The :class:`~.bundles.Optimizer` of zero to two packed state vectors."""
        states = list(states) + [_empty(self.dtype)] * (2 - len(states))
        return Optimizer(int(code), hyper, states[0], states[1])

    @staticmethod
    def steps(batches, rates, reg, step0, dropout=None):
        """The :class:`~.bundles.Steps` of a block of steps; ``dropout`` is None or
        ``(seed, p)``: a seed below 2**64 and the probability ``0 <= p < 1`` of dropping a unit."""
        seed, p = (0, 0.0) if dropout is None else dropout
        threshold = np.uint64(_dropout.threshold(p))
        return Steps(
            batches, rates, float(reg), int(step0), np.uint64(seed), threshold, 1.0 / (1.0 - p),
            False,
        )  # fmt: skip

    def workspace(self, n_rows, widths, *, batch=False):
        """Buffers for passes over ``n_rows`` rows of a net of layer widths ``widths``; ``batch``
        adds room for a minibatch copied from the training data and for dropout."""
        hidden = sum(widths[1:-1])
        layers, classes = len(widths) - 1, widths[-1]
        return Workspace(
            Z=np.empty(n_rows * hidden, self.dtype),
            A=np.empty(n_rows * hidden, self.dtype),
            G=np.empty(n_rows * hidden, self.dtype),
            M=np.empty(n_rows * hidden if batch else 0, self.dtype),
            D=np.empty(n_rows * hidden if batch else 0, self.dtype),
            S=np.empty((n_rows, classes), self.dtype),
            dS=np.empty((n_rows, classes), self.dtype),
            row_loss=np.empty(n_rows, self.dtype),
            row_max=np.empty(n_rows, self.dtype),
            partial=np.empty(max(N_CHUNKS, layers * BLAS_PIECES), self.dtype),
            block_max=np.empty((BLAS_PIECES, 2 * layers), self.dtype),
            Xb=np.empty((n_rows if batch else 0, widths[0]), self.dtype),
            yb=np.empty(n_rows, np.intp),
            grads=np.empty(sum((a + 1) * b for a, b in itertools.pairwise(widths)), self.dtype),
            Z_parts=np.empty(
                (BLAS_PIECES - 1, n_rows, widths[1]) if batch and len(widths) > 2 else (0, 0, 0),
                self.dtype,
            ),
        )

    def scoring_workspace(self, n_rows, widths):
        """Buffers for scoring ``n_rows`` rows: only those scoring writes are allocated, the
        others are the empty placeholders."""
        hidden, dt = sum(widths[1:-1]), self.dtype
        return self._none["work"]._replace(
            Z=np.empty(n_rows * hidden, dt),
            A=np.empty(n_rows * hidden, dt),
            S=np.empty((n_rows, widths[-1]), dt),
            row_max=np.empty(n_rows, dt),
            partial=np.empty(N_CHUNKS, dt),
        )

    @staticmethod
    def rows_of(work, n):
        """``work``'s buffers for its first ``n`` rows. The packed per-layer buffers keep their
        size: the kernels place each layer's block by the rows of ``work.S``."""
        if len(work.S) == n:
            return work
        return work._replace(S=work.S[:n], row_max=work.row_max[:n], Z_parts=work.Z_parts[:, :n])


class TrainingSteps:
    """Blocks of optimizer steps of one net on one training set, each block one compiled call:
    what the training loop drives (``_training.StepRunner``)."""

    def __init__(self, engine, X, y, model, optimizer, work, reg, dropout):
        self.engine, self.X, self.y = engine, X, y
        self.model, self.optimizer, self.work = model, optimizer, work
        self.reg, self.dropout = reg, dropout
        self.losses = np.empty(0, engine.dtype)
        self.batch_pred = np.empty(len(work.yb), np.intp)

    def steps(self, batches, rates, step0):
        """The steps on the minibatches ``X[batches[t]]`` at learning rates ``rates[t]``, the
        first being optimizer step ``step0 + 1``. Returns the number taken (fewer when one
        diverged) and a vector holding each one's loss."""
        if len(self.losses) < len(batches):
            self.losses = np.empty(len(batches), self.engine.dtype)
        steps = self.engine.steps(batches, rates, self.reg, int(step0), self.dropout)
        done = self.engine.train_steps(
            self.X, self.y, self.model, self.optimizer, steps, self.work, self.losses
        )
        return done, self.losses

    def last_batch_accuracy(self):
        """The accuracy of the params as they are on the last minibatch stepped on."""
        work = self.work
        self.engine.predict(work.Xb, self.model, work, self.batch_pred)
        return (self.batch_pred == work.yb).mean()
