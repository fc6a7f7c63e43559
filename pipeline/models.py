"""Database tables (SQLModel) — the ledger that every guarantee rests on.

Times are stored as naive UTC in both SQLite and PostgreSQL (``UTCDateTime``)
and come back timezone-aware, so arithmetic never mixes zones.

Every command that reads the database imports this module, so it is kept cheap to
import (issue 13): annotations are real types, not strings (SQLModel and SQLAlchemy
would otherwise ``eval`` each of the ~270 fields' annotations at import), and the one
index with dialect options is attached only where DDL is compared (``live_draft_index``).
"""

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel
from sqlmodel._compat import SQLModelConfig

from .domain import DraftStatus, Level


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware datetimes in, naive UTC in the column, aware UTC out."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


class Table(SQLModel):
    """The base of our tables: pydantic builds a table's validator only if one is used.

    SQLModel never validates a table model's rows (it constructs them), so building 29
    validators and serialisers at import was pure start-up cost for every command.
    """

    model_config = SQLModelConfig(from_attributes=True, defer_build=True)


def _utc_field(**kw: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kw)


class Unit(Table, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=100)
    level: Level = Field(sa_type=sa.String(20))
    parent_id: int | None = Field(default=None, foreign_key="unit.id")
    email: str | None = Field(default=None, max_length=200)
    created_at: datetime = _utc_field()


class Submission(Table, table=True):
    """A report as accepted: stored before we say it was accepted."""

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    activity_type: str = Field(max_length=50)
    title: str
    start_at: datetime = _utc_field()
    end_at: datetime = _utc_field()
    place: str
    form: str
    participants: int | None = None
    body: str = Field(sa_type=sa.Text)
    links: str = Field(default="[]", sa_type=sa.Text)    # JSON list
    photos: str = Field(default="[]", sa_type=sa.Text)   # JSON list of stored photo records
    contact: str = ""
    extra: str = Field(default="{}", sa_type=sa.Text)    # JSON object of unknown columns
    source: str = ""
    source_row: int | None = None
    dedupe_key: str = Field(unique=True, max_length=600)
    idempotency_key: str | None = Field(default=None, unique=True, max_length=200)
    received_at: datetime = _utc_field()
    # Added by migration 0006 (truthful articles): participants above is the count.
    participants_text: str = ""                # 参与人数 as written, printed verbatim
    participants_unit: str = Field(default="", max_length=10)  # 人, 人次 or 户
    timed: bool = True                         # False: a date without a time was reported
    notes: str = Field(default="", sa_type=sa.Text)  # the reporter's notes, never published
    # Added by migration 0008 (issue 10): 合作单位, a JSON list of the partner units.
    partners: str = Field(default="[]", sa_type=sa.Text)


class Draft(Table, table=True):
    """The article made from one submission, and where it stands."""

    __table_args__ = (sa.Index("ix_draft_status_deadline", "status", "deadline"),)

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", unique=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    activity_type: str = Field(max_length=50, index=True)
    title: str
    author: str = ""
    digest: str = ""
    status: DraftStatus = Field(sa_type=sa.String(30))
    deadline: datetime = _utc_field()
    cover: str | None = None                   # stored photo name chosen as cover
    problems: str = Field(default="[]", sa_type=sa.Text)  # JSON list of WeChat rule violations
    push_rank: int | None = None               # editor's order in the next push (lower first)
    created_at: datetime = _utc_field()
    updated_at: datetime = _utc_field()
    published_at: datetime | None = _utc_field(default=None)
    late: bool = False                         # published after its deadline; never cleared
    version: int = 1                           # bumped by every change; guards concurrent edits
    review_stage: int = 0                      # index of the open review stage (while drafted)
    review_round: int = 1                      # a send-back or a reset starts a new round
    notes: str = Field(default="[]", sa_type=sa.Text)  # JSON list: how the article was made
    # The stem of the current article files (``article.v7`` -> article.v7.md/.html); an
    # edit writes new files and switches this in its transaction. None: article.md/.html.
    article_file: str | None = Field(default=None, max_length=40)


class DraftEvent(Table, table=True):
    """One line of a draft's history: who did what, when, with which note."""

    id: int | None = Field(default=None, primary_key=True)
    draft_id: int = Field(foreign_key="draft.id", index=True)
    at: datetime = _utc_field()
    actor: str = ""
    action: str = Field(max_length=40)
    from_status: str | None = None
    to_status: str | None = None
    note: str = Field(default="", sa_type=sa.Text)
    remote: str = Field(default="", max_length=100)  # from where: an address, "cli", "api"


class SignOff(Table, table=True):
    """One review stage signed for one draft: the 审核记录 kept for every article."""

    __table_args__ = (sa.UniqueConstraint("draft_id", "round", "stage",
                                          name="uq_signoff_stage"),)

    id: int | None = Field(default=None, primary_key=True)
    draft_id: int = Field(foreign_key="draft.id", index=True)
    round: int = 1
    stage: int                                 # index in [review] stages
    stage_name: str = Field(max_length=40)
    by: str = Field(max_length=100)
    at: datetime = _utc_field()
    note: str = Field(default="", sa_type=sa.Text)
    markdown: str = Field(default="", sa_type=sa.Text)  # the text as signed, for the diff


class StateEvent(Table, table=True):
    """The history line of a move of a push, publication, WeChat job or outbox message."""

    __table_args__ = (sa.Index("ix_stateevent_row", "machine", "row_id"),)

    id: int | None = Field(default=None, primary_key=True)
    machine: str = Field(max_length=20)
    row_id: int
    at: datetime = _utc_field()
    actor: str = Field(default="", max_length=100)
    action: str = Field(max_length=40)
    from_state: str = Field(default="", max_length=30)
    to_state: str = Field(default="", max_length=30)
    note: str = Field(default="", sa_type=sa.Text)


class Push(Table, table=True):
    """The daily push: one row per account, local date and slot; the unique key is the guard."""

    __table_args__ = (sa.UniqueConstraint("account", "local_date", "slot",
                                          name="uq_push_account_date_slot"),)

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=100)
    local_date: date
    slot: int = 1
    state: str = Field(max_length=20)          # lifecycle.PushState
    version: int = 0
    channel: str = Field(default="folder", max_length=20)
    started_at: datetime = _utc_field()
    finished_at: datetime | None = _utc_field(default=None)
    manifest_path: str | None = None
    note: str = ""


class Publication(Table, table=True):
    """One story in one push. At most one live publication per draft (partial unique index)."""

    id: int | None = Field(default=None, primary_key=True)
    draft_id: int = Field(foreign_key="draft.id", index=True)
    push_id: int = Field(foreign_key="push.id", index=True)
    position: int                              # 1 = the lead article
    state: str = Field(max_length=20)          # lifecycle.PublicationState
    version: int = 0
    late: bool = False
    published_at: datetime | None = _utc_field(default=None)
    output_path: str | None = None
    url: str | None = None                     # the article's permanent WeChat URL, if any
    error: str = ""


class Alert(Table, table=True):
    """Something a person should be told, recorded once per (kind, subject) by its unique key."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200)
    kind: str = Field(max_length=40, index=True)
    draft_id: int | None = Field(default=None, foreign_key="draft.id", index=True)
    created_at: datetime = _utc_field()
    recipients: str = Field(default="[]", sa_type=sa.Text)  # JSON list of addresses
    detail: str = Field(default="", sa_type=sa.Text)
    sent_at: datetime | None = _utc_field(default=None)


class SchedulerLease(Table, table=True):
    """The scheduler lease: who runs the scheduler, its heartbeat and fencing token
    (``pipeline.lease``)."""

    name: str = Field(primary_key=True, max_length=50)
    holder: str = ""
    pid: int = 0
    host: str = ""
    started_at: datetime = _utc_field()
    heartbeat_at: datetime = _utc_field()
    # Added by migration 0010: the fencing token, bumped by every takeover. A scheduler
    # acts only while the row still carries the token it took (``pipeline.lease``).
    token: int = 0


class LoginFailure(Table, table=True):
    """A failed login (migration 0010): counted by every web process alike."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=300, index=True)      # address and lower-cased name
    at: datetime = _utc_field(index=True)


class OutboxMessage(Table, table=True):
    """An email to send; kept until delivered or given up, deduplicated by ``key``."""

    __table_args__ = (sa.Index("ix_outbox_state_next", "state", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=300)     # e.g. "alerts:2026-06-18T09:00:ed@x"
    kind: str = Field(max_length=40)                  # alert, digest, bulletin, test
    recipients: str = Field(sa_type=sa.Text)          # JSON list of addresses
    subject: str
    text_body: str = Field(sa_type=sa.Text)
    html_body: str = Field(default="", sa_type=sa.Text)
    state: str = Field(default="pending", max_length=20)  # lifecycle.OutboxState
    version: int = 0
    attempts: int = 0
    created_at: datetime = _utc_field()
    next_attempt_at: datetime = _utc_field()
    sent_at: datetime | None = _utc_field(default=None)
    last_error: str = Field(default="", sa_type=sa.Text)
    alert_ids: str = Field(default="[]", sa_type=sa.Text)  # alerts this message delivers


class User(Table, table=True):
    """An editor who logs in to the web desk (password hashed with argon2)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=100)
    password_hash: str
    active: bool = True
    stages: str = Field(default="[]", sa_type=sa.Text)  # JSON list of review stages signed
    email: str | None = Field(default=None, max_length=200)  # where stage alerts go
    created_at: datetime = _utc_field()


class UnitLink(Table, table=True):
    """A unit's secret submission link for reporters (no account needed)."""

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    token_hash: str = Field(unique=True, max_length=64)  # sha256 of the token, shown once
    created_at: datetime = _utc_field()
    created_by: str = ""
    revoked_at: datetime | None = _utc_field(default=None)


class WebSession(Table, table=True):
    """A logged-in editor's session; the cookie carries only its random id (stored hashed).

    Deleting the row ends the session at once: logout, a new password, a disabled account.
    """

    id_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="user.id", index=True)
    created_at: datetime = _utc_field()
    seen_at: datetime = _utc_field()
    remote: str = Field(default="", max_length=100)


class FeedToken(Table, table=True):
    """The calendar feed's key (calendar apps cannot log in); stored hashed, shown once."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, max_length=64)
    created_at: datetime = _utc_field()
    created_by: str = ""
    revoked_at: datetime | None = _utc_field(default=None)


class AuditLog(Table, table=True):
    """Who did what, when, from where (web and API actions)."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _utc_field(index=True)
    actor: str = Field(max_length=100)
    action: str = Field(max_length=60)
    target: str = ""
    remote: str = ""
    detail: str = Field(default="", sa_type=sa.Text)


class WeChatJob(Table, table=True):
    """The WeChat side of one day's push: one draft holding the day's articles.

    ``state`` moves by conditional updates only (``WHERE id = ? AND state = ? AND
    fence = ?``); an intent is committed before each external call and its result after.
    """

    id: int | None = Field(default=None, primary_key=True)
    push_id: int = Field(foreign_key="push.id", unique=True)
    mode: str = Field(max_length=20)            # masssend, freepublish, draftbox
    state: str = Field(max_length=20, index=True)
    fence: int = 0                              # bumped by every transition
    attempt: int = 0                            # draft/add attempts (each has its own marker)
    marker: str = ""                            # echoed in content_source_url
    media_id: str | None = None                 # the WeChat draft
    clientmsgid: str | None = None              # mass send dedupe key, from (account, date)
    publish_id: str | None = None               # freepublish job
    msg_id: str | None = None                   # mass send message
    msg_data_id: str | None = None              # the articles' id in WeChat's analytics
    article_id: str | None = None
    urls: str = Field(default="[]", sa_type=sa.Text)  # JSON list, article order
    retry_at: datetime | None = _utc_field(default=None)
    resume_state: str | None = None             # where a DEFERRED job picks up again
    checks: int = 0                             # reconciliation looks at an unknown outcome
    resubmits: int = 0                          # at most one, after a reconciler found nothing
    polls: int = 0                              # status polls so far (budgeted per day)
    poll_day: date | None = None
    polls_today: int = 0
    error: str = Field(default="", sa_type=sa.Text)
    created_at: datetime = _utc_field()
    updated_at: datetime = _utc_field()


class WeChatCall(Table, table=True):
    """Every WeChat call a job made: what, when, and how it ended."""

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="wechatjob.id", index=True)
    at: datetime = _utc_field()
    step: str = Field(max_length=40)
    outcome: str = Field(max_length=40)         # intent, ok, retry, defer, ambiguous, final
    detail: str = Field(default="", sa_type=sa.Text)


class WeChatMedia(Table, table=True):
    """Uploads cached by content hash so a photo is never uploaded twice."""

    __table_args__ = (sa.UniqueConstraint("appid", "sha256", "kind", name="uq_media_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    appid: str = Field(max_length=64)
    sha256: str = Field(max_length=64)
    kind: str = Field(max_length=20)            # body (uploadimg) or cover (add_material)
    url: str = ""
    media_id: str | None = None
    created_at: datetime = _utc_field()


class WeChatToken(Table, table=True):
    """The one cached access token per account, shared by every process."""

    appid: str = Field(primary_key=True, max_length=64)
    token: str = Field(sa_type=sa.Text)
    expires_at: datetime = _utc_field()


class WeChatEvent(Table, table=True):
    """Inbox of PUBLISHJOBFINISH / MASSSENDJOBFINISH pushes, matched by the reconciler."""

    __table_args__ = (sa.UniqueConstraint("event", "ref", "status", name="uq_event_once"),)

    id: int | None = Field(default=None, primary_key=True)
    event: str = Field(max_length=40)
    ref: str = Field(max_length=64)             # publish_id or msg_id
    status: str = Field(max_length=40)
    article_id: str | None = None
    urls: str = Field(default="[]", sa_type=sa.Text)
    received_at: datetime = _utc_field()
    payload: str = Field(default="", sa_type=sa.Text)


# --- Reach (issue 12): read figures from WeChat's analytics and reported coverage -------------


class ArticleStat(Table, table=True):
    """One published story's figures as of one day (WeChat's cumulative counts to
    ``stat_date``); one row per story per day, the unique key is the guard."""

    __table_args__ = (sa.UniqueConstraint("draft_id", "stat_date", name="uq_articlestat_day"),)

    id: int | None = Field(default=None, primary_key=True)
    draft_id: int = Field(foreign_key="draft.id", index=True)
    stat_date: date = Field(index=True)
    reads: int = 0                              # 阅读次数
    readers: int = 0                            # 阅读人数
    shares: int = 0
    favorites: int = 0
    likes: int | None = None                    # 点赞, where the API gives it
    zaikan: int | None = None                   # 在看, where the API gives it
    msgid: str = Field(default="", max_length=64)  # "<msg_data_id>_<index>" at WeChat
    matched_by: str = Field(default="msgid", max_length=20)  # msgid or title (hand-published)
    source: str = Field(default="", max_length=40)  # the datacube endpoint that gave it
    fetched_at: datetime = _utc_field()


class AccountStat(Table, table=True):
    """The account's followers on one day (gained, lost, cumulative)."""

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=100)
    day: date
    followers: int | None = None
    new: int | None = None
    cancelled: int | None = None
    fetched_at: datetime = _utc_field()

    __table_args__ = (sa.UniqueConstraint("account", "day", name="uq_accountstat_day"),)


class ReachFetch(Table, table=True):
    """What the analytics job has fetched: one row per (kind, day); ``through`` is the last
    statistics day covered, so a re-run the same day finds nothing owed."""

    __table_args__ = (sa.UniqueConstraint("account", "kind", "day", name="uq_reachfetch"),)

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=100)
    kind: str = Field(max_length=20)            # articles (day = publish date) or users
    day: date
    through: date | None = None                 # statistics fetched up to this day
    retry_at: datetime | None = _utc_field(default=None)  # not ready: look again then
    attempts: int = 0
    note: str = Field(default="", sa_type=sa.Text)
    updated_at: datetime = _utc_field()


class ReachState(Table, table=True):
    """Per account: the call budget of the quota day, the API family that answers, and a
    refusal (unverified account) recorded once instead of failing every day."""

    account: str = Field(primary_key=True, max_length=100)
    quota_day: date | None = None
    calls: int = 0
    paused_until: datetime | None = _utc_field(default=None)  # quota used up
    family: str = Field(default="", max_length=20)  # "new" or "legacy" once known
    refused: str = Field(default="", sa_type=sa.Text)  # the refusal sentence, once
    refused_at: datetime | None = _utc_field(default=None)
    updated_at: datetime = _utc_field()


class MediaOutlet(Table, table=True):
    """An outlet an editor classified once (added to the workspace's media list)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)  # as reported (or a link's host)
    outlet: str = Field(max_length=200)
    level: str = Field(max_length=20)           # national, provincial, city, county, new_media
    created_by: str = ""
    created_at: datetime = _utc_field()
class Finding(Table, table=True):
    """One proofreading finding on a draft's article (pipeline.proofread); never edits text.

    Offsets are Python string indices into the article Markdown (None: in the title).
    """

    id: int | None = Field(default=None, primary_key=True)
    draft_id: int = Field(foreign_key="draft.id", index=True)
    kind: str = Field(max_length=20)           # typo, banned, caution, name, privacy, format
    rule: str = Field(default="", max_length=20)  # which check: list, delete, mobile, ...
    text: str = ""
    offset_start: int | None = None
    offset_end: int | None = None
    suggestion: str = ""
    message: str = Field(default="", sa_type=sa.Text)
    detail: str = Field(default="", sa_type=sa.Text)   # the word list's own note (Chinese)
    state: str = Field(default="open", max_length=20)  # lifecycle.FindingState
    version: int = 0
    note: str = Field(default="", sa_type=sa.Text)     # dismissal reason, confirmation
    actor: str = ""
    created_at: datetime = _utc_field()
    resolved_at: datetime | None = _utc_field(default=None)


class ProofreadRun(Table, table=True):
    """The last proofreading pass over a draft: which version, and why it could not run."""

    draft_id: int = Field(foreign_key="draft.id", primary_key=True)
    at: datetime = _utc_field()
    draft_version: int = 0
    error: str = Field(default="", sa_type=sa.Text)   # English sentence; "" when it ran


def live_draft_index() -> sa.Index:
    """At most one live publication per draft: the partial unique index of migration 0001.

    Attached to the table only by the migrations' environment: its dialect options make
    SQLAlchemy import its PostgreSQL dialect (and asyncio), a seventh of importing the
    tables, in every command, also on SQLite; the database enforces it either way.
    """
    table = Publication.__table__  # type: ignore[attr-defined]
    for index in table.indexes:
        if index.name == "uq_publication_live_draft":
            return index  # type: ignore[no-any-return]
    live = sa.text("state NOT IN ('cancelled', 'failed')")
    return sa.Index("uq_publication_live_draft", table.c.draft_id, unique=True,
                    sqlite_where=live, postgresql_where=live)
