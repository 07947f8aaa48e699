"""Hyperparameter search as the course's reports do it: grid or random trials on a fixed
validation split, run in parallel processes (joblib) or on a Dask cluster, with no code change.

Each trial trains a fresh :class:`mlp_numba.TwoLayerNet` and scores it on the validation rows.
Trials running side by side share the machine: each gets ``cores // n_jobs`` Numba and BLAS
threads, so the cores are not oversubscribed.

Examples
--------
>>> from mlp_numba.datasets import prepare
>>> from mlp_numba.search import grid, run_search
>>> data = prepare("digits")  # doctest: +SKIP
>>> result = run_search(data, grid({"hidden_size": [50, 100], "learning_rate": [0.1, 1.0]}),
...                     epochs=20, n_jobs=2)  # doctest: +SKIP
>>> result.table[0]["val_acc"] >= result.table[-1]["val_acc"]  # doctest: +SKIP
True
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np

from . import _validation as v
from ._atomic import atomic_write
from ._progress import progress_bar
from ._training import TrainOptions
from .net import TwoLayerNet

#: The hyperparameters a trial takes, with the values used when a space leaves them out.
DEFAULTS = {
    "hidden_size": 100,
    # Several hidden layers' widths, e.g. (256, 128): the trial's net is then an MLP of that
    # depth (``hidden_size`` unused). Search depth and widths with a list of such tuples.
    "hidden_sizes": None,
    "activation": "relu",
    "learning_rate": 1e-3,
    "learning_rate_decay": 0.95,
    "reg": 1e-4,
    "optimizer": "sgd",
    "std": 1e-2,
}


def grid(space):
    """Every combination of the listed values: ``{"reg": [1e-4, 1e-3], ...}`` -> list of dicts."""
    _check_names(space)
    keys = sorted(space)
    values = [list(space[k]) if isinstance(space[k], (list, tuple)) else [space[k]] for k in keys]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


def random_configs(space, n_trials, seed=0):
    """``n_trials`` random draws from ``space``.

    Each entry is a list (a uniform choice), a fixed value, or a tuple ``("loguniform", low,
    high)``, ``("uniform", low, high)`` or ``("int", low, high)`` (inclusive).

    Examples
    --------
    >>> configs = random_configs({"learning_rate": ("loguniform", 1e-4, 1e-1),
    ...                           "hidden_size": ("int", 50, 200)}, 3, seed=0)
    >>> len(configs), sorted(configs[0])
    (3, ['hidden_size', 'learning_rate'])
    """
    _check_names(space)
    n_trials = v.check_int("n_trials", n_trials, minimum=1)
    rng = np.random.default_rng(v.check_int("seed", seed, minimum=0))
    configs = []
    for _ in range(n_trials):
        config = {}
        for key in sorted(space):
            spec = space[key]
            if isinstance(spec, list):
                config[key] = spec[rng.integers(len(spec))]
            elif isinstance(spec, tuple):
                kind, low, high = spec
                if kind == "loguniform":
                    config[key] = float(math.exp(rng.uniform(math.log(low), math.log(high))))
                elif kind == "uniform":
                    config[key] = float(rng.uniform(low, high))
                elif kind == "int":
                    config[key] = int(rng.integers(low, high + 1))
                else:
                    raise ValueError(f"space[{key!r}]: unknown distribution {kind!r}")
            else:
                config[key] = spec
        configs.append(config)
    return configs


def _check_names(space):
    if not isinstance(space, dict) or not space:
        raise TypeError(f"space must be a non-empty dict, got {space!r}")
    unknown = sorted(set(space) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"space has {unknown}; searchable: {', '.join(DEFAULTS)}")


@dataclass
class SearchResult:
    """The trials, best validation accuracy first, and the best trial's net."""

    table: list = field(default_factory=list)
    best_net: TwoLayerNet | None = None  # or an MLP

    def write(self, directory, arrays=None):
        """Write ``results.csv``, ``results.json`` and ``best_model.npz`` into ``directory``;
        ``arrays`` are kept with the model (the CLI keeps the data's preprocessing)."""
        os.makedirs(directory, exist_ok=True)
        write_rows(directory, "results", self.table)
        self.best_net.save(os.path.join(directory, "best_model.npz"),
                           metadata={"search": self.table[0]}, arrays=arrays)  # fmt: skip
        return [os.path.join(directory, n) for n in ("results.csv", "results.json",
                                                      "best_model.npz")]  # fmt: skip


def write_rows(directory, stem, rows, columns=None):
    """``rows`` (dicts) as ``stem.csv`` and ``stem.json`` in ``directory``, each written
    atomically; the CSV's columns are ``columns``, by default the first row's keys."""
    with atomic_write(os.path.join(directory, f"{stem}.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, columns or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with atomic_write(os.path.join(directory, f"{stem}.json"), "w") as f:
        json.dump(rows, f, indent=1)


def worker_threads(n_jobs, threads_per_trial=None):
    """Numba and BLAS threads of each of ``n_jobs`` workers: ``threads_per_trial`` when given,
    else the CPU count shared out, so that workers side by side do not oversubscribe it."""
    if threads_per_trial is None:
        return max(1, (os.cpu_count() or 1) // n_jobs)
    return v.check_int("threads_per_trial", threads_per_trial, minimum=1)


@contextlib.contextmanager
def on_cluster(scheduler):
    """Inside the block, joblib runs its tasks on the Dask cluster at ``scheduler`` (needs
    ``dask.distributed``)."""
    from dask.distributed import Client
    from joblib import parallel_backend

    with Client(scheduler), parallel_backend("dask"):
        yield


def _net(settings, n_features, n_classes, dtype, seed):
    """A trial's net: an MLP when ``settings`` give several hidden widths, else a TwoLayerNet."""
    common = dict(std=settings["std"], activation=settings["activation"], dtype=dtype, seed=seed)
    if settings.get("hidden_sizes") is not None:
        from .mlp import MLP

        return MLP(n_features, tuple(settings["hidden_sizes"]), n_classes, **common)
    return TwoLayerNet(n_features, int(settings["hidden_size"]), n_classes, **common)


def train_options(settings, epochs, per_epoch, batch_size, callback=None):
    """The :class:`TrainOptions` of a trial with ``settings`` (a search's and a sweep's)."""
    return TrainOptions(
        learning_rate=settings["learning_rate"],
        learning_rate_decay=settings["learning_rate_decay"], reg=settings["reg"],
        num_iters=epochs * per_epoch, batch_size=batch_size, optimizer=settings["optimizer"],
        iterations_per_epoch=per_epoch, callback=callback,
    )  # fmt: skip


@contextlib.contextmanager
def limit_threads(threads):
    """Numba's and BLAS's threads at most ``threads`` inside the block (a worker's share of the
    cores, so workers side by side do not oversubscribe them)."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(threads)
    except ImportError:  # BLAS keeps its own setting
        limits = None
    try:
        yield
    finally:
        if limits is not None:
            limits.restore_original_limits()
        numba.set_num_threads(before)


def _trial(index, config, data, epochs, batch_size, seed, threads):
    """One trial, run in a worker: returns its row and its params."""
    with limit_threads(threads):
        return _run_trial(index, config, data, epochs, batch_size, seed)


def _run_trial(index, config, data, epochs, batch_size, seed):
    settings = {**DEFAULTS, **config}
    X_train, y_train, X_val, y_val, num_classes = data
    per_epoch = max(math.ceil(len(X_train) / batch_size), 1)
    net = _net(settings, X_train.shape[1], num_classes, X_train.dtype, seed + index)
    started = time.perf_counter()
    status = "ok"
    try:
        options = train_options(settings, epochs, per_epoch, batch_size)
        # A private, writeable copy of X: joblib may hand over a memory map.
        history = net.train(np.array(X_train), y_train, X_val, y_val, **options.as_kwargs())
        val_acc = float((net.predict(X_val) == y_val).mean())
        # As an Optuna sweep reports them (``sweep``): record k >= 1 of the loop closes epoch
        # k, and the last epoch's is the final accuracy.
        curve = [round(float(a), 6) for a in history["val_acc_history"][1:epochs]]
        curve.append(round(val_acc, 6))
    except FloatingPointError:  # TrainingDivergedError: a rate too large is a result too
        status, val_acc, curve = "diverged", 0.0, []
    seconds = time.perf_counter() - started
    row = {"trial": index, **settings, "val_acc": val_acc, "seconds": round(seconds, 3),
           "status": status, "val_acc_by_epoch": curve}  # fmt: skip
    return row, net.params


def run_search(
    data,
    configs,
    *,
    epochs=10,
    batch_size=200,
    n_jobs=1,
    backend=None,
    scheduler=None,
    threads_per_trial=None,
    seed=0,
    progress=True,
):
    """Train one net per config and rank them by validation accuracy.

    Parameters
    ----------
    data : mlp_numba.datasets.Split
        Trials train on ``X_train`` and are scored on ``X_val`` (the course's fixed split).
    configs : list of dict
        From :func:`grid` or :func:`random_configs`.
    epochs, batch_size : int
    n_jobs : int, default 1
        Trials run side by side; each gets ``max(1, cpu_count // n_jobs)`` threads.
    backend : str, optional
        A joblib backend: None (processes, "loky", or whatever an enclosing
        ``joblib.parallel_backend`` sets, e.g. "dask" with a ``dask.distributed.Client``).
    scheduler : str, optional
        The address of a Dask scheduler (``"tcp://host:8786"``): the trials run on its workers
        (needs ``dask.distributed``).
    threads_per_trial : int, optional
        Numba and BLAS threads of each trial (default: the CPU count divided by ``n_jobs``).
    seed : int
        Trial i's net is seeded with ``seed + i``.

    Returns
    -------
    SearchResult
    """
    from joblib import Parallel, delayed

    if not configs:
        raise ValueError("configs is empty")
    for config in configs:
        _check_names(config)
    epochs = v.check_int("epochs", epochs, minimum=1)
    batch_size = v.check_int("batch_size", batch_size, minimum=1)
    n_jobs = v.check_int("n_jobs", n_jobs, minimum=1)
    threads = worker_threads(n_jobs, threads_per_trial)
    if scheduler is not None:
        with on_cluster(scheduler):
            return run_search(data, configs, epochs=epochs, batch_size=batch_size,
                              n_jobs=n_jobs, threads_per_trial=threads, seed=seed,
                              progress=progress)  # fmt: skip
    arrays = (data.X_train, data.y_train, data.X_val, data.y_val, data.num_classes)
    bar = progress_bar(len(configs), "search", enabled=progress, unit="trial")
    rows, params = [], []
    try:
        runner = Parallel(n_jobs=n_jobs, backend=backend, return_as="generator_unordered")
    except ValueError:
        # A backend that cannot hand results back as they come (joblib's "multiprocessing"):
        # the progress bar then moves when all are done.
        runner = Parallel(n_jobs=n_jobs, backend=backend, return_as="list")
    jobs = (delayed(_trial)(i, c, arrays, epochs, batch_size, seed, threads)
            for i, c in enumerate(configs))  # fmt: skip
    for row, net_params in runner(jobs):
        rows.append(row)
        params.append((row["trial"], net_params))
        best = max(r["val_acc"] for r in rows)
        bar.update(len(rows), f"best val_acc {best:.4f}")
    bar.close()
    rows.sort(key=lambda r: (-r["val_acc"], r["trial"]))
    best_row = rows[0]
    best_params = dict(params)[best_row["trial"]]
    best = _net(best_row, data.num_features, data.num_classes, data.X_train.dtype, 0)
    best.params = {k: np.array(p) for k, p in best_params.items()}
    return SearchResult(rows, best)
