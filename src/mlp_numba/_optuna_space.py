"""How a sweep's space, sampler and pruner become Optuna's, and what a stored study must share
with the sweep that resumes it (:mod:`mlp_numba.sweep`)."""

from __future__ import annotations

import json

import numpy as np

#: The median pruner waits for MEDIAN_STARTUP_TRIALS finished trials, and its warm-up lets every
#: trial reach epoch MEDIAN_WARMUP_EPOCHS (the end of that epoch is the first where it may stop).
#: One epoch: the first epoch's accuracy already ranks the trials of a learning-rate range
#: (bench/sweep_pruning.py measures what stopping there saves and costs).
MEDIAN_STARTUP_TRIALS = 5
MEDIAN_WARMUP_EPOCHS = 1


def encode(value):
    """A space value as Optuna can store it (widths of several layers as "256-128")."""
    if isinstance(value, (tuple, list)):
        return "-".join(str(int(w)) for w in value)
    return value


def decode(name, value):
    """The inverse of :func:`encode` for the space entry ``name``."""
    if name == "hidden_sizes" and isinstance(value, str):
        return tuple(int(w) for w in value.split("-"))
    return value


def is_range(spec):
    """Whether a space entry is a range the samplers draw from (not a list of values)."""
    return isinstance(spec, tuple) and len(spec) == 3 and spec[0] in ("loguniform", "int")


def values(spec):
    """A space entry's values, encoded (a list or tuple of values, or one value)."""
    return [encode(x) for x in (spec if isinstance(spec, (list, tuple)) else [spec])]


def suggest(trial, name, spec):
    """The trial's value of the space entry ``name``, decoded."""
    if is_range(spec):
        kind, low, high = spec
        if kind == "int":
            return trial.suggest_int(name, int(low), int(high), log=True)
        return trial.suggest_float(name, float(low), float(high), log=True)
    return decode(name, trial.suggest_categorical(name, values(spec)))


def sampler_seed(seed, worker, trials_before):
    """The sampler's seed in one worker: ``seed`` itself for the first worker of a new study;
    else one drawn from all three, so that workers, and a resumed study's new trials, do not
    draw the points already drawn."""
    if worker == 0 and trials_before == 0:
        return seed
    return int(np.random.SeedSequence([seed, worker, trials_before]).generate_state(1)[0])


def grid_values(space):
    """The grid sampler's search space: each entry's values, encoded; a range is refused."""
    ranges = [k for k, spec in space.items() if is_range(spec)]
    if ranges:
        raise ValueError(f"sampler 'grid' needs lists of values; {ranges} are ranges")
    return {k: values(spec) for k, spec in space.items()}


def make_sampler(optuna, name, space, seed, shared=False):
    """Optuna's sampler ``name``; ``shared``: other workers run the same study at once."""
    if name == "grid":
        return optuna.samplers.GridSampler(grid_values(space), seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # The constant liar counts running trials as bad, so parallel workers spread out.
    return optuna.samplers.TPESampler(seed=seed, constant_liar=shared)


def make_pruner(optuna, name, epochs):
    """Optuna's pruner ``name`` for trials of ``epochs`` epochs (one report per epoch)."""
    if name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=MEDIAN_STARTUP_TRIALS, n_warmup_steps=MEDIAN_WARMUP_EPOCHS
        )
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
    return optuna.pruners.NopPruner()


def fingerprint(data, space, epochs, batch_size, seed):
    """What the trials of a study must share to be compared."""
    encoded = {k: list(spec) if is_range(spec) else values(spec)
               for k, spec in sorted(space.items())}  # fmt: skip
    return {
        "data set": f"{data.name} ({len(data.X_train)} train / {len(data.X_val)} validation)",
        "space": json.dumps(encoded, sort_keys=True), "epochs": epochs,
        "batch size": batch_size, "dtype": np.dtype(data.X_train.dtype).name, "seed": seed,
    }  # fmt: skip


def check_same_study(study, expected):
    """Record ``expected`` (a :func:`fingerprint`) in a new study; refuse a stored study whose
    fingerprint differs, naming what differs."""
    stored = study.user_attrs.get("mlp_numba")
    if stored is None:
        study.set_user_attr("mlp_numba", expected)
        return
    differing = [k for k in expected if stored.get(k) != expected[k]]
    if differing:
        details = "; ".join(f"{k}: {stored.get(k)} there, {expected[k]} here" for k in differing)
        raise ValueError(
            f"study {study.study_name!r} was run with another {', '.join(differing)} ({details}):"
            " give another study name (--study-name) rather than mix its trials"
        )
