"""The daily push: pack approved stories, claim the day's slot, publish, record.

The day's push is a row keyed by (account, local date, slot) under a unique
constraint, and each story can be in at most one live publication (a partial
unique index). Claiming the slot and the stories is one transaction; writing
the output and marking the stories published come after it, and are safe to
repeat, so a push interrupted by a crash is resumed, never run twice.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# Imported at once (and the function ``plan`` bound over the submodule of that name).
from .plan import (
    DONE,
    EMPTY,
    FAILED,
    MISSED,
    RUNNING,
    Candidate,
    PackedArticle,
    PushReport,
    candidates,
    local_date,
    pack,
    plan,
)

if TYPE_CHECKING:
    from .channel import confirm_sent, release_unsent, watch_published, withdraw
    from .daily import catch_up, record_missed_days, resume_unfinished, run_push
    from .order import move_in_push, set_push_order

# The module of each of the other names. The package imports it when one of its names is
# first used, so the bulletin and the digest (``push.regime``, ``plan``) do not load the
# publishing channel and the WeChat client (issue 13).
_HOME = {"confirm_sent": "channel", "release_unsent": "channel", "watch_published": "channel",
         "withdraw": "channel", "catch_up": "daily", "record_missed_days": "daily",
         "resume_unfinished": "daily", "run_push": "daily", "move_in_push": "order",
         "set_push_order": "order"}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{home}", __name__), name)
    globals()[name] = value  # the next use finds it without this call
    return value


__all__ = [
    "DONE",
    "EMPTY",
    "FAILED",
    "MISSED",
    "RUNNING",
    "Candidate",
    "PackedArticle",
    "PushReport",
    "candidates",
    "catch_up",
    "confirm_sent",
    "local_date",
    "move_in_push",
    "pack",
    "plan",
    "record_missed_days",
    "release_unsent",
    "resume_unfinished",
    "run_push",
    "set_push_order",
    "watch_published",
    "withdraw",
]
