"""The options of a ``train`` call, as one object: what ``train``, the command line and the
search pass around instead of sixteen arguments. Pure Python and NumPy."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .. import _validation as v
from .._optimizer_spec import resolve_optimizer, resolve_schedule


@dataclass(frozen=True)
class TrainOptions:
    """How to train: the keyword arguments of :meth:`mlp_numba.TwoLayerNet.train`, which
    documents each, with its defaults.

    ``net.train(X, y, X_val, y_val, **options.as_kwargs())`` trains with them; the command
    line and the search build one and pass it so. :meth:`checked` validates every field and
    fills in the optimizer's and the schedule's parameters.

    Examples
    --------
    >>> from mlp_numba import TrainOptions
    >>> options = TrainOptions(learning_rate=0.1, num_iters=50, optimizer="adam")
    >>> options.checked().optimizer_params["beta1"]
    0.9
    >>> options.replace(batch_size=64).batch_size
    64
    """

    learning_rate: float = 1e-3
    learning_rate_decay: float = 0.95
    reg: float = 5e-6
    num_iters: int = 100
    batch_size: int = 200
    verbose: bool = False
    optimizer: str = "sgd"
    optimizer_params: dict | None = None
    schedule: str = "step"
    schedule_params: dict | None = None
    sampling: str = "replacement"
    early_stopping: object = None
    iterations_per_epoch: int | None = None
    callback: object = None
    progress: bool = False
    dropout: float = 0.0

    @classmethod
    def from_arguments(cls, arguments):
        """The options among ``arguments`` (a mapping, e.g. a ``train`` call's ``locals()``)."""
        return cls(**{f.name: arguments[f.name] for f in dataclasses.fields(cls)})

    def as_kwargs(self):
        """The options as ``train``'s keyword arguments."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def replace(self, **changes):
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)

    def checked(self):
        """A copy with every field validated (ValueError or TypeError naming the argument)
        and the optimizer's and the schedule's parameters filled in."""
        rate, decay, reg, num_iters, batch_size = v.check_train_args(
            self.learning_rate, self.learning_rate_decay, self.reg, self.num_iters,
            self.batch_size,
        )  # fmt: skip
        optimizer, optimizer_params = resolve_optimizer(self.optimizer, self.optimizer_params)
        schedule, schedule_params = resolve_schedule(self.schedule, self.schedule_params)
        if self.callback is not None and not callable(self.callback):
            raise TypeError(f"callback must be callable, got {type(self.callback).__name__}")
        if not isinstance(self.progress, (bool, np.bool_)):
            raise TypeError(f"progress must be True or False, got {type(self.progress).__name__}")
        per_epoch = self.iterations_per_epoch
        if per_epoch is not None:
            per_epoch = v.check_int("iterations_per_epoch", per_epoch, 1)
        dropout = v.check_float("dropout", self.dropout, minimum=0.0)
        if dropout >= 1.0:
            raise ValueError(
                f"dropout must be < 1 (the probability of dropping a unit), got {dropout}"
            )
        return self.replace(
            learning_rate=rate, learning_rate_decay=decay, reg=reg, num_iters=num_iters,
            batch_size=batch_size, optimizer=optimizer, optimizer_params=optimizer_params,
            schedule=schedule, schedule_params=schedule_params, iterations_per_epoch=per_epoch,
            dropout=dropout, progress=bool(self.progress),
        )  # fmt: skip
