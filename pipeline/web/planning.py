"""The push plan as the desk shows it: the next push, the calendar of the last
and next weeks, and the iCalendar feed of planned pushes.

Pure over rows read here: packing is ``push.pack`` (the same function the push
uses), repeated day after day to project what later pushes will carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from icalendar import Calendar, Event
from sqlmodel import Session, col, select

from .. import lifecycle
from ..config import Settings
from ..deadlines import WAITING, next_push_after, push_time_on
from ..models import Draft, Publication, Push
from ..push import Candidate, PackedArticle, candidates, local_date, pack
from ..push.regime import day_records
from ..reads import SessionReader


def next_push_moment(session: Session, settings: Settings, now: datetime) -> datetime:
    """When the next push will go out: today's push time (or now, if it is overdue
    and not done yet), else tomorrow's."""
    today = local_date(now, settings)
    row = session.exec(select(Push).where(Push.account == settings.account.key,
                                          Push.local_date == today, Push.slot == 1)).first()
    if row is None or not lifecycle.push_taken(row.state):
        return max(now, push_time_on(today, settings))
    return push_time_on(today + timedelta(days=1), settings)


def project(items: list[Candidate], settings: Settings, first: datetime, days: int
            ) -> dict[date, list[PackedArticle]]:
    """What each of the next ``days`` pushes would carry if nothing else were approved."""
    planned: dict[date, list[PackedArticle]] = {}
    moment, remaining = first, items
    while remaining and len(planned) < days:
        following = next_push_after(moment, settings)
        chosen, left = pack(remaining, settings.schedule.max_articles_per_push, moment,
                            following)
        planned[local_date(moment, settings)] = chosen
        remaining = [a.candidate for a in left]
        moment = following
    return planned


@dataclass
class Day:
    day: date
    push_state: str = ""                      # done, running, missed, empty; "" none
    published: list[tuple[int, str, bool]] = field(default_factory=list)  # id, title, late
    planned: list[PackedArticle] = field(default_factory=list)
    deadlines: int = 0                        # unfinished stories whose last day this is
    past: bool = False
    is_break: bool = False                    # the day ended with no push (断更)
    partial: str = ""                         # some stories due that day did not go out


def calendar_days(session: Session, settings: Settings, now: datetime,
                  first: date, last: date) -> list[Day]:
    """Every day from ``first`` to ``last``: pushed, planned, missed, deadlines."""
    days = {first + timedelta(days=i): Day(first + timedelta(days=i))
            for i in range((last - first).days + 1)}
    today = local_date(now, settings)
    for d in days.values():
        d.past = d.day < today or (d.day == today and now >= push_time_on(d.day, settings))
    _add_pushes(session, settings, days, first, last)
    for record in day_records(session, settings, first, last, now):
        days[record.day].is_break = record.is_break
        days[record.day].partial = record.words() if record.partial else ""
    start = next_push_moment(session, settings, now)
    waiting = candidates(SessionReader(session))
    for day, articles in project(waiting, settings, start, len(days)).items():
        if day in days:
            days[day].planned = articles
    for deadline in session.exec(select(Draft.deadline).where(col(Draft.status).in_(WAITING))):
        # a deadline is midnight at the end of the last day allowed
        day = local_date(deadline - timedelta(seconds=1), settings)
        if day in days:
            days[day].deadlines += 1
    return list(days.values())


def _add_pushes(session: Session, settings: Settings, days: dict[date, Day], first: date,
                last: date) -> None:
    pushes = session.exec(select(Push).where(Push.account == settings.account.key,
                                             col(Push.local_date) >= first,
                                             col(Push.local_date) <= last))
    by_id = {}
    for push in pushes:
        days[push.local_date].push_state = push.state
        by_id[push.id] = push.local_date
    if not by_id:
        return
    rows = session.exec(select(Publication, Draft.title)
                        .join(Draft, col(Draft.id) == col(Publication.draft_id))
                        .where(col(Publication.push_id).in_(list(by_id)))
                        .order_by(col(Publication.position)))
    for pub, title in rows:
        days[by_id[pub.push_id]].published.append((pub.draft_id, title, pub.late))


def ical_feed(days: list[Day], settings: Settings, now: datetime, base_url: str) -> bytes:
    """An iCalendar document: one event per push, done or planned."""
    cal = Calendar()
    cal.add("prodid", "-//pipeline//push calendar//ZH")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"{settings.account.name} 推送计划")
    cal.add("x-wr-timezone", settings.tz.key)
    for d in days:
        titles = [t for _, t, _ in d.published] or [a.candidate.title for a in d.planned]
        if not titles:
            continue
        event = Event()
        start = push_time_on(d.day, settings)
        word = "已推送" if d.published else "计划推送"
        event.add("uid", f"push-{settings.account.key}-{d.day.isoformat()}@pipeline")
        event.add("dtstamp", now)
        event.add("dtstart", start)
        event.add("dtend", start + timedelta(minutes=30))
        event.add("summary", f"{settings.account.name} {word} {len(titles)} 篇")
        event.add("description", "\n".join(f"{i}. {t}" for i, t in enumerate(titles, 1)))
        event.add("url", f"{base_url.rstrip('/')}/calendar")
        cal.add_component(event)
    return bytes(cal.to_ical())
