"""A small progress bar for downloads and training, on stderr, with no dependency.

On a terminal it redraws one line; elsewhere (logs, pipes) it prints a line on the first update
and then at most every few seconds, so that logs stay short but show progress.
"""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """Progress of ``total`` units of work, shown as ``desc  42% |#####     | 42/100 postfix``.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> bar = ProgressBar(10, "train", stream=out)
    >>> bar.update(10, "loss 0.1")
    >>> bar.close()
    >>> out.getvalue().splitlines()[-1]
    'train 100% |##############################| 10/10 loss 0.1'
    """

    width = 30

    def __init__(self, total, desc, *, stream=None, enabled=True, log_interval=2.0):
        self.total = max(int(total), 0)
        self.desc = desc
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.log_interval = log_interval
        self.done, self.postfix = 0, ""
        self._last_draw = None
        self._drawn = None

    def update(self, done, postfix=""):
        """Set the units done so far (not an increment) and the text after the counts."""
        self.done, self.postfix = done, postfix
        now = time.monotonic()
        interval = 0.1 if self.tty else self.log_interval
        if self._last_draw is None or now - self._last_draw >= interval:
            self._draw()
            self._last_draw = now

    def close(self):
        """Draw the final state (unless a log line already shows it) and end the line."""
        if self.tty or self._drawn != (self.done, self.postfix):
            self._draw()
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self):
        if not self.enabled:
            return
        self._drawn = (self.done, self.postfix)
        fraction = self.done / self.total if self.total else 1.0
        filled = round(self.width * min(fraction, 1.0))
        bar = "#" * filled + " " * (self.width - filled)
        line = f"{self.desc} {fraction:4.0%} |{bar}| {self.done}/{self.total} {self.postfix}"
        self.stream.write(("\r" + line + "\x1b[K") if self.tty else line.rstrip() + "\n")
        self.stream.flush()
