"""
A pruned TPE sweep with Optuna
==============================

A sweep spends most of its time on trials that were hopeless from their first epochs. This
example runs :func:`mlp_numba.sweep.run_study` twice on scikit-learn's digits, with the same
space, sampler (TPE, which learns where good trials lie) and seed: once with Optuna's median
pruner, which stops a trial at an epoch end when its validation accuracy lags the median of the
finished trials at that epoch, and once without. It counts the epochs each sweep trained and
draws the learning curves. The study lives in an SQLite file, so a killed sweep resumes where it
stopped (run the same call again). It needs ``pip install 'mlp-numba[optuna]'``.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from mlp_numba.datasets import prepare
from mlp_numba.sweep import MEDIAN_STARTUP_TRIALS, MEDIAN_WARMUP_EPOCHS, run_study

data = prepare("digits", seed=0)
space = {
    "learning_rate": ("loguniform", 1e-5, 1.0),  # most of this range cannot learn in 8 epochs
    "hidden_size": ("int", 16, 128),
    "reg": ("loguniform", 1e-6, 1e-2),
}
folder = Path(tempfile.mkdtemp())

# %%
# The two sweeps: 30 finished trials of 8 epochs each (pruned trials count among the 30). The
# median pruner waits for its first finished trials and lets each trial train its first epochs.
print(f"median pruner: after {MEDIAN_STARTUP_TRIALS} finished trials and "
      f"{MEDIAN_WARMUP_EPOCHS} epochs")  # fmt: skip
studies = {}
for pruner in ("median", "none"):
    studies[pruner] = run_study(
        data, space, sampler="tpe", n_trials=30, pruner=pruner, epochs=8, batch_size=100,
        seed=0, storage=f"sqlite:///{folder / 'sweeps.db'}", study_name=f"digits-{pruner}",
    )  # fmt: skip
    study = studies[pruner]
    epochs = sum(t.user_attrs.get("epochs", 0) for t in study.trials)
    pruned = sum(t.state.name == "PRUNED" for t in study.trials)
    print(f"pruner {pruner:6}: {pruned:2d} of {len(study.trials)} trials pruned, {epochs} epochs "
          f"trained, best validation accuracy {study.best_value:.4f} (trial "
          f"{study.best_trial.number}: {study.best_params})")  # fmt: skip

# %%
# The best net of the study comes back with it (kept in a models folder beside the SQLite file,
# so a resumed study has it too).
best = studies["median"].best_net
print(f"best net: {best!r}, test accuracy {(best.predict(data.X_test) == data.y_test).mean():.4f}")

# %%
# Each trial's validation accuracy at every epoch end: the pruned trials' curves stop early.
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
for ax, (pruner, study) in zip(axes, studies.items(), strict=True):
    for trial in study.trials:
        steps = sorted(trial.intermediate_values)
        style = "-" if trial.state.name == "COMPLETE" else ":"
        ax.plot(steps, [trial.intermediate_values[s] for s in steps], style, alpha=0.7)
    ax.set_title(f"pruner: {pruner}")
    ax.set_xlabel("epoch")
axes[0].set_ylabel("validation accuracy (dotted: pruned)")
fig.tight_layout()
plt.show()
