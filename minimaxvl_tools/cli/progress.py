"""The progress line of long commands (``ocr``, ``ingest``, ``index``) on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from .common import PROG


class Progress:
    """Progress on stderr with rate and ETA: a tqdm bar on a TTY; without one, a plain line at every 10% of
    the total and at the end (``minimaxvl: 12/40 pages (30%), 3.10 pages/s, ETA 9s``), so logs of
    non-interactive runs (CI, nohup) stay short and regular (tqdm redraws with carriage returns).
    """

    def __init__(
        self,
        total: int,
        *,
        label: str = "pages",
        stream: TextIO | None = None,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = max(0, total)
        self.done = 0
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._clock = clock
        self._start = clock()
        self._last_step = 0
        self._bar: Any = None
        if enabled and self.tty:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, unit=f" {label}", file=self.stream, ncols=100, leave=True)

    def rate(self) -> float:
        """Items finished per second since the bar was made (0 before the first one)."""
        elapsed = self._clock() - self._start
        return self.done / elapsed if self.done and elapsed > 0 else 0.0

    def eta(self) -> str:
        """Time left at the current rate, e.g. ``1m05s``; ``?`` before the first item, ``0s`` when done."""
        left = max(self.total - self.done, 0)
        if not left:
            return "0s"
        rate = self.rate()
        if rate <= 0:
            return "?"
        secs = round(left / rate)
        if secs >= 3600:
            return f"{secs // 3600}h{secs % 3600 // 60:02d}m"
        return f"{secs // 60}m{secs % 60:02d}s" if secs >= 60 else f"{secs}s"

    def _stats(self) -> str:
        return f"{self.rate():.2f} {self.label}/s, ETA {self.eta()}"

    def update(self, n: int = 1) -> None:
        """Count ``n`` more finished items: advance the bar (TTY) or print a line at each 10% step."""
        self.done += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            return
        step = (10 * self.done) // max(self.total, 1)
        if step > self._last_step or self.done == self.total:
            self._last_step = step
            shown = max(self.total, self.done)
            pct = 100 * self.done // max(shown, 1)
            self.stream.write(f"{PROG}: {self.done}/{shown} {self.label} ({pct}%), {self._stats()}\n")
            self.stream.flush()

    def close(self) -> None:
        """Finish the bar on a TTY (its last state stays on screen)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
