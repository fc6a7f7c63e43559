"""Deadline arithmetic and deadline states (pure: the clock is always passed in).

deadline = end of the local day of the activity's end date plus N days, counted
in calendar days or in official workdays (the State Council holiday calendar,
make-up workdays included, via the ``chinesecalendar`` package).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta, tzinfo
from functools import lru_cache

from .config import Settings
from .domain import DeadlineState, DraftStatus

log = logging.getLogger(__name__)
WAITING = (DraftStatus.DRAFTED, DraftStatus.CHANGES_REQUESTED, DraftStatus.APPROVED,
           DraftStatus.PUBLISHING)


@lru_cache(maxsize=4096)
def is_workday(day: date) -> bool:
    """Official workday, falling back to Monday-Friday for years the calendar lacks."""
    import chinese_calendar  # only when a deadline is computed, not for every command

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


def deadline_text(deadline: datetime, now: datetime, tz: tzinfo) -> str:
    """A deadline the way people say it: 6月17日24时前, 今天24时前, 已超期2天3小时.

    The one place deadlines are worded for people (pages, emails, CLI lines).
    """
    if now >= deadline:
        return "已超期" + duration_text(deadline, now)
    local = deadline.astimezone(tz)
    if local.time() == time(0):  # midnight ends the day before: that day's 24时
        day, clock = local.date() - timedelta(days=1), "24时"
    else:
        day, clock = local.date(), f"{local.hour}时" + (f"{local.minute:02d}分"
                                                        if local.minute else "")
    today = now.astimezone(tz).date()
    if day == today:
        return f"今天{clock}前"
    year = f"{day.year}年" if day.year != today.year else ""
    return f"{year}{day.month}月{day.day}日{clock}前"


def duration_text(start: datetime, end: datetime) -> str:
    """2天3小时 over 48 hours, 27小时 under it, 40分钟 under an hour."""
    minutes = max(0, int((end - start).total_seconds() // 60))
    hours = minutes // 60
    if hours == 0:
        return f"{minutes}分钟"
    if hours <= 48:
        return f"{hours}小时"
    days, rest = divmod(hours, 24)
    return f"{days}天{rest}小时" if rest else f"{days}天"
