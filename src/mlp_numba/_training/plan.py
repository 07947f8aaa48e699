"""What both nets' ``train`` loops share beyond the course: minibatch sampling and early stopping.

Pure Python and NumPy, so that the reference and the compiled net follow one plan exactly.
"""

from __future__ import annotations

import numpy as np

from .. import _validation as v

SAMPLINGS = ("replacement", "permutation")
MONITORS = ("val_acc", "val_loss")


class BatchSampler:
    """Minibatch indices: with replacement (the course's) or through a fresh permutation of the
    training rows each epoch, the permutations following one another as one stream.

    ``rng`` None draws from NumPy's global random state, as the course does.
    """

    def __init__(self, rng, num_train, batch_size, sampling="replacement"):
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        self.rng, self.num_train, self.batch_size, self.sampling = (
            rng,
            num_train,
            batch_size,
            sampling,
        )
        self._stream = np.empty(0, dtype=np.intp)

    def draw(self, n_iters):
        """Indices for the next ``n_iters`` iterations, shape (n_iters, batch_size).

        With replacement, one draw of the whole block gives the same numbers as n_iters draws
        of one batch (``np.random.choice`` and ``Generator.integers`` alike; a test checks it),
        so the course's random stream is followed exactly.
        """
        shape = (n_iters, self.batch_size)
        if self.sampling == "replacement":
            if self.rng is None:
                return np.random.choice(self.num_train, shape)
            return self.rng.integers(0, self.num_train, size=shape)
        needed = n_iters * self.batch_size
        parts = [self._stream]
        have = len(self._stream)
        while have < needed:
            perm = (np.random.permutation(self.num_train) if self.rng is None
                    else self.rng.permutation(self.num_train))  # fmt: skip
            parts.append(perm)
            have += len(perm)
        stream = np.concatenate(parts)
        self._stream = stream[needed:]
        return stream[:needed].reshape(shape)


class EarlyStopping:
    """Stops training when the monitored validation score has not improved for ``patience``
    epoch ends, and puts back the params of the best one.

    Parameters
    ----------
    patience : int
    monitor : {"val_acc", "val_loss"}
    min_delta : float
        The least change that counts as an improvement.
    """

    def __init__(self, patience=10, monitor="val_acc", min_delta=0.0):
        self.patience = v.check_int("patience", patience, minimum=1)
        if monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {MONITORS}, got {monitor!r}")
        self.monitor = monitor
        self.min_delta = v.check_float("min_delta", min_delta, minimum=0.0)
        self.best_score, self.best_iteration, self.stale = None, None, 0
        self.best_params, self.stopped = None, False

    def update(self, val_acc, val_loss, iteration, params):
        """Record an epoch end's score; returns True when training should stop."""
        score = val_acc if self.monitor == "val_acc" else -val_loss
        if self.best_score is None or score > self.best_score + self.min_delta:
            self.best_score, self.best_iteration, self.stale = score, iteration, 0
            self.best_params = {k: p.copy() for k, p in params.items()}
        else:
            self.stale += 1
        self.stopped = self.stale >= self.patience
        return self.stopped

    def restore(self, params):
        """Copy the best params back into ``params`` (in place)."""
        if self.best_params is not None:
            for key, best in self.best_params.items():
                params[key][...] = best

    def summary(self):
        score = (
            self.best_score
            if self.monitor == "val_acc" or self.best_score is None
            else -self.best_score
        )
        return {"best_iteration": self.best_iteration, "best_val_score": score,
                "stopped_early": self.stopped}  # fmt: skip


def make_early_stopping(option):
    """An :class:`EarlyStopping` from ``train``'s ``early_stopping`` argument, or None."""
    if option is None or option is False:
        return None
    if option is True:
        return EarlyStopping()
    if not isinstance(option, dict):
        raise TypeError(f"early_stopping must be None, True or a dict, got {option!r}")
    unknown = sorted(set(option) - {"patience", "monitor", "min_delta"})
    if unknown:
        raise ValueError(f"early_stopping has {unknown}; it takes patience, monitor, min_delta")
    return EarlyStopping(**option)


def validation_loss(proba, y):
    """Mean cross-entropy of the predicted probabilities (no regularisation)."""
    picked = np.asarray(proba[np.arange(len(y)), y], dtype=np.float64)
    return float(-np.log(np.maximum(picked, np.finfo(np.float64).tiny)).mean())
