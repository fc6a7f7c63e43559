"""The one source of "now" (``--now`` / ``PIPELINE_NOW`` replace it for every command)."""

from __future__ import annotations

import time as time_module
from datetime import UTC, datetime, timedelta


class Clock:
    """The one source of "now": real time, or a given start that stands still (one-shot
    commands, so every row they write carries the same time) or runs on (serve)."""

    def __init__(self, start: datetime | None = None, *, running: bool = False) -> None:
        self._start = start
        self._running = running
        self._started = time_module.monotonic()

    def now(self) -> datetime:
        if self._start is None:
            return datetime.now(UTC)
        if not self._running:
            return self._start
        return self._start + timedelta(seconds=time_module.monotonic() - self._started)
