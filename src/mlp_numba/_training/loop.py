"""The course's training loop, written once for the compiled net and the reference.

Both nets' ``train`` check their data and options, then run :func:`run_training`: it draws
the minibatches, keeps the histories, decays the learning rate at the epoch ends, prints the
``verbose`` lines, stops early, calls the callback and moves the progress bar. It knows no net
class: a net hands it a :class:`Trainee`, whose optimizer steps are a :class:`StepRunner`
(compiled blocks of steps, or the reference's NumPy steps one at a time), and whose scoring
functions it calls at the epoch ends. Pure Python and NumPy, so the reference stays
independent of the compiled engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .. import _validation as v
from .._optimizer_spec import scheduled_rates
from .._progress import progress_bar
from .plan import BatchSampler, make_early_stopping, validation_loss

#: Iterations run per block at most, between the course's epoch and verbose points.
MAX_BLOCK = 256
#: Blocks are sized to take about this long, so that Python (Ctrl-C, a progress callback) gets
#: control back several times a second; a return costs microseconds, a block milliseconds.
BLOCK_SECONDS = 0.1


@dataclass(frozen=True)
class TrainingProgress:
    """What a ``train`` callback receives: how far training is and how it is going."""

    #: Iterations done so far.
    iteration: int
    #: Iterations asked for.
    num_iters: int
    #: The loss of the last iteration done.
    loss: float
    #: The histories so far (the dict ``train`` returns; do not modify it).
    history: dict

    @property
    def val_acc(self):
        """The last validation accuracy recorded (at an epoch end), or None."""
        values = self.history["val_acc_history"]
        return float(values[-1]) if values else None

    def summary(self):
        """``"loss 0.1234 val_acc 0.9100"`` (without val_acc before the first epoch end)."""
        text = f"loss {self.loss:.4f}"
        return text if self.val_acc is None else f"{text} val_acc {self.val_acc:.4f}"


class StepRunner(Protocol):
    """A net's optimizer steps on one training set, as :func:`run_training` drives them."""

    def steps(self, batches, rates, step0):
        """Take a step on each minibatch ``X[batches[t]]`` at learning rate ``rates[t]`` and
        optimizer step ``step0 + t + 1``. Returns ``(done, losses)``: the number of steps
        taken (fewer when a loss or gradient was not finite; that step's update is not
        applied) and an array whose first ``done`` values are their losses, followed by the
        failed step's loss when one failed."""

    def last_batch_accuracy(self):
        """The accuracy of the current params on the last minibatch stepped on."""


@dataclass(frozen=True)
class Trainee:
    """What the training loop drives: a net's steps and what it scores with, all below it."""

    #: The optimizer steps on the training data (:class:`StepRunner`).
    runner: StepRunner
    #: ``predict(X)`` and ``predict_proba(X)`` of the net being trained.
    predict: Callable
    predict_proba: Callable
    #: The net's params (early stopping keeps and puts back the best).
    params: dict
    #: The net's Generator, or None for NumPy's global random state (the minibatches).
    rng: object
    dtype: np.dtype


def run_training(trainee, num_train, X_val, y_val, options, state):
    """``net.train``'s loop over ``options.num_iters`` steps on ``num_train`` rows, scored on
    (X_val, y_val); ``options`` is a checked :class:`~mlp_numba.TrainOptions`, ``state`` the
    optimizer state (its step count advances). Returns the history ``train`` returns."""
    loop = _Loop(trainee, num_train, X_val, y_val, options, state)
    with progress_bar(options.num_iters, "train", enabled=options.progress, required=True) as bar:
        loop.run(bar)
    if loop.stopper is not None:
        loop.stopper.restore(trainee.params)
        loop.history.update(loop.stopper.summary())
    return loop.history


class _Loop:
    """The state of one ``train`` call's loop: blocks of compiled steps between the points
    where the course does something in Python (an epoch end, a ``verbose`` line)."""

    def __init__(self, trainee, num_train, X_val, y_val, options, state):
        self.trainee, self.X_val, self.y_val, self.o, self.state = (
            trainee, X_val, y_val, options, state
        )  # fmt: skip
        self.per_epoch = options.iterations_per_epoch or max(num_train / options.batch_size, 1)
        self.sampler = BatchSampler(trainee.rng, num_train, options.batch_size, options.sampling)
        self.stopper = make_early_stopping(options.early_stopping)
        self.history = {"loss_history": [], "train_acc_history": [], "val_acc_history": []}
        self.learning_rate = options.learning_rate

    def is_epoch_end(self, it):
        return it % self.per_epoch == 0

    def is_report(self, it):
        return bool(self.o.verbose) and it % 100 == 0

    def run(self, bar):
        it, block, num_iters = 0, 1, self.o.num_iters
        while it < num_iters:
            end = it
            while (
                end < num_iters - 1
                and end - it + 1 < block
                and not (self.is_epoch_end(end) or self.is_report(end))
            ):
                end += 1
            started = time.perf_counter()
            done, losses = self._steps(it, end)
            it = end + 1
            seconds = time.perf_counter() - started
            block = min(MAX_BLOCK, max(1, round(done * BLOCK_SECONDS / max(seconds, 1e-9))))
            if self.is_report(end):
                print(f"iteration {end} / {num_iters}: loss {losses[done - 1]:f}")
            if self.is_epoch_end(end) and self._epoch_end(it):
                break
            if (bar.shown or self.o.callback is not None) and self._progress(
                bar, it, losses[done - 1]
            ):
                break

    def _steps(self, it, end):
        """Steps it..end in one block; raises TrainingDivergedError when one diverged."""
        o = self.o
        batches = self.sampler.draw(end - it + 1)
        rates = scheduled_rates(
            o.schedule, o.schedule_params, o.learning_rate, self.learning_rate, it,
            len(batches), o.num_iters, self.trainee.dtype,
        )  # fmt: skip
        done, losses = self.trainee.runner.steps(batches, rates, self.state["step"])
        self.state["step"] += done
        self.history["loss_history"].extend(losses[:done])
        if done < len(batches):
            raise v.TrainingDivergedError(it + done, losses[done], self.history)
        return done, losses

    def _epoch_end(self, it):
        """The accuracies, the decay and early stopping; returns whether to stop."""
        trainee, history = self.trainee, self.history
        history["train_acc_history"].append(trainee.runner.last_batch_accuracy())
        history["val_acc_history"].append(np.mean(trainee.predict(self.X_val) == self.y_val))
        if self.o.schedule == "step":
            self.learning_rate *= self.o.learning_rate_decay
        if self.stopper is None:
            return False
        val_loss = None
        if self.stopper.monitor == "val_loss":
            val_loss = validation_loss(trainee.predict_proba(self.X_val), self.y_val)
        return self.stopper.update(history["val_acc_history"][-1], val_loss, it, trainee.params)

    def _progress(self, bar, it, loss):
        """The progress bar and the callback; returns whether the callback asked to stop."""
        progress = TrainingProgress(it, self.o.num_iters, float(loss), self.history)
        if bar.shown:
            bar.update(it, progress.summary())
        return self.o.callback is not None and self.o.callback(progress) is False
