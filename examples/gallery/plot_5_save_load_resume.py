"""
Save, load and resume training
==============================

A model file keeps the params, the optimizer's state and the random generator, so training
resumed from a file continues exactly where it stopped: 200 + 200 iterations give the same
params as 400 in one go. Each ``train`` call starts its learning-rate schedule anew (the
course's step decay decays at the call's first iteration too), so this example uses a
constant rate, which makes the two runs take the very same steps.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from mlp_numba import TwoLayerNet
from mlp_numba.datasets import prepare

data = prepare("digits", seed=0)
settings = dict(
    batch_size=100,
    learning_rate=1e-3,
    optimizer="adam",
    schedule="constant",
    iterations_per_epoch=13,
)


def new_net():
    return TwoLayerNet(data.num_features, 64, data.num_classes, std=1e-2, seed=0)


whole = new_net()
whole_stats = whole.train(
    data.X_train, data.y_train, data.X_val, data.y_val, num_iters=400, **settings
)

first = new_net()
first_stats = first.train(
    data.X_train, data.y_train, data.X_val, data.y_val, num_iters=200, **settings
)
path = Path(tempfile.mkdtemp()) / "model.npz"
first.save(path)
resumed = TwoLayerNet.load(path)
second_stats = resumed.train(
    data.X_train, data.y_train, data.X_val, data.y_val, num_iters=200, **settings
)
same = all(np.array_equal(whole.params[k], resumed.params[k]) for k in whole.params)
print(f"resumed params equal the uninterrupted run's: {same}")
assert same

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(whole_stats["loss_history"], label="400 iterations", alpha=0.6)
losses = first_stats["loss_history"] + second_stats["loss_history"]
ax.plot(losses, "--", label="200, saved, loaded, 200 more")
ax.set_xlabel("iteration")
ax.set_ylabel("loss")
ax.legend()
fig.tight_layout()
