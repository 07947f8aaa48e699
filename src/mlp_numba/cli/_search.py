"""``mlp-numba search``: the course's hyperparameter search from the command line."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

from .._atomic import atomic_write
from ..datasets import prepare
from ..search import grid, random_configs, run_search, write_rows
from ._errors import UserError

_OPTIONS = {  # option -> (search key, value type)
    "hidden_size": ("hidden_size", int),
    "hidden_sizes": ("hidden_sizes", "widths"),
    "learning_rate": ("learning_rate", float),
    "decay": ("learning_rate_decay", float),
    "reg": ("reg", float),
    "activation": ("activation", str),
    "optimizer": ("optimizer", str),
}
# Searched when the user names nothing: the course's reports' ranges, around the CLI's defaults.
_DEFAULT_SPACE = {
    "hidden_size": "50,100,200",
    "learning_rate": "0.03,0.1,0.3,1",
    "reg": "1e-5,1e-4",
}
_DEFAULT_RANDOM = {"hidden_size": "50:200", "learning_rate": "1e-2:1", "reg": "1e-6:1e-3"}


def _space(args):
    given = {k: getattr(args, k) for k in _OPTIONS if getattr(args, k) is not None}
    if not given:
        given = dict(_DEFAULT_RANDOM if args.trials else _DEFAULT_SPACE)
    space = {}
    for option, text in given.items():
        key, kind = _OPTIONS[option]
        flag = "--" + option.replace("_", "-")
        try:
            if kind == "widths":  # 256-128,512-256: one tuple of widths per value
                space[key] = [tuple(int(w) for w in t.split("-")) for t in text.split(",")]
            elif ":" in text and kind is not str:
                if not args.trials or getattr(args, "sampler", None) == "grid":
                    raise UserError(f"{flag} {text}: ranges (LOW:HIGH) need --trials")
                low, high = (kind(t) for t in text.split(":"))
                space[key] = ("int", low, high) if kind is int else ("loguniform", low, high)
            else:
                space[key] = [kind(t) for t in text.split(",")]
        except ValueError as exc:
            raise UserError(f"{flag}: cannot read {text!r} ({exc})") from None
    return space


def _run_folder(args):
    """``--output``, or a new folder under ``runs/`` named after the data set and the time."""
    return Path(args.output or Path("runs") / f"search-{args.dataset}-"
                f"{datetime.now():%Y%m%d-%H%M%S}")  # fmt: skip


def _data(args):
    return prepare(args.dataset, args.data_dir, download=args.download, seed=args.seed,
                   dtype=args.dtype, progress=not args.quiet)  # fmt: skip


def _uses_optuna(args):
    optuna_options = ("sampler", "pruner", "storage", "study_name", "models", "resume")
    return any(getattr(args, k, None) is not None for k in optuna_options)


# A run folder's sweep.json keeps these options, so --resume runs the study as it was begun.
_KEPT = ("dataset", "data_dir", "trials", "hidden_size", "hidden_sizes", "learning_rate", "decay",
         "reg", "activation", "optimizer", "epochs", "batch_size", "dtype", "seed", "sampler",
         "pruner", "storage", "study_name", "models")  # fmt: skip
_RENEWABLE = ("trials", "jobs", "scheduler", "quiet", "resume", "command", "download")


def _resume(args):
    """``args`` with the options of the run folder ``args.resume`` (those given anew win)."""
    from . import build_parser

    folder = Path(args.resume)
    kept = folder / "sweep.json"
    if not kept.is_file():
        raise UserError(f"--resume {folder}: no sweep.json there (not the run folder of an "
                        "Optuna search)")  # fmt: skip
    defaults = vars(build_parser().parse_args(["search"]))
    given = [k for k, value in vars(args).items()
             if k not in _RENEWABLE and value != defaults.get(k)]  # fmt: skip
    if given:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise UserError(
            f"--resume runs the study with its own options: {flags} cannot be given with it "
            "(--trials, --jobs, --scheduler and --quiet can)"
        )
    try:
        stored = json.loads(kept.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"--resume {folder}: sweep.json cannot be read ({exc})") from None
    if not isinstance(stored, dict):
        raise UserError(f"--resume {folder}: sweep.json holds no options")
    for key, value in stored.items():
        if key in _KEPT and not (key == "trials" and args.trials):
            setattr(args, key, value)
    args.output = str(folder)
    return args


def run_search_command(args):
    if _uses_optuna(args):
        return _run_study_command(args)
    space = _space(args)
    configs = random_configs(space, args.trials, args.seed) if args.trials else grid(space)
    data = _data(args)
    where = (f"on the Dask cluster at {args.scheduler}" if args.scheduler
             else f"{args.jobs} at a time")  # fmt: skip
    print(f"searching {len(configs)} configurations on {args.dataset} ({args.epochs} epochs "
          f"each, {where})", flush=True)  # fmt: skip
    result = run_search(data, configs, epochs=args.epochs, batch_size=args.batch_size,
                        n_jobs=args.jobs, scheduler=args.scheduler, seed=args.seed,
                        progress=not args.quiet)  # fmt: skip
    written = result.write(_run_folder(args), arrays=data.preprocessing.to_arrays())
    best = result.table[0]
    width = "hidden_sizes" if best.get("hidden_sizes") is not None else "hidden_size"
    shown = {k: best[k] for k in (width, "learning_rate", "learning_rate_decay", "reg",
                                  "activation", "optimizer")}  # fmt: skip
    print(f"best validation accuracy: {best['val_acc']:.4f} with {shown}")
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def _run_study_command(args):
    from ..sweep import public_url, run_study

    if args.resume:
        args = _resume(args)
    sampler = args.sampler or ("random" if args.trials else "grid")
    if sampler != "grid" and not args.trials:
        raise UserError(f"--sampler {sampler} needs --trials N")
    space = _space(args)
    n_trials = args.trials or len(grid(space))
    out_dir = _run_folder(args)
    out_dir.mkdir(parents=True, exist_ok=True)
    storage = args.storage or f"sqlite:///{(out_dir / 'study.db').resolve()}"
    name = args.study_name or f"search-{args.dataset}"
    models = args.models or str((out_dir / "models").resolve())
    data = _data(args)
    with atomic_write(out_dir / "sweep.json", "w") as f:
        kept = {k: getattr(args, k) for k in _KEPT}
        kept.update(sampler=sampler, storage=storage, study_name=name, models=models)
        if args.data_dir:  # --resume may run from another folder
            kept["data_dir"] = str(Path(args.data_dir).resolve())
        json.dump(kept, f, indent=1)
    where = (f"on the Dask cluster at {args.scheduler}" if args.scheduler
             else f"{args.jobs} worker{'s' * (args.jobs > 1)}")  # fmt: skip
    print(f"study {name} in {public_url(storage)}: {n_trials} trials, sampler {sampler}, pruner "
          f"{args.pruner or 'none'}, {args.epochs} epochs each, {where}", flush=True)  # fmt: skip
    study = run_study(
        data, space, sampler=sampler, n_trials=n_trials, pruner=args.pruner or "none",
        storage=storage, study_name=name, epochs=args.epochs, batch_size=args.batch_size,
        seed=args.seed, n_jobs=args.jobs, scheduler=args.scheduler, models=models,
        progress=not args.quiet and args.jobs == 1 and not args.scheduler,
    )  # fmt: skip
    trials = study.get_trials(deepcopy=False)  # read from the storage once
    written = _write_trials(trials, out_dir)
    if study.best_net is not None:
        study.best_net.save(out_dir / "best_model.npz",
                            metadata={"search": study.best_net_metadata},
                            arrays=data.preprocessing.to_arrays())  # fmt: skip
        written.append(out_dir / "best_model.npz")
    else:
        print(f"the model of the best trial ({study.best_trial.number}) was not kept: no "
              "best_model.npz", file=sys.stderr)  # fmt: skip
    written += _study_plots(study, out_dir)
    states = [t.state.name for t in trials]
    print(
        f"best validation accuracy: {study.best_value:.4f} with {study.best_params} "
        f"(trial {study.best_trial.number}); {states.count('PRUNED')} of "
        f"{states.count('PRUNED') + states.count('COMPLETE')} finished trials pruned"
    )
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def _write_trials(trials, out_dir):
    """``trials.csv`` and ``trials.json``: a row per trial, its state, value, epochs, params."""
    rows = [
        {"trial": t.number, "state": t.state.name, "val_acc": t.value,
         "epochs": t.user_attrs.get("epochs"), **t.params}
        for t in trials
    ]  # fmt: skip
    columns = sorted({k for row in rows for k in row}, key=lambda k: (k not in rows[0], k))
    write_rows(out_dir, "trials", rows, columns)
    return [out_dir / "trials.csv", out_dir / "trials.json"]


def _study_plots(study, out_dir):
    """Optuna's optimisation history, parameter importances and intermediate values as PNGs
    (each one Optuna can draw for this study; none without matplotlib)."""
    import warnings

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from optuna.visualization import matplotlib as views
    except ImportError:
        return []
    written = []
    for name, draw in (
        ("optimization_history", views.plot_optimization_history),
        ("param_importances", views.plot_param_importances),
        ("intermediate_values", views.plot_intermediate_values),
    ):
        try:
            with warnings.catch_warnings():  # Optuna's matplotlib views are "experimental"
                warnings.simplefilter("ignore")
                ax = draw(study)
        except (ValueError, RuntimeError, ZeroDivisionError):  # e.g. importances of one trial
            continue
        figure = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        path = out_dir / f"{name}.png"
        with atomic_write(path) as f:
            figure.savefig(f, format="png", dpi=100, bbox_inches="tight")
        plt.close(figure)
        written.append(path)
    return written
