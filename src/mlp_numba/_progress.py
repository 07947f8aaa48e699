"""Progress bars through tqdm: a widget in a notebook, a redrawn line in a terminal, and in a
log (a file, a pipe) a plain line at most every few seconds, so that logs stay short.

tqdm is optional (the ``cli`` extra installs it): a progress bar that was asked for explicitly
(``train(..., progress=True)``) needs it, while those on by default (downloads, the search)
stay off without it.
"""

from __future__ import annotations

import sys

#: Seconds between two lines of a progress bar written to a log.
LOG_INTERVAL = 5.0


class _LogLines:
    """A file for tqdm that turns its redraws (``\\r`` + line) into whole lines."""

    def __init__(self, stream):
        self.stream = stream
        self._last = None

    def write(self, text):
        line = text.replace("\r", "").rstrip()
        if line and line != self._last:
            self.stream.write(line + "\n")
            self._last = line

    def flush(self):
        self.stream.flush()


class _Bar:
    """Progress of ``total`` units, updated with the units done so far (not an increment);
    a context manager that closes it."""

    #: Whether updates are shown (callers skip preparing them otherwise).
    shown = True

    def __init__(self, bar):
        self._bar = bar

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def update(self, done, postfix=""):
        """Set the units done so far and the text after the counts."""
        self._bar.set_postfix_str(postfix, refresh=False)
        self._bar.update(done - self._bar.n)

    def close(self):
        """Draw the final state and end the bar."""
        self._bar.close()


class _NoBar(_Bar):
    """A bar that shows nothing."""

    shown = False

    def __init__(self):
        pass

    def update(self, done, postfix=""):
        pass

    def close(self):
        pass


def progress_bar(total, desc, *, enabled=True, required=False, unit="it", stream=None,
                 log_interval=LOG_INTERVAL):  # fmt: skip
    """A progress bar of ``total`` units: ``bar.update(done, postfix)``, then ``bar.close()``.

    Parameters
    ----------
    total : int
        Units of work.
    desc : str
        What is in progress (``"train"``, ``"downloading mnist.gz"``).
    enabled : bool, default True
        False gives a bar that shows nothing.
    required : bool, default False
        Raise ImportError when tqdm is not installed (otherwise the bar shows nothing).
    unit : str, default "it"
        The unit's name (``"B"`` scales bytes to kB, MB...).
    stream : file, optional
        Where the bar goes (default: standard error).
    log_interval : float, default LOG_INTERVAL
        Seconds between two lines when ``stream`` is not a terminal.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> bar = progress_bar(10, "train", stream=out)
    >>> bar.update(10, "loss 0.1")
    >>> bar.close()
    >>> out.getvalue().splitlines()[-1].split("|")[-1]
    ' 10/10 [00:00, loss 0.1]'
    """
    if not enabled:
        return _NoBar()
    bar = _tqdm(total, desc, unit, required, stream, log_interval)
    return _NoBar() if bar is None else _Bar(bar)


def plain_bar(desc, *, unit="it", enabled=True, stream=None, log_interval=LOG_INTERVAL):
    """The tqdm object of :func:`progress_bar` (for a library that drives one itself, like
    pooch), or None when not ``enabled`` or without tqdm."""
    return _tqdm(0, desc, unit, False, stream, log_interval) if enabled else None


def _tqdm(total, desc, unit, required, stream, log_interval):
    try:
        from tqdm import tqdm as plain_tqdm
        from tqdm.auto import tqdm
    except ImportError:
        if required:
            raise ImportError(
                "progress=True needs tqdm: pip install tqdm (or pip install 'mlp-numba[cli]')"
            ) from None
        return None
    stream = sys.stderr if stream is None else stream
    scale = unit == "B"  # bytes as kB, MB...
    # tqdm.auto imports tqdm.notebook (and the widgets) only when it finds a notebook.
    notebook = sys.modules.get("tqdm.notebook")
    if notebook is not None and issubclass(tqdm, notebook.tqdm):  # a notebook: a widget
        return tqdm(total=total, desc=desc, unit=unit, unit_scale=scale)
    if getattr(stream, "isatty", lambda: False)():
        return plain_tqdm(total=total, desc=desc, unit=unit, unit_scale=scale, file=stream)
    # No rate in a log's lines: the closing line then repeats the last one and is dropped.
    return plain_tqdm(
        total=total, desc=desc, unit=unit, unit_scale=scale, file=_LogLines(stream),
        mininterval=log_interval, ascii=True, ncols=80,
        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]",
    )  # fmt: skip
