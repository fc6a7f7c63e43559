"""The daily analytics fetch: per-story read figures and the account's followers.

After ``reach.fetch_after`` (10:00 local: WeChat's figures for the previous day are
ready after about 08:00-10:00 Beijing time), once a day and inside a call budget, the
job asks WeChat's datacube for what our tables do not hold yet:

- per story: for each day with a push in the last ``reach.article_days`` days, one
  ``getarticletotaldetail`` call (begin = end = the publish day; the newer API) or,
  where that one does not answer, ``getarticletotal`` (the legacy API, about 7 days of
  figures). Each answer lists the day's articles with their figures per statistics day;
  an article is matched to our story by ``msgid`` ("<msg_data_id>_<position>") or, for
  articles sent by hand (draftbox mode, ``confirm-sent``) and sends whose msg_data_id we
  never learnt, by title and publish day, and the match is marked so.
- the account: ``getusersummary`` (gained and lost followers) and ``getusercumulate``
  (cumulative followers) in spans of at most 7 days.

One row per story per statistics day and one per account day (unique keys); a re-run
updates the same rows. ``ReachFetch.through`` records how far each publish day was
fetched, so a second run the same day makes no call and a run after a gap catches up.
Figures that are not ready (error 61503, or a day missing from the answer) are looked
for again after ``reach.retry_minutes`` and never stored as zero. A used-up quota
(45009) pauses the job until WeChat's quota day turns; an unverified account's refusal
(48001) is recorded once as a sentence (``refusal``) and looked at again a week later.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ..config import Settings
from ..errors import ErrorKind, PipelineError, WeChatAPIError
from ..models import (
    AccountStat,
    ArticleStat,
    Draft,
    Publication,
    Push,
    ReachFetch,
    ReachState,
    WeChatJob,
)
from ..store import Store

if TYPE_CHECKING:
    from ..wechat.client import WeChatClient

log = logging.getLogger(__name__)

QUOTA_ZONE = ZoneInfo("Asia/Shanghai")   # WeChat's quota day and data day
NEW, LEGACY = "new", "legacy"
ENDPOINTS = {NEW: "getarticletotaldetail", LEGACY: "getarticletotal"}
LEGACY_DAYS = 7                          # getarticletotal covers about a week after sending
USER_SPAN = 7                            # getusersummary / getusercumulate: at most 7 days
NOT_READY, REFUSED = 61503, 48001
DATE_ERRORS = frozenset({61500, 61501})
REPROBE = timedelta(days=7)              # a refused account is asked again after a week
PAUSE = timedelta(minutes=15)            # after a transient failure
MAX_ATTEMPTS = 8                         # not-ready looks at one day before giving up
REFUSAL = ("微信拒绝了数据统计接口（{code}）：数据统计（阅读、分享、关注人数）"
           "只对已认证的公众号开放，认证后系统会自动开始获取。")
_MID = re.compile(r"[?&]mid=(\d+)")
_IDX = re.compile(r"[?&]idx=(\d+)")


@dataclass
class FetchReport:
    calls: int = 0
    article_rows: int = 0
    account_days: int = 0
    family: str = ""
    not_ready: list[str] = field(default_factory=list)
    stopped: str = ""                    # why the run ended early (quota, refusal, error)

    def summary(self) -> str:
        text = (f"{self.calls} call(s), {self.article_rows} article figure(s), "
                f"{self.account_days} account day(s)")
        if self.not_ready:
            text += f", not ready yet: {', '.join(self.not_ready)}"
        return text + (f"; stopped: {self.stopped}" if self.stopped else "")


class Stop(Exception):
    """Ends the run: the budget is spent, the quota is used up or WeChat refused."""


# --- when -----------------------------------------------------------------------------------

def fetch_time(settings: Settings, day: date) -> datetime:
    return datetime.combine(day, settings.reach.fetch_after, settings.tz)


def enabled(settings: Settings) -> bool:
    return settings.reach.enabled and settings.wechat.mode != "folder"


def reach_due(store: Store, settings: Settings, now: datetime) -> FetchReport | None:
    """Scheduler hook: run the fetch when it is owed (after the fetch time, not paused, not
    refused within the week). Safe on every tick and in two processes at once (the unique
    keys admit one row; a second run finds nothing owed or rewrites the same figures).

    Raises:
        PipelineError: when the AppSecret's environment variable is not set.
    """
    if not enabled(settings) or now < fetch_time(settings, now.astimezone(settings.tz).date()):
        return None
    with store.session() as session:
        state = session.get(ReachState, settings.account.key)
        if state is not None and not _may_call(state, now):
            return None
        if not owed(session, settings, now):
            return None
    from ..publish.wechat import account_client

    with account_client(settings, store) as client:
        assert client is not None
        return run_fetch(store, settings, client, now)


def _may_call(state: ReachState, now: datetime) -> bool:
    if state.paused_until is not None and now < state.paused_until:
        return False
    return not (state.refused and state.refused_at and now - state.refused_at < REPROBE)


def owed(session: Session, settings: Settings, now: datetime) -> bool:
    return bool(_article_days(session, settings, now)) or bool(_user_days(session, settings, now))


# --- the run --------------------------------------------------------------------------------

def run_fetch(store: Store, settings: Settings, client: WeChatClient, now: datetime
              ) -> FetchReport:
    """Fetch what is owed now (see the module's docstring); never raises for WeChat's
    answers, which end up in the report and in ``ReachState``."""
    report = FetchReport()
    runner = _Runner(store, settings, client, now, report)
    try:
        runner.users()
        runner.articles()
    except Stop as stop:
        report.stopped = str(stop)
    log.info("reach fetch: %s", report.summary())
    return report


class _Runner:
    def __init__(self, store: Store, settings: Settings, client: WeChatClient, now: datetime,
                 report: FetchReport) -> None:
        self.store, self.settings, self.client = store, settings, client
        self.now, self.report = now, report
        self.account = settings.account.key
        self.yesterday = now.astimezone(QUOTA_ZONE).date() - timedelta(days=1)

    # ---------------------------------------------------------------- calls and budget

    def state(self, session: Session) -> ReachState:
        state = session.get(ReachState, self.account)
        if state is None:
            state = ReachState(account=self.account, updated_at=self.now)
            session.add(state)
        return state

    def call(self, name: str, begin: date, end: date) -> dict[str, Any]:
        """One datacube call inside the budget; quota, refusal and transient failures
        end the run (recorded in ReachState), other errors go back to the caller."""
        quota_day = self.now.astimezone(QUOTA_ZONE).date()
        with self.store.session() as session:
            state = self.state(session)
            used = state.calls if state.quota_day == quota_day else 0
            if used >= self.settings.reach.max_calls:
                raise Stop(f"the budget of {self.settings.reach.max_calls} analytics calls "
                           "for today is spent (reach.max_calls)")
            state.quota_day, state.calls, state.updated_at = quota_day, used + 1, self.now
        self.report.calls += 1
        try:
            answer = self.client.datacube(name, begin.isoformat(), end.isoformat())
        except WeChatAPIError as err:
            self._stop_on(err)
            raise
        self._clear_refusal()
        return answer

    def _stop_on(self, err: WeChatAPIError) -> None:
        if err.errcode == REFUSED:
            self._refused(err)
            raise Stop("WeChat refuses the analytics for this account (48001)")
        if err.kind is ErrorKind.DEFER:
            turn = datetime.combine(self.now.astimezone(QUOTA_ZONE).date() + timedelta(days=1),
                                    time(0), QUOTA_ZONE)
            self._pause(turn, str(err))
            raise Stop(f"WeChat's daily quota is used up; resuming after {turn:%Y-%m-%d %H:%M}")
        if err.kind in (ErrorKind.RETRY, ErrorKind.TOKEN, ErrorKind.AMBIGUOUS):
            self._pause(self.now + PAUSE, str(err))
            raise Stop(f"WeChat did not answer ({err}); trying again in 15 minutes")

    def _pause(self, until: datetime, why: str) -> None:
        with self.store.session() as session:
            state = self.state(session)
            state.paused_until, state.updated_at = until, self.now
        log.warning("reach fetch paused until %s: %s", until.isoformat(), why)

    def _refused(self, err: WeChatAPIError) -> None:
        with self.store.session() as session:
            state = self.state(session)
            first = not state.refused
            state.refused, state.refused_at = REFUSAL.format(code=err.errcode), self.now
            state.updated_at = self.now
        if first:  # said once; the desk and `wechat check` show the sentence
            log.info("WeChat refuses the analytics for this account (48001): %s", err)

    def _clear_refusal(self) -> None:
        with self.store.session() as session:
            state = session.get(ReachState, self.account)
            if state is not None and state.refused:
                state.refused, state.refused_at = "", None

    # ---------------------------------------------------------------- account totals

    def users(self) -> None:
        with self.store.session() as session:
            days = _user_days(session, self.settings, self.now)
        for begin, end in _spans(days, USER_SPAN):
            try:
                summary = self.call("getusersummary", begin, end)
                cumulate = self.call("getusercumulate", begin, end)
            except WeChatAPIError as err:
                self._gave_up("users", begin, end, err)
                continue
            self._store_users(days, begin, end, summary, cumulate)

    def _store_users(self, days: Sequence[date], begin: date, end: date,
                     summary: dict[str, Any], cumulate: dict[str, Any]) -> None:
        totals = {_day(r.get("ref_date")): r.get("cumulate_user")
                  for r in cumulate.get("list") or []}
        with self.store.session() as session:
            for day in (d for d in days if begin <= d <= end):
                followers = totals.get(day)
                if not isinstance(followers, int):  # not ready: never a zero
                    self._not_ready(session, "users", day, "getusercumulate has no figure")
                    continue
                rows = [r for r in summary.get("list") or [] if _day(r.get("ref_date")) == day]
                row = _one(session, select(AccountStat).where(
                    AccountStat.account == self.account, AccountStat.day == day)) or \
                    AccountStat(account=self.account, day=day, fetched_at=self.now)
                row.followers = followers
                row.new = sum(_int(r.get("new_user")) for r in rows)
                row.cancelled = sum(_int(r.get("cancel_user")) for r in rows)
                row.fetched_at = self.now
                session.add(row)
                self._done(session, "users", day, day)
                self.report.account_days += 1

    # ---------------------------------------------------------------- articles

    def articles(self) -> None:
        with self.store.session() as session:
            days = _article_days(session, self.settings, self.now)
        for day in days:
            self._article_day(day)

    def family(self) -> str:
        with self.store.session() as session:
            state = session.get(ReachState, self.account)
            return state.family if state is not None and state.family else NEW

    def _article_day(self, day: date) -> None:
        family = self.family()
        try:
            answer = self.call(ENDPOINTS[family], day, day)
        except WeChatAPIError as err:
            if family == NEW and _unanswered(err):
                self._set_family(LEGACY, err)
                return self._article_day(day)
            return self._gave_up("articles", day, day, err)
        if family == NEW:
            self._set_family(NEW, None)
        self.report.family = family
        self._store_articles(day, family, answer.get("list") or [])
        return None

    def _set_family(self, family: str, err: WeChatAPIError | None) -> None:
        with self.store.session() as session:
            state = self.state(session)
            if state.family != family:
                state.family = family
                if err is not None:
                    log.info("getarticletotaldetail does not answer (%s); using the legacy "
                             "getarticletotal", err)

    def _store_articles(self, day: date, family: str, items: list[dict[str, Any]]) -> None:
        last = min(self.yesterday, day + timedelta(days=_window(self.settings, family) - 1))
        with self.store.session() as session:
            stories = _stories(session, self.settings, day)
            seen: list[date] = []
            for story, item, how in match(stories, items, day):
                for detail in _details(item, family):
                    stat_day = _day(detail.get("stat_date"))
                    if stat_day is None or stat_day > last:
                        continue
                    self._put(session, story, stat_day, detail, family, how,
                              str(item.get("msgid", "")))
                    seen.append(stat_day)
            through = max(seen) if seen else None
            if through is not None and through >= last:
                self._done(session, "articles", day, through)
            else:
                self._not_ready(session, "articles", day, "no figures up to "
                                f"{last.isoformat()} yet", through)

    def _put(self, session: Session, story: _Story, stat_day: date, detail: dict[str, Any],
             family: str, how: str, msgid: str) -> None:
        row = _one(session, select(ArticleStat).where(
            ArticleStat.draft_id == story.draft_id, ArticleStat.stat_date == stat_day))
        if row is None:
            row = ArticleStat(draft_id=story.draft_id, stat_date=stat_day, fetched_at=self.now)
        for name, value in figures(detail, family).items():
            setattr(row, name, value)
        row.msgid, row.matched_by = msgid[:64], how
        row.source, row.fetched_at = ENDPOINTS[family], self.now
        session.add(row)
        self.report.article_rows += 1

    # ---------------------------------------------------------------- bookkeeping

    def _fetch_row(self, session: Session, kind: str, day: date) -> ReachFetch:
        row: ReachFetch | None = session.exec(select(ReachFetch).where(
            ReachFetch.account == self.account, ReachFetch.kind == kind,
            ReachFetch.day == day)).first()
        if row is None:
            row = ReachFetch(account=self.account, kind=kind, day=day, updated_at=self.now)
        return row

    def _done(self, session: Session, kind: str, day: date, through: date) -> None:
        row = self._fetch_row(session, kind, day)
        row.through, row.retry_at, row.attempts = through, None, 0
        row.note, row.updated_at = "", self.now
        session.add(row)

    def _not_ready(self, session: Session, kind: str, day: date, why: str,
                   through: date | None = None) -> None:
        row = self._fetch_row(session, kind, day)
        if through is not None and (row.through is None or through > row.through):
            row.through, row.attempts = through, 0
        row.attempts += 1
        row.retry_at = self.now + timedelta(minutes=self.settings.reach.retry_minutes)
        row.note, row.updated_at = why, self.now
        session.add(row)
        self.report.not_ready.append(f"{kind} {day.isoformat()}")

    def _gave_up(self, kind: str, begin: date, end: date, err: WeChatAPIError) -> None:
        """Not ready, or WeChat refused these dates: look again later, never a zero."""
        with self.store.session() as session:
            day = begin
            while day <= end:
                self._not_ready(session, kind, day, str(err)[:500])
                if err.errcode in DATE_ERRORS:  # refused for good: stop asking for it
                    self._fetch_row(session, kind, day).attempts = MAX_ATTEMPTS
                day += timedelta(days=1)
        if err.errcode not in (NOT_READY, *DATE_ERRORS):
            log.warning("reach fetch of %s %s..%s failed: %s", kind, begin, end, err)


# --- what is owed (pure over the rows) ------------------------------------------------------

def _window(settings: Settings, family: str) -> int:
    days = settings.reach.article_days
    return min(days, LEGACY_DAYS) if family == LEGACY else days


def _fetches(session: Session, settings: Settings, kind: str) -> dict[date, ReachFetch]:
    rows = session.exec(select(ReachFetch).where(ReachFetch.account == settings.account.key,
                                                 ReachFetch.kind == kind))
    return {r.day: r for r in rows}


def _waiting(row: ReachFetch | None, now: datetime) -> bool:
    if row is None:
        return False
    return row.attempts >= MAX_ATTEMPTS or (row.retry_at is not None and now < row.retry_at)


def _article_days(session: Session, settings: Settings, now: datetime) -> list[date]:
    """Publish days whose figures are not fetched up to yesterday (within the window)."""
    yesterday = now.astimezone(QUOTA_ZONE).date() - timedelta(days=1)
    state = session.get(ReachState, settings.account.key)
    window = _window(settings, state.family if state and state.family else NEW)
    first = yesterday - timedelta(days=window - 1)
    pushed = session.exec(
        select(col(Push.local_date)).distinct()
        .join(WeChatJob, col(WeChatJob.push_id) == Push.id)
        .join(Publication, col(Publication.push_id) == Push.id)
        .where(Push.account == settings.account.key, col(Push.local_date) >= first,
               col(Push.local_date) <= yesterday, Publication.state == "published")).all()
    fetched = _fetches(session, settings, "articles")
    owed = []
    for day in sorted(pushed):
        row = fetched.get(day)
        last = min(yesterday, day + timedelta(days=window - 1))
        if (row is None or row.through is None or row.through < last) and not _waiting(row, now):
            owed.append(day)
    return owed


def _user_days(session: Session, settings: Settings, now: datetime) -> list[date]:
    yesterday = now.astimezone(QUOTA_ZONE).date() - timedelta(days=1)
    first = yesterday - timedelta(days=settings.reach.backfill_days - 1)
    have = set(session.exec(select(col(AccountStat.day)).where(
        AccountStat.account == settings.account.key, col(AccountStat.day) >= first)).all())
    fetched = _fetches(session, settings, "users")
    days = [first + timedelta(days=i) for i in range((yesterday - first).days + 1)]
    return [d for d in days if d not in have and not _waiting(fetched.get(d), now)]


def _spans(days: Sequence[date], limit: int) -> Iterator[tuple[date, date]]:
    """Runs of consecutive days, each at most ``limit`` long."""
    start: date | None = None
    prev: date | None = None
    for day in sorted(days):
        if start is None or prev is None or day != prev + timedelta(days=1) or \
                (day - start).days >= limit:
            if start is not None and prev is not None:
                yield start, prev
            start = day
        prev = day
    if start is not None and prev is not None:
        yield start, prev


# --- matching and figures (pure) ------------------------------------------------------------

@dataclass(frozen=True)
class _Story:
    draft_id: int
    title: str
    position: int
    msgid: str | None       # "<msg_data_id>_<position>" when we know the msg_data_id


def _stories(session: Session, settings: Settings, day: date) -> list[_Story]:
    rows = session.exec(
        select(Publication, Draft, WeChatJob)
        .join(Push, col(Push.id) == Publication.push_id)
        .join(Draft, col(Draft.id) == Publication.draft_id)
        .join(WeChatJob, col(WeChatJob.push_id) == Push.id)
        .where(Push.account == settings.account.key, Push.local_date == day,
               Publication.state == "published")
        .order_by(col(Publication.position))).all()
    return [_Story(d.id or 0, d.title, p.position, _msgid(j, p)) for p, d, j in rows]


def _msgid(job: WeChatJob, publication: Publication) -> str | None:
    """Our article's analytics id: from the send's msg_data_id, else from its permanent
    URL (mid= is the msg_data_id, idx= the position); None for hand-sent articles."""
    if job.mode == "draftbox":
        return None
    if job.msg_data_id:
        return f"{job.msg_data_id}_{publication.position}"
    url = publication.url or ""
    mid, idx = _MID.search(url), _IDX.search(url)
    return f"{mid[1]}_{idx[1]}" if mid and idx else None


def match(stories: Sequence[_Story], items: Sequence[dict[str, Any]], day: date
          ) -> list[tuple[_Story, dict[str, Any], str]]:
    """Pair WeChat's articles with our stories: by msgid first, then, for stories without a
    known msgid, by exact title among the articles of the same publish day."""
    pairs: list[tuple[_Story, dict[str, Any], str]] = []
    used: set[int] = set()
    by_id = {str(item.get("msgid", "")): i for i, item in enumerate(items)}
    for story in stories:
        i = by_id.get(story.msgid or "")
        if i is not None and i not in used:
            used.add(i)
            pairs.append((story, items[i], "msgid"))
    for story in stories:
        if story.msgid is not None and story.msgid in by_id:
            continue
        for i, item in enumerate(items):
            same_day = _day(item.get("ref_date")) in (day, None)
            if i not in used and same_day and str(item.get("title", "")).strip() == story.title:
                used.add(i)
                pairs.append((story, item, "title"))
                break
    return pairs


def _details(item: dict[str, Any], family: str) -> list[dict[str, Any]]:
    key = "detail_list" if family == NEW else "details"
    value = item.get(key) or []
    return [d for d in value if isinstance(d, dict)]


def figures(detail: dict[str, Any], family: str) -> dict[str, int | None]:
    """Our columns from one statistics day of either API (cumulative to that day)."""
    if family == NEW:
        return {"reads": _int(detail.get("read_count")), "readers": _int(detail.get("read_user")),
                "shares": _int(detail.get("share_count", detail.get("share_user"))),
                "favorites": _int(detail.get("collection_user")),
                "likes": _opt(detail.get("like_user")), "zaikan": _opt(detail.get("zaikan_user"))}
    return {"reads": _int(detail.get("int_page_read_count")),
            "readers": _int(detail.get("int_page_read_user")),
            "shares": _int(detail.get("share_count")),
            "favorites": _int(detail.get("add_to_fav_user")), "likes": None, "zaikan": None}


def _unanswered(err: WeChatAPIError) -> bool:
    """The newer API is not there for this account (unknown path, retired, not open): try
    the legacy one. Refusals of the account, dates and readiness are not that."""
    return err.kind is ErrorKind.FINAL and err.errcode not in (REFUSED, NOT_READY, *DATE_ERRORS)


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _opt(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _one(session: Session, query: Any) -> Any:
    return session.exec(query).first()


def refusal(store: Store, settings: Settings) -> str:
    """The recorded refusal sentence (unverified account), or ""."""
    try:
        with store.session() as session:
            state = session.get(ReachState, settings.account.key)
            return state.refused if state is not None else ""
    except (PipelineError, sa.exc.SQLAlchemyError):
        return ""
