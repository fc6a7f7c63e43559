"""Deadline arithmetic and deadline states (pure: the clock is always passed in).

deadline = end of the local day of the activity's end date plus N days, counted
in calendar days or in official workdays (the State Council holiday calendar,
make-up workdays included, via the ``chinesecalendar`` package).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from functools import lru_cache

import chinese_calendar

from .config import Settings
from .domain import DeadlineState, DraftStatus

log = logging.getLogger(__name__)
WAITING = (DraftStatus.DRAFTED, DraftStatus.CHANGES_REQUESTED, DraftStatus.APPROVED,
           DraftStatus.PUBLISHING)


@lru_cache(maxsize=4096)
def is_workday(day: date) -> bool:
    """Official workday, falling back to Monday-Friday for years the calendar lacks."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        log.warning("the holiday calendar has no data for %s; counting Monday-Friday as "
                    "workdays (upgrade the chinesecalendar package)", day.year)
        return day.weekday() < 5


def last_day(activity_day: date, days: int, counting: str) -> date:
    """The last local day on which a story about ``activity_day`` is on time."""
    if counting == "calendar":
        return activity_day + timedelta(days=days)
    day, left = activity_day, days
    while left > 0:
        day += timedelta(days=1)
        if is_workday(day):
            left -= 1
    return day


def deadline_for(activity_end: datetime, settings: Settings) -> datetime:
    """End of the local day ``deadline.days`` after the activity ended."""
    local_day = activity_end.astimezone(settings.tz).date()
    final = last_day(local_day, settings.deadline.days, settings.deadline.counting)
    return datetime.combine(final + timedelta(days=1), time(0), settings.tz)


def push_time_on(day: date, settings: Settings) -> datetime:
    return datetime.combine(day, settings.schedule.push_time, settings.tz)


def next_push_after(moment: datetime, settings: Settings) -> datetime:
    """The first scheduled push strictly after ``moment``."""
    local = moment.astimezone(settings.tz)
    candidate = push_time_on(local.date(), settings)
    return candidate if candidate > local else push_time_on(local.date() + timedelta(days=1),
                                                            settings)


def due_soon_limit(now: datetime, settings: Settings) -> datetime:
    """Deadlines before this instant miss the push after the next one: they are due soon."""
    return next_push_after(next_push_after(now, settings), settings)


def deadline_state(status: str, deadline: datetime, late: bool, now: datetime,
                   settings: Settings) -> DeadlineState:
    """Where a draft stands against its deadline at ``now``."""
    if status == DraftStatus.PUBLISHED:
        return DeadlineState.PUBLISHED_LATE if late else DeadlineState.PUBLISHED_ON_TIME
    if status == DraftStatus.REJECTED:
        return DeadlineState.CLOSED
    if now >= deadline:
        return DeadlineState.OVERDUE
    if deadline < due_soon_limit(now, settings):
        return DeadlineState.DUE_SOON
    return DeadlineState.ON_TRACK


def hours_left(deadline: datetime, now: datetime) -> float:
    """Hours until the deadline (negative once it has passed), one decimal."""
    return round((deadline - now).total_seconds() / 3600, 1)
