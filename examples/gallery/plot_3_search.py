"""
Search hyperparameters
======================

A grid of learning rates and hidden sizes, each trial trained on digits and scored on the
validation split, two trials at a time in worker processes (joblib).

On a Dask cluster the same call takes the scheduler's address (not run here, as no cluster
is running while the documentation is built)::

    result = run_search(data, configs, epochs=20, scheduler="tcp://scheduler:8786")
"""

import matplotlib.pyplot as plt

from mlp_numba.datasets import prepare
from mlp_numba.search import grid, run_search

data = prepare("digits", seed=0)
configs = grid({"learning_rate": [0.05, 0.2, 0.5, 1.0], "hidden_size": [25, 100]})
result = run_search(data, configs, epochs=20, batch_size=100, n_jobs=2, progress=False)
for row in result.table[:4]:
    print({k: row[k] for k in ("learning_rate", "hidden_size", "val_acc")})

fig, ax = plt.subplots(figsize=(6, 3.5))
for hidden in (25, 100):
    rows = sorted(
        (r for r in result.table if r["hidden_size"] == hidden), key=lambda r: r["learning_rate"]
    )
    ax.plot(
        [r["learning_rate"] for r in rows],
        [r["val_acc"] for r in rows],
        "o-",
        label=f"hidden {hidden}",
    )
ax.set_xscale("log")
ax.set_xlabel("learning rate")
ax.set_ylabel("validation accuracy")
ax.legend()
fig.tight_layout()
