"""The fence every external call of a scheduled job passes (WeChat, SMTP).

A tiny module of its own so the WeChat client and the mailer need not import the
database layer: ``pipeline.lease`` installs the scheduler's lease here for the
duration of a job, and ``fence()`` asks it whether this process still holds it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Protocol


class Holder(Protocol):
    def check(self) -> None: ...


_current: contextvars.ContextVar[Holder | None] = contextvars.ContextVar("scheduler_lease",
                                                                         default=None)


@contextlib.contextmanager
def fenced(holder: Holder | None) -> Iterator[None]:
    """Run a scheduled job under ``holder``: ``fence()`` inside it checks the lease."""
    token = _current.set(holder)
    try:
        yield
    finally:
        _current.reset(token)


def fence() -> None:
    """Before an external call: stop (``lease.LeaseLost``) if this job's scheduler lost
    its lease. Outside a scheduled job (the desk, the CLI) it does nothing."""
    holder = _current.get()
    if holder is not None:
        holder.check()
