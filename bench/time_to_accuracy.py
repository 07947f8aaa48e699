"""Time to accuracy on MNIST: ``mlp-numba train``'s defaults against scikit-learn and PyTorch.

mlp_numba trains with the command line's default settings for MNIST (Adam, cosine schedule,
float32); scikit-learn's MLPClassifier (Adam, constant rate: it has no cosine schedule) and
PyTorch (Adam with the same cosine schedule) train a net of the same size on the same
preprocessed float32 rows, epoch by epoch, until they have used the same training time. Prints
a markdown table of seconds and test accuracy. Needs ``../shared/data/mnist`` (or
``--data-dir``); PyTorch is optional.

    python bench/time_to_accuracy.py [--data-dir DIR] [--skip-torch] [--skip-sklearn]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from mlp_numba import TwoLayerNet

# asv imports every module in bench/, also when it runs older commits: this module imports the
# parts of mlp_numba that are newer than the suite (datasets, cli) only when it runs.
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def train_ours(data, settings, batch_size=200):
    per_epoch = math.ceil(len(data.X_train) / batch_size)

    def new_net():
        return TwoLayerNet(784, settings["hidden_size"], 10, std=settings["std"],
                           dtype=settings["dtype"], seed=0)  # fmt: skip

    new_net().train(
        data.X_train[:400],
        data.y_train[:400],
        data.X_val[:10],
        data.y_val[:10],
        num_iters=2,
        batch_size=batch_size,
    )  # fmt: skip  (compile or load the cache)
    net = new_net()
    start = time.perf_counter()
    net.train(
        data.X_train, data.y_train, data.X_val, data.y_val,
        learning_rate=settings["learning_rate"], learning_rate_decay=settings["decay"],
        reg=settings["reg"], num_iters=settings["epochs"] * per_epoch, batch_size=batch_size,
        iterations_per_epoch=per_epoch, sampling="permutation",
        optimizer=settings["optimizer"], schedule=settings["schedule"],
    )  # fmt: skip
    seconds = time.perf_counter() - start
    return seconds, float((net.predict(data.X_test) == data.y_test).mean()), settings["epochs"]


def train_sklearn(data, settings, budget, batch_size=200):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        hidden_layer_sizes=(settings["hidden_size"],),
        solver="adam",
        learning_rate_init=settings["learning_rate"],
        alpha=2 * settings["reg"],
        batch_size=batch_size,
        random_state=0,
    )  # fmt: skip  (alpha: sklearn's penalty is alpha/2 * ||W||^2 / n per sample)
    classes, epochs, start = np.arange(10), 0, time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        while time.perf_counter() - start < budget:
            clf.partial_fit(data.X_train, data.y_train, classes=classes)
            epochs += 1
    seconds = time.perf_counter() - start
    return seconds, float(clf.score(data.X_test, data.y_test)), epochs


def train_torch(data, settings, budget, batch_size=200):
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, settings["hidden_size"]),
        torch.nn.ReLU(),
        torch.nn.Linear(settings["hidden_size"], 10),
    )  # fmt: skip  (float32, like the data)
    per_epoch = math.ceil(len(data.X_train) / batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=settings["learning_rate"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, settings["epochs"] * per_epoch)
    X = torch.from_numpy(data.X_train)
    y = torch.from_numpy(data.y_train.astype(np.int64))
    gen = torch.Generator().manual_seed(0)
    epochs, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget:
        for idx in torch.randperm(len(X), generator=gen).split(batch_size):
            loss = torch.nn.functional.cross_entropy(model(X[idx]), y[idx])
            weights = model[0].weight.pow(2).sum() + model[2].weight.pow(2).sum()
            opt.zero_grad()
            (loss + settings["reg"] * weights).backward()
            opt.step()
            if sched.last_epoch < settings["epochs"] * per_epoch:
                sched.step()
        epochs += 1
    seconds = time.perf_counter() - start
    with torch.no_grad():
        pred = model(torch.from_numpy(data.X_test)).argmax(dim=1).numpy()
    return seconds, float((pred == data.y_test).mean()), epochs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(DATA))
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--skip-sklearn", action="store_true")
    args = parser.parse_args(argv)
    from mlp_numba.cli._train import DEFAULTS, _rate
    from mlp_numba.datasets import prepare

    if not Path(args.data_dir).is_dir():
        sys.exit(f"MNIST not found in {args.data_dir}: pass --data-dir")
    settings = dict(DEFAULTS["mnist"])
    settings["learning_rate"] = _rate(settings, settings["optimizer"])
    data = prepare("mnist", args.data_dir, dtype=settings["dtype"])
    rows = [("mlp_numba (mlp-numba train defaults)", *train_ours(data, settings))]
    budget = rows[0][1]
    if not args.skip_sklearn:
        rows.append(("scikit-learn MLPClassifier (adam)", *train_sklearn(data, settings, budget)))
    if not args.skip_torch:
        try:
            rows.append(("PyTorch (Adam, cosine)", *train_torch(data, settings, budget)))
        except ImportError:
            print("PyTorch not installed: skipped", file=sys.stderr)
    print(f"MNIST, {settings['hidden_size']} hidden ReLU units, batch 200, float32, Adam at "
          f"rate {settings['learning_rate']:g}, reg {settings['reg']:g}; each peer gets "
          f"mlp_numba's training time ({budget:.1f} s)")  # fmt: skip
    print("| library | train s | epochs | test accuracy |\n| --- | --- | --- | --- |")
    for name, seconds, accuracy, epochs in rows:
        print(f"| {name} | {seconds:.1f} | {epochs} | {accuracy:.4f} |")


if __name__ == "__main__":
    main()
