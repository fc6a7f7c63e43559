"""The daily push: pack approved stories, claim the day's slot, publish, record.

The day's push is a row keyed by (account, local date, slot) under a unique
constraint, and each story can be in at most one live publication (a partial
unique index). Claiming the slot and the stories is one transaction; writing
the output and marking the stories published come after it, and are safe to
repeat, so a push interrupted by a crash is resumed, never run twice.
"""

from .channel import confirm_sent, release_unsent, watch_published, withdraw
from .daily import catch_up, record_missed_days, resume_unfinished, run_push
from .order import move_in_push, set_push_order
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
