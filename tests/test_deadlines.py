"""Deadline arithmetic and states (pure functions, clock passed in)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.config import Settings, parse_settings
from pipeline.deadlines import deadline_for, deadline_state, last_day, next_push_after
from pipeline.domain import DeadlineState

TZ = ZoneInfo("Asia/Shanghai")


def settings(tmp_path: Path, **deadline: object) -> Settings:
    return parse_settings({"deadline": deadline}, tmp_path, environ={})


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def test_calendar_deadline_is_end_of_local_day_plus_two(tmp_path: Path) -> None:
    s = settings(tmp_path)
    # 23:30 in Shanghai is still June 20 locally although it is June 20 15:30 UTC.
    assert deadline_for(at("2026-06-20T23:30"), s) == at("2026-06-23T00:00")
    utc_evening = datetime(2026, 6, 20, 17, 0, tzinfo=ZoneInfo("UTC"))  # June 21 01:00 local
    assert deadline_for(utc_evening, s) == at("2026-06-24T00:00")


def test_workdays_follow_the_official_calendar(tmp_path: Path) -> None:
    # 2026 National Day holiday: Oct 1-7 off; Sunday Sept 20 and Saturday Oct 10 are make-up
    # workdays per the State Council notice (chinesecalendar carries it).
    assert last_day(date(2026, 9, 30), 2, "workdays") == date(2026, 10, 9)
    assert last_day(date(2026, 6, 19), 2, "workdays") == date(2026, 6, 23)  # Fri -> Tue
    s = settings(tmp_path, counting="workdays")
    assert deadline_for(at("2026-09-30T10:00"), s) == at("2026-10-10T00:00")


def test_next_push(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert next_push_after(at("2026-06-20T19:59"), s) == at("2026-06-20T20:00")
    assert next_push_after(at("2026-06-20T20:00"), s) == at("2026-06-21T20:00")


@pytest.mark.parametrize("now,status,late,expected", [
    ("2026-06-21T09:00", "drafted", False, DeadlineState.ON_TRACK),
    ("2026-06-22T09:00", "approved", False, DeadlineState.DUE_SOON),
    ("2026-06-21T20:30", "drafted", False, DeadlineState.DUE_SOON),
    ("2026-06-23T00:00", "drafted", False, DeadlineState.OVERDUE),
    ("2026-06-25T00:00", "published", True, DeadlineState.PUBLISHED_LATE),
    ("2026-06-25T00:00", "published", False, DeadlineState.PUBLISHED_ON_TIME),
    ("2026-06-25T00:00", "rejected", False, DeadlineState.CLOSED),
])
def test_states(tmp_path: Path, now: str, status: str, late: bool,
                expected: DeadlineState) -> None:
    deadline = at("2026-06-23T00:00")  # activity on June 20
    assert deadline_state(status, deadline, late, at(now), settings(tmp_path)) == expected
