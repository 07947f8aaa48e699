"""The course's training loop, written once for the compiled net and the reference.

Both nets' ``train`` run :func:`run_training`: it checks the arguments, draws the minibatches,
keeps the histories, decays the learning rate at the epoch ends, prints the ``verbose`` lines,
stops early, calls the callback and moves the progress bar. Only the optimizer steps
themselves differ, and a net provides them as a :class:`StepRunner` (``net._step_runner``):
compiled blocks of steps, or the reference's NumPy steps one at a time. Pure Python and
NumPy, so the reference stays independent of the compiled engine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from . import _validation as v
from ._optimizer_spec import resolve_optimizer, resolve_schedule, scheduled_rates
from ._progress import progress_bar
from ._training_plan import BatchSampler, make_early_stopping, validation_loss

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


def _dropout_of(net, dropout):
    """``None`` without dropout, else ``(seed, p)``: a hash seed drawn from the net's random
    state (none is drawn without dropout, so that those runs keep the course's numbers)."""
    p = v.check_float("dropout", dropout, minimum=0.0)
    if p >= 1.0:
        raise ValueError(f"dropout must be < 1 (the probability of dropping a unit), got {p}")
    if p == 0.0:
        return None
    if not net._ANY_DEPTH:
        raise ValueError(
            f"dropout: a {type(net).__name__} trains as the course's net, without dropout; "
            "use mlp_numba.MLP (one hidden layer or more) to drop units"
        )
    rng = net._rng
    bits = rng.integers(2**63) if rng is not None else np.random.randint(2**63 - 1)
    return int(bits), p


def run_training(net, X, y, X_val, y_val, *, learning_rate, learning_rate_decay, reg, num_iters,
                 batch_size, verbose, optimizer, optimizer_params, schedule, schedule_params,
                 sampling, early_stopping, iterations_per_epoch, callback, progress,
                 dropout=0.0):  # fmt: skip
    """``net.train``: the arguments are those of :meth:`mlp_numba.TwoLayerNet.train`."""
    X, y, X_val, y_val = net._check_train_data(X, y, X_val, y_val)
    learning_rate, learning_rate_decay, reg, num_iters, batch_size = v.check_train_args(
        learning_rate, learning_rate_decay, reg, num_iters, batch_size
    )
    optimizer, optimizer_params = resolve_optimizer(optimizer, optimizer_params)
    schedule, schedule_params = resolve_schedule(schedule, schedule_params)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    if not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"progress must be True or False, got {type(progress).__name__}")
    num_train = len(X)
    if iterations_per_epoch is None:
        iterations_per_epoch = max(num_train / batch_size, 1)
    else:
        iterations_per_epoch = v.check_int("iterations_per_epoch", iterations_per_epoch, 1)
    sampler = BatchSampler(net._rng, num_train, batch_size, sampling)
    stopper = make_early_stopping(early_stopping)
    state = net._optimizer_state_for(optimizer, optimizer_params)
    runner = net._step_runner(X, y, reg, batch_size, state, _dropout_of(net, dropout))
    history = {"loss_history": [], "train_acc_history": [], "val_acc_history": []}
    base_rate = learning_rate

    def is_epoch_end(it):
        return it % iterations_per_epoch == 0

    def is_report(it):
        return bool(verbose) and it % 100 == 0

    with progress_bar(num_iters, "train", enabled=bool(progress), required=True) as bar:
        it, block = 0, 1
        while it < num_iters:
            # Run up to the next point where the course does something in Python.
            end = it
            while (
                end < num_iters - 1
                and end - it + 1 < block
                and not (is_epoch_end(end) or is_report(end))
            ):
                end += 1
            started = time.perf_counter()
            batches = sampler.draw(end - it + 1)
            rates = scheduled_rates(
                schedule, schedule_params, base_rate, learning_rate, it, len(batches), num_iters,
                net.dtype,
            )  # fmt: skip
            done, losses = runner.steps(batches, rates, state["step"])
            state["step"] += done
            history["loss_history"].extend(losses[:done])
            if done < len(batches):
                raise v.TrainingDivergedError(it + done, losses[done], history)
            it = end + 1
            seconds = time.perf_counter() - started
            block = min(MAX_BLOCK, max(1, round(done * BLOCK_SECONDS / max(seconds, 1e-9))))

            if is_report(end):
                print(f"iteration {end} / {num_iters}: loss {losses[done - 1]:f}")
            if is_epoch_end(end):
                history["train_acc_history"].append(runner.last_batch_accuracy())
                history["val_acc_history"].append(np.mean(net.predict(X_val) == y_val))
                if schedule == "step":
                    learning_rate *= learning_rate_decay
                if stopper is not None:
                    val_loss = (
                        validation_loss(net.predict_proba(X_val), y_val)
                        if stopper.monitor == "val_loss"
                        else None
                    )
                    if stopper.update(history["val_acc_history"][-1], val_loss, it, net.params):
                        break
            if bar.shown or callback is not None:
                progress = TrainingProgress(it, num_iters, float(losses[done - 1]), history)
                if bar.shown:
                    bar.update(it, progress.summary())
                if callback is not None and callback(progress) is False:
                    break
    if stopper is not None:
        stopper.restore(net.params)
        history.update(stopper.summary())
    return history
