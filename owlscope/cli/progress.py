"""One-line progress for long CLI work: `label [#####     ] done/total  rate/s`, redrawn in place."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, stream=None, width: int = 24):  # noqa: ANN001 - any text stream
        self.stream = stream or sys.stdout
        self.width = width
        self.label: str | None = None
        self.started = time.monotonic()
        self.last_draw = 0.0

    def __call__(self, label: str, done: int, total: int) -> None:
        now = time.monotonic()
        if label != self.label:
            self.end()
            self.label, self.started = label, now
        elif done < total and now - self.last_draw < 0.2:
            return
        self.last_draw = now
        rate = done / max(now - self.started, 1e-6)
        filled = int(self.width * done / total) if total else self.width
        self.stream.write(f"\r  {label:<24} [{'#' * filled:<{self.width}}] {done}/{total}  {rate:,.0f}/s")
        self.stream.flush()

    def end(self) -> None:
        if self.label is not None:
            self.stream.write("\n")
            self.stream.flush()
            self.label = None
