"""The daily regime's record of each day (what went out, what was due), read through a
``reads.Reader``: the digest, the desk's calendar and the bulletin's normal path ask it
through their session, the bulletin's lean start through the DB-API alone.

This module loads no database library (issue 13: the bulletin as a whole process).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from ..config import Settings
from ..domain import DraftStatus, PublicationState, push_went_out
from ..reads import Reader, local_day, stored_date, stored_time, time_operand


@dataclass(frozen=True)
class DayRecord:
    """One day of the regime: its push, and the stories whose last day it was."""

    day: date
    state: str | None          # the push row's state (None: no row)
    articles: int              # stories that went out in the day's push
    due: int                   # stories whose deadline was the end of this day
    due_missed: int            # of them, still not out when the day ended
    ended: bool                # the day is over

    @property
    def pushed(self) -> bool:
        return self.articles > 0 and push_went_out(self.state)

    @property
    def is_break(self) -> bool:
        return self.ended and not self.pushed

    @property
    def partial(self) -> bool:
        return self.ended and self.pushed and self.due_missed > 0

    def words(self) -> str:
        """The day in one phrase (Chinese), for the calendar, digest and bulletin."""
        if self.is_break:
            return "未推送（断更）"
        if not self.ended and not self.pushed:
            return "尚未推送"
        text = f"已推送{self.articles}条"
        if self.partial:
            text += f"（部分推送：当日到期{self.due}条中{self.due_missed}条未推送）"
        return text


def read_days(reader: Reader, settings: Settings, first: date, last: date,
              now: datetime) -> list[DayRecord]:
    """Every day from ``first`` to ``last``, in three queries whatever the month holds."""
    days = (last - first).days + 1
    pushes = _pushes(reader, settings, first, last)
    due = _due(reader, settings, first, days)
    today = now.astimezone(settings.tz).date()
    records = []
    for i in range(days):
        day = first + timedelta(days=i)
        state, articles = pushes.get(day, (None, 0))
        owed, missed = due.get(i, (0, 0))
        records.append(DayRecord(day, state, articles, owed, missed, day < today))
    return records


def _pushes(reader: Reader, settings: Settings, first: date, last: date
            ) -> dict[date, tuple[str | None, int]]:
    """Per day: its push row's state and the stories that went out in it."""
    bounds = {"account": settings.account.key, "first": stored_date(reader.dialect, first),
              "last": stored_date(reader.dialect, last)}
    where = "p.account = :account AND p.local_date >= :first AND p.local_date <= :last"
    counts = dict(reader.rows(
        f"SELECT p.id, COUNT(*) FROM push p JOIN publication pub ON pub.push_id = p.id "
        f"WHERE {where} AND pub.state = :published GROUP BY p.id",
        {**bounds, "published": str(PublicationState.PUBLISHED)}))
    rows = reader.rows(f"SELECT p.id, p.local_date, p.state FROM push p WHERE {where} "
                       "ORDER BY p.id", bounds)
    # (several slots of a day: the last row read stands, as it always has)
    return {local_day(day): (str(state), int(counts.get(push_id, 0)))
            for push_id, day, state in rows}


def _due(reader: Reader, settings: Settings, first: date, days: int
         ) -> dict[int, tuple[int, int]]:
    """Per day (its index from ``first``): the stories whose deadline ended it, and of
    them those not out by then, counted by the database.

    A deadline is midnight at the end of the last day allowed: its day is the local date
    of one second before it, so day ``i`` holds the deadlines in [midnight + 1 s, next
    midnight + 1 s) (a CASE over the day bounds instead of a datetime per story)."""
    tz = settings.tz

    def bound(i: int) -> str:
        return f"b{i}"
    params = {bound(i): stored_time(reader.dialect, datetime.combine(
        first + timedelta(days=i), time(0), tz) + timedelta(seconds=1))
        for i in range(days + 1)}
    deadline = time_operand("d.deadline")
    index = "CASE " + " ".join(f"WHEN {deadline} < :{bound(i)} THEN {i - 1}"
                               for i in range(days + 1)) + f" ELSE {days} END"
    start = datetime.combine(first, time(0), tz)
    rows = reader.rows(
        f"SELECT {index}, CASE WHEN d.published_at IS NOT NULL AND d.published_at <= "
        f"d.deadline THEN 0 ELSE 1 END, COUNT(*) FROM draft d WHERE {deadline} > :start "
        f"AND {deadline} <= :stop AND d.status <> :rejected GROUP BY 1, 2",
        {**params, "start": stored_time(reader.dialect, start),
         "stop": stored_time(reader.dialect, datetime.combine(
             first + timedelta(days=days), time(0), tz)),
         "rejected": str(DraftStatus.REJECTED)})
    due: dict[int, tuple[int, int]] = {}
    for i, missed, n in rows:
        owed, late = due.get(int(i), (0, 0))
        due[int(i)] = (owed + int(n), late + (int(n) if missed else 0))
    return due
