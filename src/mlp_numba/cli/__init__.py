"""The ``mlp-numba`` command line: ``train``, ``search``, ``evaluate``, ``predict``, ``info``,
``compile`` and ``export``.

Errors a user can cause (a missing data folder, a bad option value, an unreadable model) are
printed as one line on stderr with a non-zero exit status, never as a traceback; set
``MLP_NUMBA_DEBUG=1`` to see the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from .._activation_spec import ACTIVATIONS
from .._optimizer_spec import OPTIMIZERS, SCHEDULES
from .._version import __version__
from ..datasets import DATASETS
from ._errors import EXIT_ERROR, EXIT_INTERRUPTED, UserError

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "UserError", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line instead of argparse's usage block plus message.
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _widths(text):
    """Comma-separated hidden-layer widths, e.g. ``512,256``."""
    parts = text.split(",")
    if not all(part.strip() for part in parts):
        raise argparse.ArgumentTypeError(f"expected widths like 512,256, got {text!r}")
    return tuple(_positive_int(part.strip()) for part in parts)


def _probability(text):
    value = _nonnegative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be below 1, got {value}")
    return value


def _nonnegative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _positive_float(text):
    value = _nonnegative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def build_parser():
    """The command line's parser: one sub-command per task, each built by its own function."""
    parser = _Parser(prog="mlp-numba", description="Train and use two-layer softmax networks.")
    parser.add_argument("--version", action="version", version=f"mlp-numba {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    _add_train(commands)
    _add_search(commands)
    _add_evaluate_and_predict(commands)
    commands.add_parser("info", help="versions, threads, BLAS and cache folders")
    _add_compile(commands)
    export = commands.add_parser(
        "export",
        help="write a saved model as ONNX (pip install 'mlp-numba[onnx]')",
        description=(
            "Write a model file of train or search as an ONNX model that onnxruntime serves: "
            "its input is what `mlp-numba predict` takes (the raw images, as floats, when the "
            "file holds its preprocessing, which then runs in the graph); its outputs are the "
            "label and the class probabilities."
        ),
    )
    export.add_argument("model", help="a model file (.npz) written by train or search")
    export.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    export.add_argument("--opset", type=int, help="the ONNX opset (default: 21)")
    return parser


def _add_compile(commands):
    compile_ = commands.add_parser(
        "compile",
        help="compile the engine into the writable cache now, not at the first train",
        description=(
            "Compile the engine for float64 and float32 (side by side) into the writable "
            "cache folder that `mlp-numba info` shows (MLP_NUMBA_CACHE_DIR sets it), so that "
            "the first train loads it: for source and editable installs, other Numba "
            "versions than the wheel's, and container images (RUN mlp-numba compile)."
        ),
    )
    compile_.add_argument(
        "--native",
        action="store_true",
        help=(
            "compile for this machine's CPU rather than the x86-64-v3 baseline the wheel "
            "ships: results may then differ from the shipped code's in the last bits"
        ),
    )
    compile_.add_argument(
        "--dtype", choices=("float64", "float32"), action="append", help="only this dtype"
    )


def _add_train(commands):
    train = commands.add_parser("train", help="train a net and save it with its history and plots")
    data = train.add_argument_group("data")
    _add_data_source(data)
    data.add_argument(
        "--num-validation", type=_positive_int, help="validation rows taken from the training set"
    )
    net = train.add_argument_group("net and training (defaults depend on the data set)")
    _add_architecture(net)
    _add_training(net)
    out = train.add_argument_group("output")
    out.add_argument("--output", "-o", help="output folder (default: runs/<dataset>-<date>-<time>)")
    out.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    out.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def _add_data_source(group):
    group.add_argument(
        "--dataset",
        choices=DATASETS,
        default="digits",
        help="data set (default: digits, bundled with scikit-learn)",
    )
    group.add_argument("--data-dir", help="folder holding the data set's files")
    group.add_argument(
        "--download",
        action="store_true",
        help="fetch missing data files (checksum-verified) into the data dir",
    )


def _add_architecture(net):
    width = net.add_mutually_exclusive_group()
    width.add_argument("--hidden-size", type=_positive_int, help="one hidden layer this wide")
    width.add_argument(
        "--hidden-sizes",
        type=_widths,
        metavar="N,N,...",
        help="several hidden layers, e.g. 512,256 (an MLP, with the data set's defaults for "
        "deeper nets)",
    )
    net.add_argument(
        "--activation",
        choices=ACTIVATIONS,
        metavar="NAME",
        help=f"one of: {', '.join(ACTIVATIONS)} (default: relu)",
    )
    net.add_argument("--std", type=_nonnegative_float, help="scale of the initial weights")
    net.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        help="default: float32 for mnist, else float64",
    )


def _add_training(net):
    net.add_argument("--learning-rate", type=_positive_float)
    net.add_argument("--decay", type=_positive_float, help="learning-rate factor per epoch")
    net.add_argument(
        "--optimizer",
        choices=tuple(OPTIMIZERS),
        help="update rule, with its default parameters (default: adam for mnist, else sgd)",
    )
    net.add_argument(
        "--sampling",
        choices=("permutation", "replacement"),
        default="permutation",
        help="minibatches from a fresh permutation each epoch (default), or drawn with "
        "replacement as the course does",
    )
    net.add_argument(
        "--early-stopping",
        type=_positive_int,
        metavar="PATIENCE",
        help="stop when the validation accuracy has not improved for PATIENCE epochs, and "
        "keep the best epoch's params",
    )
    net.add_argument(
        "--schedule",
        choices=tuple(SCHEDULES),
        help="learning-rate schedule (default: cosine for mnist, else step, the course's "
        "decay per epoch)",
    )
    net.add_argument("--reg", type=_nonnegative_float, help="L2 regularisation strength")
    net.add_argument(
        "--dropout",
        type=_probability,
        help="probability of dropping each hidden unit's output in training (needs "
        "--hidden-sizes; default 0, 0.2 for deeper nets on mnist)",
    )
    length = net.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=_positive_int)
    length.add_argument("--iterations", type=_positive_int)
    net.add_argument(
        "--batch-size", type=_positive_int, help="default: 200 (128 for deeper nets on mnist)"
    )
    net.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds the initial weights, minibatches and validation split",
    )
    net.add_argument("--threads", type=_positive_int, help="Numba and BLAS threads")


def _add_search(commands):
    search = commands.add_parser(
        "search", help="grid or random search of hyperparameters on a validation split"
    )
    search.add_argument("--dataset", choices=DATASETS, default="digits")
    search.add_argument("--data-dir")
    search.add_argument("--download", action="store_true")
    kind = search.add_mutually_exclusive_group()
    kind.add_argument("--grid", action="store_true", help="every combination (the default)")
    kind.add_argument("--trials", type=_positive_int, help="random search with this many trials")
    for name in ("hidden-size", "learning-rate", "decay", "reg", "activation", "optimizer"):
        search.add_argument(f"--{name}", help="values, comma-separated; for --trials also "
                            "LOW:HIGH (log-uniform; integers for --hidden-size)")  # fmt: skip
    search.add_argument(
        "--hidden-sizes",
        metavar="N-N,...",
        help="nets of several hidden layers, widths joined by '-', values comma-separated: "
        "256-128,512-256-128 varies depth and widths",
    )
    search.add_argument("--epochs", type=_positive_int, default=10)
    search.add_argument("--batch-size", type=_positive_int, default=200)
    search.add_argument("--jobs", type=_positive_int, default=1, help="trials run side by side")
    search.add_argument("--scheduler", help="run the trials on a Dask cluster (tcp://host:port)")
    search.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    search.add_argument("--seed", type=int, default=0)
    search.add_argument("--output", "-o", help="default: runs/search-<dataset>-<date>-<time>")
    optuna = search.add_argument_group(
        "Optuna (pip install 'mlp-numba[optuna]')",
        "Any of these runs the search as an Optuna study: --grid means --sampler grid, "
        "--trials N runs N trials (--sampler random by default).",
    )
    optuna.add_argument("--sampler", choices=("grid", "random", "tpe"))
    optuna.add_argument(
        "--pruner", choices=("none", "median", "hyperband"),
        help="stop trials whose validation accuracy lags at an epoch end (median: after 5 "
        "finished trials, from the end of epoch 1 on)",
    )  # fmt: skip
    optuna.add_argument("--storage", help="study storage URL (default: sqlite in the run folder)")
    optuna.add_argument("--study-name", help="default: search-<dataset>")
    optuna.add_argument(
        "--models", help="folder of the trials' models (default: 'models' in the run folder; "
        "Dask workers on other machines need a folder they all share)",
    )  # fmt: skip
    optuna.add_argument(
        "--resume", metavar="RUN_FOLDER", help="go on with the study of an earlier run, with "
        "its options (--trials, --jobs, --scheduler and --quiet may be given anew)",
    )  # fmt: skip
    search.add_argument("--quiet", "-q", action="store_true")


def _add_evaluate_and_predict(commands):
    evaluate = commands.add_parser("evaluate", help="accuracy of a saved model on a data set")
    evaluate.add_argument("model", help="a model file written by 'mlp-numba train'")
    evaluate.add_argument("--dataset", choices=DATASETS, required=True)
    evaluate.add_argument("--data-dir")
    evaluate.add_argument("--download", action="store_true")

    predict = commands.add_parser("predict", help="classes of the inputs in a .npy file")
    predict.add_argument("model")
    predict.add_argument("input", help=".npy file of raw inputs (images) or one input")
    predict.add_argument("--output", "-o", help="write the predictions to this .npy file")
    predict.add_argument("--proba", action="store_true", help="class probabilities instead")


def main(argv=None):
    """Run the command line; return the exit status.

    Examples
    --------
    >>> main(["info"])  # doctest: +SKIP
    """
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            from ._train import run_train as run
        elif args.command == "search":
            from ._search import run_search_command as run
        elif args.command == "evaluate":
            from ._use import run_evaluate as run
        elif args.command == "predict":
            from ._use import run_predict as run
        elif args.command == "compile":
            from ._info import run_compile as run
        elif args.command == "export":
            from ._use import run_export as run
        else:
            from ._info import run_info as run
        return run(args)
    except KeyboardInterrupt:
        print("mlp-numba: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (UserError, ValueError, TypeError, OSError, ImportError) as exc:
        if os.environ.get("MLP_NUMBA_DEBUG"):
            raise
        message = str(exc) or type(exc).__name__
        if isinstance(exc, FileNotFoundError) and exc.filename and str(exc.filename) not in message:
            message += f": {exc.filename}"
        print(f"mlp-numba {args.command}: error: {message}", file=sys.stderr)
        return EXIT_ERROR
