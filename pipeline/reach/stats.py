"""The read figures as the digest, the bulletin, the desk and ``pipeline stats`` show them.

``gather_*`` read the store; the rest is pure. WeChat's figures per statistics day are
cumulative, so a story's figures "so far" are its latest row and the reads of one day
are the growth since the row before (the first row counts in full).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ..config import Settings
from ..models import AccountStat, ArticleStat, Draft, Unit
from .chart import Series, line_chart


@dataclass(frozen=True)
class ArticleFigures:
    id: int
    title: str
    unit: str
    unit_id: int
    published_at: datetime | None
    reads: int | None            # None: no figures yet (never shown as 0)
    readers: int | None
    shares: int | None
    favorites: int | None
    likes: int | None
    zaikan: int | None = None
    matched_by: str = ""
    as_of: date | None = None

    def as_json(self, settings: Settings) -> dict[str, Any]:
        when = self.published_at.astimezone(settings.tz).isoformat() if self.published_at \
            else None
        return {"id": self.id, "title": self.title, "unit": self.unit, "published_at": when,
                "reads": self.reads, "readers": self.readers, "shares": self.shares,
                "favorites": self.favorites, "likes": self.likes}


@dataclass(frozen=True)
class AccountDay:
    day: date
    followers: int | None
    new: int | None
    cancelled: int | None

    def as_json(self) -> dict[str, Any]:
        return {"date": self.day.isoformat(), "followers": self.followers, "new": self.new,
                "cancelled": self.cancelled}


def latest_rows(rows: Iterable[ArticleStat]) -> dict[int, ArticleStat]:
    """Per story, its newest statistics day."""
    latest: dict[int, ArticleStat] = {}
    for row in rows:
        if row.draft_id not in latest or row.stat_date > latest[row.draft_id].stat_date:
            latest[row.draft_id] = row
    return latest


def daily_reads(rows: Iterable[ArticleStat]) -> dict[date, int]:
    """Reads per day over all stories: each story's growth since its previous row."""
    by_story: dict[int, list[ArticleStat]] = {}
    for row in rows:
        by_story.setdefault(row.draft_id, []).append(row)
    days: dict[date, int] = {}
    for story in by_story.values():
        before = 0
        for row in sorted(story, key=lambda r: r.stat_date):
            days[row.stat_date] = days.get(row.stat_date, 0) + max(0, row.reads - before)
            before = row.reads
    return days


def gather_articles(session: Session, settings: Settings, *, since: datetime | None = None,
                    until: datetime | None = None, unit: str | None = None,
                    ids: Sequence[int] | None = None) -> list[ArticleFigures]:
    """Published stories (newest first) with their latest figures."""
    # Columns, not Draft objects: a campaign week can publish thousands of stories.
    query = (sa.select(col(Draft.id), col(Draft.title), col(Unit.name), col(Unit.id),
                       col(Draft.published_at))
             .join(Unit, col(Unit.id) == Draft.unit_id)
             .where(col(Draft.published_at).is_not(None)))
    if since is not None:
        query = query.where(col(Draft.published_at) >= since)
    if until is not None:
        query = query.where(col(Draft.published_at) < until)
    if unit:
        query = query.where(col(Unit.name) == unit)
    if ids is not None:
        query = query.where(col(Draft.id).in_(list(ids)))
    stories = session.execute(query.order_by(col(Draft.published_at).desc(),
                                             col(Draft.id))).all()
    found = [story[0] for story in stories]
    latest = latest_rows(session.exec(select(ArticleStat).where(
        col(ArticleStat.draft_id).in_(found)))) if found else {}
    return [_figures(i, title, name, unit_id, at, latest.get(i or 0))
            for i, title, name, unit_id, at in stories]


def _figures(draft_id: int | None, title: str, unit: str, unit_id: int | None,
             published_at: datetime | None, row: ArticleStat | None) -> ArticleFigures:
    if row is None:
        return ArticleFigures(draft_id or 0, title, unit, unit_id or 0, published_at,
                              None, None, None, None, None)
    return ArticleFigures(draft_id or 0, title, unit, unit_id or 0, published_at,
                          row.reads, row.readers, row.shares, row.favorites, row.likes,
                          row.zaikan, row.matched_by, row.stat_date)


def gather_account(session: Session, settings: Settings, since: date, until: date
                   ) -> list[AccountDay]:
    rows = session.exec(select(AccountStat).where(
        AccountStat.account == settings.account.key, col(AccountStat.day) >= since,
        col(AccountStat.day) <= until).order_by(col(AccountStat.day))).all()
    return [AccountDay(r.day, r.followers, r.new, r.cancelled) for r in rows]


def gather_daily_reads(session: Session, since: date, until: date) -> dict[date, int]:
    # rows before ``since`` are read too: a day's reads are the growth since the row before
    rows = session.exec(select(ArticleStat).where(col(ArticleStat.stat_date) <= until)).all()
    return {d: n for d, n in daily_reads(rows).items() if since <= d <= until}


def story_series(session: Session, draft_id: int) -> list[tuple[date, int]]:
    rows = session.exec(select(ArticleStat).where(ArticleStat.draft_id == draft_id)
                        .order_by(col(ArticleStat.stat_date))).all()
    return [(r.stat_date, r.reads) for r in rows]


# --- per unit and top lists (pure) ----------------------------------------------------------

@dataclass(frozen=True)
class UnitReach:
    unit: str
    stories: int                 # published stories in the period
    measured: int                # of them, with figures
    reads: int

    @property
    def reads_per_story(self) -> float | None:
        return self.reads / self.measured if self.measured else None


def unit_reach(articles: Sequence[ArticleFigures]) -> dict[str, UnitReach]:
    """Total reads and reads per story per unit; stories without figures yet count as
    published but not in the average."""
    result: dict[str, UnitReach] = {}
    for a in articles:
        old = result.get(a.unit, UnitReach(a.unit, 0, 0, 0))
        measured = a.reads is not None
        result[a.unit] = UnitReach(a.unit, old.stories + 1, old.measured + int(measured),
                                   old.reads + (a.reads or 0))
    return result


def top(articles: Sequence[ArticleFigures], n: int = 5) -> list[ArticleFigures]:
    measured = [a for a in articles if a.reads is not None]
    return sorted(measured, key=lambda a: (-(a.reads or 0), a.id))[:n]


def day_bounds(settings: Settings, first: date, last: date) -> tuple[datetime, datetime]:
    """[first 00:00, last+1 00:00) in the account's zone."""
    return (datetime.combine(first, time(0), settings.tz),
            datetime.combine(last + timedelta(days=1), time(0), settings.tz))


def reads_chart(daily: dict[date, int], account: Sequence[AccountDay], first: date,
                last: date) -> str:
    """The desk's chart: account reads per day and, when known, followers gained."""
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    series = [Series("每日阅读", [(d, daily[d]) for d in days if d in daily])]
    gained = [(a.day, a.new) for a in account if a.new is not None]
    if gained:
        series.append(Series("新增关注", gained))
    return line_chart(series, title="每日阅读与新增关注")


# --- the digest's part ----------------------------------------------------------------------

@dataclass(frozen=True)
class DigestReach:
    pushed: dict[int, ArticleFigures]          # yesterday's push, by story id
    top_week: tuple[ArticleFigures, ...]       # the last seven days' five most read
    followers: AccountDay | None               # the newest day with account figures
    as_of: date | None                         # the newest statistics day we hold


def gather_digest_reach(session: Session, settings: Settings, day: date,
                        pushed_ids: Sequence[int]) -> DigestReach:
    """Reads so far of yesterday's push, the week's top five, followers gained."""
    since, until = day_bounds(settings, day - timedelta(days=7), day - timedelta(days=1))
    week = gather_articles(session, settings, since=since, until=until)
    pushed = {a.id: a for a in gather_articles(session, settings, ids=list(pushed_ids))} \
        if pushed_ids else {}
    latest = session.exec(select(AccountStat).where(
        AccountStat.account == settings.account.key, col(AccountStat.day) < day)
        .order_by(col(AccountStat.day).desc())).first()
    followers = AccountDay(latest.day, latest.followers, latest.new, latest.cancelled) \
        if latest is not None else None
    dates = [a.as_of for a in week if a.as_of is not None]
    return DigestReach(pushed, tuple(top(week)), followers, max(dates) if dates else None)


def digest_context(reach: DigestReach | None) -> dict[str, Any]:
    """What the digest templates show (empty when WeChat is not used)."""
    if reach is None:
        return {"reach": None}
    f = reach.followers
    return {"reach": {
        "reads": {i: a.reads for i, a in reach.pushed.items()},
        "top": [{"id": a.id, "title": a.title, "unit": a.unit, "reads": a.reads,
                 "likes": a.likes, "shares": a.shares} for a in reach.top_week],
        "followers": None if f is None else {
            "day": f"{f.day.month}月{f.day.day}日", "new": f.new, "cancelled": f.cancelled,
            "total": f.followers},
        "as_of": f"{reach.as_of.month}月{reach.as_of.day}日" if reach.as_of else "",
    }}


def story_figures(session: Session, settings: Settings, draft_id: int) -> ArticleFigures | None:
    """A published story's latest figures (reads None until fetched); None when the story
    is not published."""
    found = gather_articles(session, settings, ids=[draft_id])
    return found[0] if found else None
