"""Named crash points for fault-injection tests.

``PIPELINE_CRASH_AT=name[,name...]`` makes the process kill itself with SIGKILL
when it reaches a point of that name — the harshest crash there is, with no
cleanup, no rollback handlers and no flushed buffers. Unset, it costs one
dictionary lookup.
"""

from __future__ import annotations

import os
import signal


def crash_point(name: str) -> None:
    """Die here, as with ``kill -9``, if the environment names this point."""
    armed = os.environ.get("PIPELINE_CRASH_AT")
    if armed and name in armed.split(","):
        os.kill(os.getpid(), signal.SIGKILL)
