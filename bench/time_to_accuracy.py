"""Time to accuracy on MNIST: ``mlp-numba train``'s defaults against scikit-learn and PyTorch.

mlp_numba trains with the command line's default settings for MNIST (one hidden layer: Adam,
cosine schedule, float32; with ``--hidden-sizes 512,256``, the defaults for deeper nets:
Nesterov momentum, cosine schedule, 30% dropout, batch 128). scikit-learn's MLPClassifier
(the same optimizer where it has it, a constant rate: it has no cosine schedule nor dropout)
and PyTorch (the same optimizer, schedule and dropout) train a net of the same architecture on
the same preprocessed float32 rows, epoch by epoch, until they have used the same training
time. Prints a markdown table of seconds and test accuracy. Needs ``../shared/data/mnist`` (or
``--data-dir``); PyTorch is optional.

    python bench/time_to_accuracy.py [--hidden-sizes 512,256] [--data-dir DIR] [--skip-torch]
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from mlp_numba import MLP, TwoLayerNet

# asv imports every module in bench/, also when it runs older commits: this module imports the
# parts of mlp_numba that are newer than the suite (datasets, cli) only when it runs.
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def _hidden(settings):
    return settings.get("hidden_sizes") or (settings["hidden_size"],)


def train_ours(data, settings):
    batch_size = settings["batch_size"]
    per_epoch = math.ceil(len(data.X_train) / batch_size)

    def new_net():
        if "hidden_sizes" in settings:
            return MLP(784, settings["hidden_sizes"], 10, std=settings["std"],
                       dtype=settings["dtype"], seed=0)  # fmt: skip
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
        dropout=settings.get("dropout", 0.0),
    )  # fmt: skip
    seconds = time.perf_counter() - start
    return seconds, float((net.predict(data.X_test) == data.y_test).mean()), settings["epochs"]


def train_sklearn(data, settings, budget):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    momentum = settings["optimizer"] in ("momentum", "nesterov")
    clf = MLPClassifier(
        hidden_layer_sizes=_hidden(settings),
        solver="sgd" if momentum else "adam",
        momentum=0.9,
        nesterovs_momentum=settings["optimizer"] == "nesterov",
        learning_rate_init=settings["learning_rate"],
        alpha=2 * settings["reg"],
        batch_size=settings["batch_size"],
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


def train_torch(data, settings, budget):
    import torch

    torch.manual_seed(0)
    widths = (784, *_hidden(settings), 10)
    layers = []
    for a, b in itertools.pairwise(widths):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU(),
                   torch.nn.Dropout(settings.get("dropout", 0.0))]  # fmt: skip
    model = torch.nn.Sequential(*layers[:-2])  # (float32, like the data)
    linear = [layer for layer in model if isinstance(layer, torch.nn.Linear)]
    batch_size = settings["batch_size"]
    per_epoch = math.ceil(len(data.X_train) / batch_size)
    if settings["optimizer"] in ("momentum", "nesterov"):
        opt = torch.optim.SGD(model.parameters(), lr=settings["learning_rate"], momentum=0.9,
                              nesterov=settings["optimizer"] == "nesterov")  # fmt: skip
    else:
        opt = torch.optim.Adam(model.parameters(), lr=settings["learning_rate"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, settings["epochs"] * per_epoch)
    X = torch.from_numpy(data.X_train)
    y = torch.from_numpy(data.y_train.astype(np.int64))
    gen = torch.Generator().manual_seed(0)
    epochs, start = 0, time.perf_counter()
    model.train()
    while time.perf_counter() - start < budget:
        for idx in torch.randperm(len(X), generator=gen).split(batch_size):
            loss = torch.nn.functional.cross_entropy(model(X[idx]), y[idx])
            weights = sum(layer.weight.pow(2).sum() for layer in linear)
            opt.zero_grad()
            (loss + settings["reg"] * weights).backward()
            opt.step()
            if sched.last_epoch < settings["epochs"] * per_epoch:
                sched.step()
        epochs += 1
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(data.X_test)).argmax(dim=1).numpy()
    return seconds, float((pred == data.y_test).mean()), epochs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(DATA))
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--skip-sklearn", action="store_true")
    parser.add_argument("--hidden-sizes", help="e.g. 512,256: an MLP with the CLI's defaults "
                        "for deeper nets")  # fmt: skip
    args = parser.parse_args(argv)
    from mlp_numba.cli._train import DEEP_DEFAULTS, DEFAULTS, _rate
    from mlp_numba.datasets import prepare

    if not Path(args.data_dir).is_dir():
        sys.exit(f"MNIST not found in {args.data_dir}: pass --data-dir")
    settings = dict(DEFAULTS["mnist"], batch_size=200)
    if args.hidden_sizes:
        settings.update(DEEP_DEFAULTS["mnist"])
        settings["hidden_sizes"] = tuple(int(w) for w in args.hidden_sizes.split(","))
    settings["learning_rate"] = _rate(settings, settings["optimizer"])
    data = prepare("mnist", args.data_dir, dtype=settings["dtype"])
    rows = [("mlp_numba (mlp-numba train defaults)", *train_ours(data, settings))]
    budget = rows[0][1]
    if not args.skip_sklearn:
        rows.append(("scikit-learn MLPClassifier", *train_sklearn(data, settings, budget)))
    if not args.skip_torch:
        try:
            rows.append(("PyTorch (same optimizer, cosine)", *train_torch(data, settings, budget)))
        except ImportError:
            print("PyTorch not installed: skipped", file=sys.stderr)
    print(f"MNIST, 784-{'-'.join(map(str, _hidden(settings)))}-10 ReLU net, batch "
          f"{settings['batch_size']}, float32, {settings['optimizer']} at rate "
          f"{settings['learning_rate']:g}, reg {settings['reg']:g}, dropout "
          f"{settings.get('dropout', 0.0):g}; each peer gets mlp_numba's training time "
          f"({budget:.1f} s)")  # fmt: skip
    print("| library | train s | epochs | test accuracy |\n| --- | --- | --- | --- |")
    for name, seconds, accuracy, epochs in rows:
        print(f"| {name} | {seconds:.1f} | {epochs} | {accuracy:.4f} |")


if __name__ == "__main__":
    main()
