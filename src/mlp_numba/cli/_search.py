"""``mlp-numba search``: the course's hyperparameter search from the command line."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from ..datasets import prepare
from ..search import grid, random_configs, run_search
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
                if not args.trials:
                    raise UserError(f"{flag} {text}: ranges (LOW:HIGH) need --trials")
                low, high = (kind(t) for t in text.split(":"))
                space[key] = ("int", low, high) if kind is int else ("loguniform", low, high)
            else:
                space[key] = [kind(t) for t in text.split(",")]
        except ValueError as exc:
            raise UserError(f"{flag}: cannot read {text!r} ({exc})") from None
    return space


def run_search_command(args):
    space = _space(args)
    configs = random_configs(space, args.trials, args.seed) if args.trials else grid(space)
    data = prepare(args.dataset, args.data_dir, download=args.download, seed=args.seed,
                   dtype=args.dtype, progress=not args.quiet)  # fmt: skip
    where = (f"on the Dask cluster at {args.scheduler}" if args.scheduler
             else f"{args.jobs} at a time")  # fmt: skip
    print(f"searching {len(configs)} configurations on {args.dataset} ({args.epochs} epochs "
          f"each, {where})", flush=True)  # fmt: skip
    result = run_search(data, configs, epochs=args.epochs, batch_size=args.batch_size,
                        n_jobs=args.jobs, scheduler=args.scheduler, seed=args.seed,
                        progress=not args.quiet)  # fmt: skip
    out_dir = Path(args.output or Path("runs") / f"search-{args.dataset}-"
                   f"{datetime.now():%Y%m%d-%H%M%S}")  # fmt: skip
    written = result.write(out_dir, arrays=data.preprocessing.to_arrays())
    best = result.table[0]
    width = "hidden_sizes" if best.get("hidden_sizes") is not None else "hidden_size"
    shown = {k: best[k] for k in (width, "learning_rate", "learning_rate_decay", "reg",
                                  "activation", "optimizer")}  # fmt: skip
    print(f"best validation accuracy: {best['val_acc']:.4f} with {shown}")
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0
