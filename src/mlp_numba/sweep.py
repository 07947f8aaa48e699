"""Hyperparameter sweeps on Optuna: samplers that learn (TPE), pruning on the learning curve,
and studies kept in a database (``pip install 'mlp-numba[optuna]'``).

:func:`run_study` takes the same space as :mod:`mlp_numba.search` (lists of values, and for
the samplers that draw, ``("loguniform", low, high)`` or ``("int", low, high)`` ranges) and
returns the Optuna study. Each trial trains a fresh net on the training rows and reports its
validation accuracy at every epoch boundary the training loop records, and at the end
(step = epoch number, from 1); a pruner may stop it at such a boundary.

Examples
--------
>>> from mlp_numba.datasets import prepare
>>> from mlp_numba.sweep import run_study
>>> data = prepare("digits")  # doctest: +SKIP
>>> study = run_study(data, {"learning_rate": ("loguniform", 1e-3, 1e-1)}, n_trials=10,
...                   epochs=5)  # doctest: +SKIP
>>> study.best_value > 0.9  # doctest: +SKIP
True
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np

from . import _validation as v
from .search import DEFAULTS, _check_names, _net, train_options

__all__ = ["PRUNERS", "SAMPLERS", "run_study"]

#: The samplers :func:`run_study` offers.
SAMPLERS = ("grid", "random", "tpe")
#: The pruners :func:`run_study` offers. ``median`` waits for ``MEDIAN_STARTUP_TRIALS`` finished
#: trials, and its warm-up lets every trial reach epoch ``MEDIAN_WARMUP_EPOCHS`` (the end of that
#: epoch is the first where it may stop); ``hyperband`` runs brackets from 1 epoch to all.
PRUNERS = ("none", "median", "hyperband")
MEDIAN_STARTUP_TRIALS = 5
MEDIAN_WARMUP_EPOCHS = 2
#: A trial in a database storage beats every HEARTBEAT_SECONDS; one silent for GRACE_SECONDS (its
#: process was killed) is marked failed by the next process that runs the study, and its slot
#: runs again.
HEARTBEAT_SECONDS = 5
GRACE_SECONDS = 15


def _optuna():
    try:
        import optuna
    except ImportError as exc:
        raise ImportError(
            "Optuna sweeps need the optuna extra: pip install 'mlp-numba[optuna]'"
        ) from exc
    return optuna


def _encode(value):
    """A space value as Optuna can store it (widths of several layers as "256-128")."""
    if isinstance(value, (tuple, list)):
        return "-".join(str(int(w)) for w in value)
    return value


def _decode(name, value):
    if name == "hidden_sizes" and isinstance(value, str):
        return tuple(int(w) for w in value.split("-"))
    return value


def _is_range(spec):
    return isinstance(spec, tuple) and len(spec) == 3 and spec[0] in ("loguniform", "int")


def _values(spec):
    """A space entry's values, encoded (a list or tuple of values, or one value)."""
    return [_encode(x) for x in (spec if isinstance(spec, (list, tuple)) else [spec])]


def _suggest(trial, name, spec):
    if _is_range(spec):
        kind, low, high = spec
        if kind == "int":
            return trial.suggest_int(name, int(low), int(high), log=True)
        return trial.suggest_float(name, float(low), float(high), log=True)
    return _decode(name, trial.suggest_categorical(name, _values(spec)))


def _sampler(optuna, name, space, seed):
    if name == "grid":
        ranges = [k for k, spec in space.items() if _is_range(spec)]
        if ranges:
            raise ValueError(f"sampler 'grid' needs lists of values; {ranges} are ranges")
        grid = {k: _values(spec) for k, spec in space.items()}
        return optuna.samplers.GridSampler(grid, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _pruner(optuna, name, epochs):
    if name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=MEDIAN_STARTUP_TRIALS, n_warmup_steps=MEDIAN_WARMUP_EPOCHS
        )
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
    return optuna.pruners.NopPruner()


def _objective(optuna, data, space, epochs, batch_size, seed, keep):
    X_train, y_train, X_val, y_val = data.X_train, data.y_train, data.X_val, data.y_val
    per_epoch = max(math.ceil(len(X_train) / batch_size), 1)

    def objective(trial):
        settings = {**DEFAULTS, **{k: _suggest(trial, k, s) for k, s in space.items()}}
        net = _net(settings, data.num_features, data.num_classes, X_train.dtype,
                   seed + trial.number)  # fmt: skip
        reported = []

        def on_progress(progress):
            # The loop records the validation accuracy at it = 0, per, 2 per, ...: the record
            # k >= 1 closes epoch k.
            history = progress.history["val_acc_history"]
            while len(reported) + 1 < len(history):
                step = len(reported) + 1
                reported.append(history[step])
                trial.report(float(history[step]), step)
                if trial.should_prune():
                    return False
            return True

        options = train_options(settings, epochs, per_epoch, batch_size, on_progress)
        try:
            net.train(np.array(X_train), y_train, X_val, y_val, **options.as_kwargs())
        except FloatingPointError:  # diverged: a result too
            trial.set_user_attr("status", "diverged")
            return 0.0
        if trial.should_prune() and len(reported) < epochs:
            trial.set_user_attr("epochs", len(reported))
            raise optuna.TrialPruned()
        val_acc = float((net.predict(X_val) == y_val).mean())
        trial.report(val_acc, epochs)
        trial.set_user_attr("epochs", epochs)
        keep(trial.number, val_acc, net)
        return val_acc

    return objective


def _storage(optuna, url):
    """A database URL as Optuna's RDB storage with heartbeats; anything else as given."""
    if isinstance(url, str) and not url.startswith(("redis", "journal")):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 4
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS
                )
        except Exception as exc:  # SQLAlchemy's or the driver's: a URL it cannot open
            raise ValueError(f"storage {url!r} cannot be opened: {exc}") from exc
    return url


def _fingerprint(data, space, epochs, batch_size, seed):
    """What the trials of a study must share to be compared."""
    encoded = {k: list(spec) if _is_range(spec) else _values(spec)
               for k, spec in sorted(space.items())}  # fmt: skip
    return {
        "data set": f"{data.name} ({len(data.X_train)} train / {len(data.X_val)} validation)",
        "space": json.dumps(encoded, sort_keys=True), "epochs": epochs,
        "batch size": batch_size, "dtype": np.dtype(data.X_train.dtype).name, "seed": seed,
    }  # fmt: skip


def _check_same_study(study, fingerprint):
    stored = study.user_attrs.get("mlp_numba")
    if stored is None:
        study.set_user_attr("mlp_numba", fingerprint)
        return
    differing = [k for k in fingerprint if stored.get(k) != fingerprint[k]]
    if differing:
        details = "; ".join(f"{k}: {stored.get(k)} there, {fingerprint[k]} here" for k in differing)
        raise ValueError(
            f"study {study.study_name!r} was run with another {', '.join(differing)} ({details}):"
            " give another study name (--study-name) rather than mix its trials"
        )


def run_study(
    data,
    space,
    *,
    sampler="tpe",
    n_trials=20,
    pruner="median",
    storage=None,
    study_name=None,
    epochs=10,
    batch_size=200,
    seed=0,
    progress=False,
):
    """Run an Optuna study of nets on ``data`` over ``space``; returns the study.

    Parameters
    ----------
    data : mlp_numba.datasets.Split
        Trials train on ``X_train`` and are scored on ``X_val``.
    space : dict
        Names of :data:`mlp_numba.search.DEFAULTS` -> a list of values, or for the ``random``
        and ``tpe`` samplers a range ``("loguniform", low, high)`` or ``("int", low, high)``.
        ``hidden_sizes`` values are tuples of widths (stored as ``"256-128"``).
    sampler : {"grid", "random", "tpe"}, default "tpe"
    n_trials : int, default 20
        Finished (complete or pruned) trials the study ends with: a study resumed from its
        storage runs only the rest (a grid stops when every point ran).
    pruner : {"none", "median", "hyperband"}, default "median"
        See :data:`PRUNERS` for the median pruner's warm-up.
    storage : str, optional
        An Optuna storage URL (``sqlite:///study.db``, ``postgresql://...``); None keeps the
        study in memory.
    study_name : str, optional
        Loaded when it exists in ``storage`` (the sweep resumes), else created. A stored
        study run on another data set, space, epochs, batch size, dtype or seed is refused.
    epochs, batch_size, seed : int
        Trial ``n``'s net is seeded with ``seed + n``; the samplers with ``seed``.
    progress : bool, default False
        Optuna's progress bar.

    Returns
    -------
    optuna.Study
        With two attributes set on it: ``best_net``, the best net trained in this call (None
        when no trial of this call finished), and ``best_net_trial``, its trial number.
    """
    optuna = _optuna()
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    if pruner not in PRUNERS:
        raise ValueError(f"pruner must be one of {', '.join(PRUNERS)}, got {pruner!r}")
    _check_names(space)
    n_trials = v.check_int("n_trials", n_trials, minimum=1)
    epochs = v.check_int("epochs", epochs, minimum=1)
    batch_size = v.check_int("batch_size", batch_size, minimum=1)
    storage = _storage(optuna, storage)
    try:
        study = optuna.create_study(
            storage=storage, study_name=study_name, direction="maximize",
            sampler=_sampler(optuna, sampler, space, seed),
            pruner=_pruner(optuna, pruner, epochs), load_if_exists=True,
        )  # fmt: skip
    except (ValueError, ImportError, RuntimeError) as exc:
        raise ValueError(f"storage {storage!r} cannot be opened: {exc}") from exc
    except Exception as exc:  # SQLAlchemy's errors: a URL it cannot reach
        if type(exc).__module__.startswith("sqlalchemy"):
            raise ValueError(f"storage {storage!r} cannot be opened: {exc}") from exc
        raise
    _check_same_study(study, _fingerprint(data, space, epochs, batch_size, seed))
    best = {}

    def keep(number, val_acc, net):
        if not best or val_acc > best["val_acc"]:
            best.update(number=number, val_acc=val_acc, net=net)

    objective = _objective(optuna, data, space, epochs, batch_size, seed, keep)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    finished = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED
    remaining = n_trials - len(study.get_trials(deepcopy=False, states=finished))
    if remaining > 0:
        study.optimize(objective, n_trials=remaining, show_progress_bar=progress)
    study.best_net = best.get("net")
    study.best_net_trial = best.get("number")
    return study
