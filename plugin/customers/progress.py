"""Progress of a long import or recompute on stderr: rows done, rows per second and an ETA.

A line at most every `EVERY_SECONDS`, so a terminal or a log is not flooded, and one at
the end; nothing at all for work that ends before the first line is due.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

EVERY_SECONDS = 3.0


class Meter:
    """Reports how far some work has got; `total_bytes` or `total` give the ETA."""

    def __init__(
        self,
        what: str,
        *,
        total: int | None = None,
        total_bytes: int | None = None,
        out: TextIO | None = None,
        every: float = EVERY_SECONDS,
    ) -> None:
        self.what = what
        self.total = total
        self.total_bytes = total_bytes
        self.out = out if out is not None else sys.stderr
        self.every = every
        self.started = time.monotonic()
        self.last_shown = self.started
        self.shown = False

    def update(self, done: int, bytes_done: int | None = None, *, total: int | None = None) -> None:
        if total:
            self.total = total
        now = time.monotonic()
        if now - self.last_shown < self.every:
            return
        self.last_shown = now
        self._show(done, bytes_done, now)

    def done(self, done: int) -> None:
        if self.shown:
            elapsed = time.monotonic() - self.started
            rate = done / elapsed if elapsed > 0 else 0.0
            self._line(f"{self.what}: {done:,} rows in {elapsed:.1f} s ({rate:,.0f} rows/s)")

    def _show(self, done: int, bytes_done: int | None, now: float) -> None:
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        fraction: float | None = None
        if self.total:
            fraction = done / self.total
        elif self.total_bytes and bytes_done is not None:
            fraction = bytes_done / self.total_bytes
        text = f"{self.what}: {done:,} rows, {rate:,.0f} rows/s"
        if fraction is not None and 0 < fraction <= 1:
            remaining = elapsed * (1 - fraction) / fraction
            text += f", {fraction:.0%}, about {_duration(remaining)} left"
        self._line(text)

    def _line(self, text: str) -> None:
        self.shown = True
        print(text, file=self.out, flush=True)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"
