"""Log repeated failures as one line per interval, with counts.

While Redis is down every save fails to send; one ERROR line per message
buries the log (40,000 lines for 20,000 saves, measured). Instead the first
failure of a quiet period is logged at once, with its error, and the rest as
one summary per :data:`INTERVAL`: "1,234 messages to 56 groups failed in the
last 10 s".
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

logger = logging.getLogger("rohrpost_signals")

#: Seconds between two summary lines.
INTERVAL = 10.0
# Distinct groups counted per interval; more are reported as "at least".
_MAX_GROUPS = 10_000


class FailureLog:
    """Counts failures of one kind (``what``: "failed", "were dropped") and logs them."""

    def __init__(self, what: str, interval: float = INTERVAL, level: int = logging.ERROR) -> None:
        self.what = what
        self.interval = interval
        self.level = level
        self._lock = threading.Lock()
        self._messages = 0
        self._groups: set[str] = set()
        self._last = ""
        self._window_start = 0.0
        self._quiet_since = 0.0  # when the last window was reported empty

    def record(self, group: str, description: str) -> None:
        """Count one message to ``group``; ``description`` says what happened to it."""
        now = time.monotonic()
        with self._lock:
            # Overdue: the loop that was to report has gone (a test's loop closed).
            first = not self._window_start or now - self._window_start > 3 * self.interval
            if first:
                self._window_start = now
                self._messages = 0
                self._groups = set()
            else:
                self._messages += 1
                if len(self._groups) < _MAX_GROUPS:
                    self._groups.add(group)
                self._last = description
        if first:
            logger.log(
                self.level,
                "%s (further ones are counted and logged every %g s)",
                description,
                self.interval,
            )
            self._schedule()

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            timer = threading.Timer(self.interval, self.report)
            timer.daemon = True
            timer.start()
        else:
            loop.call_later(self.interval, self.report)

    def report(self) -> None:
        """Log the counts since the last report; keep reporting while failures go on."""
        with self._lock:
            messages, groups, last = self._messages, len(self._groups), self._last
            elapsed = time.monotonic() - self._window_start
            self._messages = 0
            self._groups = set()
            if messages:
                self._window_start = time.monotonic()
            else:
                self._window_start = 0.0  # quiet: the next failure is logged at once
        if not messages:
            return
        more = "at least " if groups >= _MAX_GROUPS else ""
        logger.log(
            self.level,
            "%s messages to %s%s groups %s in the last %.0f s (the last: %s)",
            f"{messages:,}",
            more,
            f"{groups:,}",
            self.what,
            elapsed,
            last,
        )
        self._schedule()
