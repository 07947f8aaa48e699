"""Hyperparameter sweeps on Optuna: samplers that learn (TPE), pruning on the learning curve,
and studies kept in a database (``pip install 'mlp-numba[optuna]'``).

:func:`run_study` takes the same space as :mod:`mlp_numba.search` (lists of values, and for
the samplers that draw, ``("loguniform", low, high)`` or ``("int", low, high)`` ranges) and
returns the Optuna study. Each trial trains a fresh net on the training rows and reports its
validation accuracy at every epoch boundary the training loop records, and at the end
(step = epoch number, from 1); a pruner may stop it at such a boundary.

Who talks to the storage: the calling process opens the study (it checks that a stored study
was run on the same data, space and settings), and at the end reads the best trial and its
model. The trials run in ``n_jobs`` workers (this process when ``n_jobs`` is 1, else joblib's
processes on this machine, or Dask workers with ``scheduler``); each worker opens the storage
itself and writes its own trials, so the workers of a Dask cluster need a database they all
reach (PostgreSQL, MySQL) and a models folder they all share; an SQLite file serves the
workers of one machine.

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

import contextlib
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np

from . import _validation as v
from ._optuna_space import (
    MEDIAN_STARTUP_TRIALS,
    MEDIAN_WARMUP_EPOCHS,
    check_same_study,
    fingerprint,
    grid_values,
    make_pruner,
    make_sampler,
    sampler_seed,
    suggest,
)
from ._optuna_trials import DuplicateGridPoint, ModelKeeper, claim_grid_point, fail_stale_trials
from .search import (
    DEFAULTS,
    _check_names,
    _net,
    limit_threads,
    on_cluster,
    train_options,
    worker_threads,
)

__all__ = ["MEDIAN_STARTUP_TRIALS", "MEDIAN_WARMUP_EPOCHS", "PRUNERS", "SAMPLERS", "run_study"]

#: The samplers :func:`run_study` offers.
SAMPLERS = ("grid", "random", "tpe")
#: The pruners :func:`run_study` offers. ``median`` waits for :data:`MEDIAN_STARTUP_TRIALS`
#: finished trials and lets every trial reach epoch :data:`MEDIAN_WARMUP_EPOCHS`;
#: ``hyperband`` runs brackets from 1 epoch to all.
PRUNERS = ("none", "median", "hyperband")
#: A trial in a database storage beats every HEARTBEAT_SECONDS; one silent for GRACE_SECONDS (its
#: process was killed) is marked failed by the next worker that starts a trial, and its slot
#: runs again.
HEARTBEAT_SECONDS = 5
GRACE_SECONDS = 15
_FINISHED = ("COMPLETE", "PRUNED")
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "")


def _optuna():
    try:
        import optuna
    except ImportError as exc:
        raise ImportError(
            "Optuna sweeps need the optuna extra: pip install 'mlp-numba[optuna]'"
        ) from exc
    return optuna


@dataclass(frozen=True)
class _Sweep:
    """What each worker of one sweep needs; it crosses to worker processes, so plain values."""

    storage: str | None
    study_name: str
    space: dict
    sampler: str
    pruner: str
    n_trials: int
    epochs: int
    batch_size: int
    seed: int
    models: str | None
    trials_before: int
    shared: bool
    metadata: dict = field(default_factory=dict)


def _objective(optuna, sweep, arrays, keeper, heartbeats):
    X_train, y_train, X_val, y_val, num_classes = arrays
    if not X_train.flags.writeable:  # a memory map handed over by joblib: a private copy, once
        X_train = np.array(X_train)
    per_epoch = max(math.ceil(len(X_train) / sweep.batch_size), 1)

    def objective(trial):
        settings = {**DEFAULTS, **{k: suggest(trial, k, s) for k, s in sweep.space.items()}}
        if sweep.sampler == "grid":
            claim_grid_point(optuna, trial, HEARTBEAT_SECONDS, heartbeats)
        net = _net(settings, X_train.shape[1], num_classes, X_train.dtype,
                   sweep.seed + trial.number)  # fmt: skip
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

        options = train_options(settings, sweep.epochs, per_epoch, sweep.batch_size, on_progress)
        try:
            net.train(X_train, y_train, X_val, y_val, **options.as_kwargs())
        except FloatingPointError:  # diverged: a result too
            trial.set_user_attr("status", "diverged")
            trial.set_user_attr("epochs", len(reported))
            return 0.0
        if trial.should_prune() and len(reported) < sweep.epochs:
            trial.set_user_attr("epochs", len(reported))
            raise optuna.TrialPruned()
        val_acc = float((net.predict(X_val) == y_val).mean())
        trial.report(val_acc, sweep.epochs)
        trial.set_user_attr("epochs", sweep.epochs)
        keeper.keep(trial, val_acc, net)
        return val_acc

    return objective


def _storage(optuna, url):
    """A database URL as Optuna's RDB storage with heartbeats; anything else as given."""
    if isinstance(url, str) and not url.startswith(("redis", "journal")):
        with _opening(url), warnings.catch_warnings():  # heartbeats: "experimental" in Optuna 4
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS
            )
    return url


@contextlib.contextmanager
def _opening(storage):
    """Failures to open ``storage`` (SQLAlchemy's, the driver's, Optuna's) as a ValueError that
    names it."""
    try:
        yield
    except Exception as exc:
        from_database = type(exc).__module__.startswith(("sqlalchemy", "psycopg"))
        if not (from_database or isinstance(exc, (ValueError, ImportError, RuntimeError))):
            raise
        raise ValueError(f"storage {storage!r} cannot be opened: {exc}") from exc


def public_url(url):
    """The storage URL without its password (it goes into model files and messages)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a database URL
        return url


def _counts(optuna, study):
    """The study's finished (complete or pruned) and running trials."""
    states = [t.state.name for t in study.get_trials(deepcopy=False)]
    return sum(states.count(s) for s in _FINISHED), states.count("RUNNING")


def _optimize(optuna, sweep, storage, arrays, worker, progress=False):
    """Run trials of the study until it has ``sweep.n_trials`` finished ones; return the
    worker's :class:`ModelKeeper`.

    Trials of other workers count: a worker starts a trial only while finished and running
    trials are fewer than asked, and waits while running ones would make up the rest (one of
    them may fail). So the count overshoots only when workers start trials at the same moment:
    by at most K - 1 with K workers.
    """
    # A grid's order comes from the seed, and its points are named by their place in it: every
    # worker must hold the same order.
    seed = sweep.seed if sweep.sampler == "grid" else sampler_seed(sweep.seed, worker,
                                                                   sweep.trials_before)  # fmt: skip
    study = optuna.load_study(
        study_name=sweep.study_name, storage=storage,
        sampler=make_sampler(optuna, sweep.sampler, sweep.space, seed, sweep.shared),
        pruner=make_pruner(optuna, sweep.pruner, sweep.epochs),
    )  # fmt: skip
    keeper = ModelKeeper(optuna, sweep.models, sweep.metadata)
    heartbeats = isinstance(storage, optuna.storages.RDBStorage)
    objective = _objective(optuna, sweep, arrays, keeper, heartbeats)

    def enough(study, _trial):
        if sum(_counts(optuna, study)) >= sweep.n_trials:
            study.stop()

    waited = 0
    while True:
        finished, running = _counts(optuna, study)
        if finished >= sweep.n_trials:
            return keeper
        if finished + running >= sweep.n_trials:  # wait: they finish, or fail (then rerun)
            waited += 1
            if waited == 2 * GRACE_SECONDS:  # a trial without heartbeats never goes stale
                message = f"study {sweep.study_name!r}: waiting for {running} running trial(s)"
                warnings.warn(message, RuntimeWarning, stacklevel=2)
            time.sleep(1)
            if heartbeats:
                fail_stale_trials(optuna, study)
            continue
        with warnings.catch_warnings():  # Optuna 4 calls its "experimental" stale-trial check
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.optimize(objective, n_trials=sweep.n_trials - finished - running,
                           callbacks=[enough], catch=(DuplicateGridPoint,),
                           show_progress_bar=progress)  # fmt: skip


def _work(sweep, arrays, worker, threads):
    """One worker process of a shared sweep (joblib's or Dask's)."""
    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with limit_threads(threads):
        _optimize(optuna, sweep, _storage(optuna, sweep.storage), arrays, worker)


def _open_study(optuna, storage, study_name):
    with _opening(storage):
        return optuna.create_study(storage=storage, study_name=study_name,
                                   direction="maximize", load_if_exists=True)  # fmt: skip


def _default_models(storage):
    """Beside an SQLite file, a folder for the trials' models; elsewhere none by default."""
    if isinstance(storage, str) and storage.startswith("sqlite:///"):
        path = storage.removeprefix("sqlite:///")
        if path and path != ":memory:":
            return os.path.splitext(path)[0] + "-models"
    return None


def _check_workers(storage, n_jobs, scheduler):
    if n_jobs == 1 and scheduler is None:
        return
    if not isinstance(storage, str):
        raise ValueError("n_jobs > 1 or a scheduler needs a storage URL: the workers share the"
                         " study through it")  # fmt: skip
    host = urlsplit(scheduler).hostname if scheduler else ""
    if storage.startswith("sqlite") and (host or "") not in _LOCAL_HOSTS:
        raise ValueError(
            f"storage {storage!r}: the workers of the Dask cluster at {scheduler} cannot reach"
            " an SQLite file on this machine; give a database they all reach"
            " (postgresql://..., mysql://...)"
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
    n_jobs=1,
    scheduler=None,
    threads_per_trial=None,
    models=None,
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
        A grid point finishes once, even with many workers (a second trial drawn for it ends
        FAIL with the user attribute ``duplicate_of``).
    n_trials : int, default 20
        Finished (complete or pruned) trials the study ends with: a study resumed from its
        storage runs only the rest; a grid stops when every point ran. With ``n_jobs`` K, up
        to K - 1 more can finish (trials running when the count is reached run to their end).
    pruner : {"none", "median", "hyperband"}, default "median"
        See :data:`PRUNERS` for the median pruner's warm-up.
    storage : str, optional
        An Optuna storage URL (``sqlite:///study.db``, ``postgresql://...``); None keeps the
        study in memory (one worker only).
    study_name : str, optional
        Loaded when it exists in ``storage`` (the sweep resumes), else created. A stored
        study run on another data set, space, epochs, batch size, dtype or seed is refused.
    epochs, batch_size, seed : int
        Trial ``n``'s net is seeded with ``seed + n``; the sampler with ``seed`` (each further
        worker, and each resumption, with a seed drawn from it).
    n_jobs : int, default 1
        Workers sharing the study: processes on this machine, or on the Dask cluster at
        ``scheduler``. Each opens ``storage`` itself.
    scheduler : str, optional
        A Dask scheduler's address (``"tcp://host:8786"``; needs ``dask.distributed``).
    threads_per_trial : int, optional
        Numba and BLAS threads of each worker (default: the CPU count divided by ``n_jobs``).
    models : str or os.PathLike, optional
        The folder (an Optuna ``FileSystemArtifactStore``) where each complete trial leaves its
        model file, with the study's name and the trial's number in its metadata (a trial's
        user attribute ``model`` names it). Default: beside an SQLite file (``study.db`` ->
        ``study-models``); with no folder, only this process's own best net is kept.
    progress : bool, default False
        Optuna's progress bar (one worker).

    Returns
    -------
    optuna.Study
        With three attributes set on it: ``best_net``, the net of the study's best trial (None
        when no trial completed, or its model was not kept), ``best_net_trial``, its trial
        number, and ``best_net_metadata``: the study's name, its storage URL (no password),
        the trial's number and params, as the CLI's ``best_model.npz`` keeps them.
    """
    optuna = _optuna()
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    if pruner not in PRUNERS:
        raise ValueError(f"pruner must be one of {', '.join(PRUNERS)}, got {pruner!r}")
    _check_names(space)
    grid = grid_values(space) if sampler == "grid" else None  # refuses a grid of ranges
    n_trials = v.check_int("n_trials", n_trials, minimum=1)
    if grid is not None:
        n_trials = min(n_trials, math.prod(len(points) for points in grid.values()))
    epochs = v.check_int("epochs", epochs, minimum=1)
    batch_size = v.check_int("batch_size", batch_size, minimum=1)
    n_jobs = v.check_int("n_jobs", n_jobs, minimum=1)
    _check_workers(storage, n_jobs, scheduler)
    threads = worker_threads(n_jobs, threads_per_trial)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opened = _storage(optuna, storage)
    study = _open_study(optuna, opened, study_name)
    check_same_study(study, fingerprint(data, space, epochs, batch_size, seed))
    models = _default_models(storage) if models is None else os.fspath(models)
    shown = public_url(storage) if isinstance(storage, str) else "memory"
    sweep = _Sweep(
        storage=storage, study_name=study.study_name, space=space, sampler=sampler,
        pruner=pruner, n_trials=n_trials, epochs=epochs, batch_size=batch_size, seed=seed,
        models=models, trials_before=len(study.get_trials(deepcopy=False)),
        shared=n_jobs > 1 or bool(scheduler),
        metadata={"study": study.study_name, "storage": shown},
    )  # fmt: skip
    arrays = (data.X_train, data.y_train, data.X_val, data.y_val, data.num_classes)
    if sweep.shared:
        _run_workers(sweep, arrays, n_jobs, scheduler, threads)
        keeper = ModelKeeper(optuna, models, sweep.metadata)
    else:
        keeper = _optimize(optuna, sweep, opened, arrays, 0, progress)
    study.best_net, study.best_net_trial = keeper.best(study)
    study.best_net_metadata = None
    if study.best_net is not None:
        params = study.best_trial.params  # keeper.best gave the best trial's net
        study.best_net_metadata = {**sweep.metadata, "trial": study.best_net_trial,
                                   "params": params}  # fmt: skip
    return study


def _run_workers(sweep, arrays, n_jobs, scheduler, threads):
    from joblib import Parallel, delayed

    if scheduler is not None:
        with on_cluster(scheduler):
            return _run_workers(sweep, arrays, n_jobs, None, threads)
    Parallel(n_jobs=n_jobs)(delayed(_work)(sweep, arrays, i, threads) for i in range(n_jobs))
    return None
