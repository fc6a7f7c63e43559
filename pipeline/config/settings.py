"""The typed settings: one frozen dataclass per table of ``config.toml``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from zoneinfo import ZoneInfo

from ..domain import Level

EMAIL_RE = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")


@dataclass(frozen=True)
class AccountSettings:
    name: str = "公众号"                 # the account's display name
    author: str = ""                     # article author line (<= 16 chars); empty: the unit
    timezone: ZoneInfo = ZoneInfo("Asia/Shanghai")  # noqa: RUF009 - immutable, cached
    key: str = "default"                 # account key used in push rows


@dataclass(frozen=True)
class ScheduleSettings:
    push_time: time = time(20, 0)        # local time of the daily push
    max_articles_per_push: int = 8       # WeChat allows 8 articles per message
    sweep_minutes: int = 5               # deadline sweep interval
    lease_seconds: int = 90              # a standby takes over after this long without heartbeat
    empty_warning_minutes: int = 120     # warn the editors this long before an empty push
    late_push: bool = False              # a story approved after an empty push goes out at
                                         # the next tick (False: on an explicit push only)


@dataclass(frozen=True)
class DatabaseSettings:
    """Connection pool of each process (PostgreSQL; SQLite opens a file per connection)."""

    pool_size: int = 5                   # connections kept open per process
    max_overflow: int = 5                # extra connections opened under load, then closed
    pool_timeout: float = 10.0           # seconds a request waits for a connection, then 503


@dataclass(frozen=True)
class DeadlineSettings:
    days: int = 2                        # a story goes out within N days of its activity
    counting: str = "calendar"           # "calendar" or "workdays" (official calendar)
    report_hours: int = 24               # a unit reports on time within N hours of the end


@dataclass(frozen=True)
class Limits:
    title_chars: int = 32
    author_chars: int = 16
    digest_chars: int = 128
    content_chars: int = 20_000          # WeChat: content < 20,000 characters
    content_bytes: int = 1_000_000       # and < 1 MB
    body_chars: int = 10_000             # a report's own text
    photo_bytes: int = 10 * 1024 * 1024  # add_material's image limit
    photos_per_report: int = 20
    photo_pixels: int = 40_000_000       # width x height; larger photos are refused at intake
    future_grace_minutes: int = 10       # clock skew allowed for "activity in the future"


@dataclass(frozen=True)
class Paths:
    templates: Path
    drafts: Path
    published: Path
    database: Path
    proofread: Path | None = None  # the workspace's word lists (glossary, words, allow)


@dataclass(frozen=True)
class ActivityType:
    key: str
    label: str
    template: str


@dataclass(frozen=True)
class UnitSpec:
    name: str
    level: Level
    parent: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Target:
    """A campaign target: at least ``low``, at most ``high`` (None: no upper bound)."""

    low: int
    high: int | None

    def __str__(self) -> str:
        if self.high is None:
            return f">={self.low}"
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


MEASURES = {"activities": "activities", "households": "households", "户": "households",
            "次": "activities", "场": "activities"}


@dataclass(frozen=True)
class PlanItem:
    """One item of the campaign plan: who owes it, what counts, how much.

    ``who`` names levels (district, street, branch, community) and/or units; a report
    counts when its type is one of ``types`` or its 活动方式 contains one of ``forms``
    (both empty: any report), and, with ``partner``, when it names a partner unit.
    ``measure`` "households" counts the 户 a report gives (one per report otherwise).
    """

    key: str                             # the plan's number or a short key ("一", "film")
    label: str                           # what the bulletin calls it ("联合主题活动")
    who: tuple[str, ...]
    target: Target | None = None         # None: no number (counted, never "met")
    types: tuple[str, ...] = ()
    forms: tuple[str, ...] = ()
    partner: bool = False
    measure: str = "activities"          # "activities" or "households"
    unit_word: str = "次"                # 场/次/批次/户, printed after the count

    def applies(self, unit: str, level: Level) -> bool:
        return unit in self.who or level.value in self.who

    def counts(self, activity_type: str, form: str, partners: int) -> bool:
        if self.partner and partners < 1:
            return False
        if not self.types and not self.forms:
            return True
        return activity_type in self.types or any(f in form for f in self.forms)


@dataclass(frozen=True)
class Campaign:
    name: str
    start: date
    end: date
    items: tuple[PlanItem, ...] = ()

    @property
    def targets(self) -> Mapping[Level, Mapping[str, Target]]:
        """Per-level targets of single-type items (the older, simpler view)."""
        result: dict[Level, dict[str, Target]] = {}
        for item in self.items:
            if item.target is None or len(item.types) != 1:
                continue
            for who in item.who:
                if (level := _level_of(who)) is not None:
                    result.setdefault(level, {})[item.types[0]] = item.target
        return result


def _level_of(text: str) -> Level | None:
    try:
        return Level(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class WeChatSettings:
    mode: str = "folder"                 # folder, masssend, freepublish or draftbox
    appid: str = ""
    secret_env: str = "WECHAT_APPSECRET"  # name of the environment variable with the AppSecret
    push_token_env: str = "WECHAT_PUSH_TOKEN"  # variable with the server token of pushes
    base_url: str = "https://api.weixin.qq.com"
    default_cover: str = "cover.jpg"     # bundled cover image, relative to templates/
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    poll_budget: int = 80                # freepublish/get calls per day we allow ourselves (of 100)
    settle_minutes: int = 10             # wait before re-checking an unknown submit outcome

    @property
    def enabled(self) -> bool:
        return self.mode != "folder"


@dataclass(frozen=True)
class SmtpSettings:
    host: str = ""                       # empty: email is recorded in the outbox, not sent
    port: int = 587
    security: str = "starttls"           # none, starttls or tls
    username: str = ""
    password_env: str = "PIPELINE_SMTP_PASSWORD"
    sender: str = "pipeline@localhost.localdomain"
    timeout: float = 20.0


@dataclass(frozen=True)
class NotifySettings:
    editors: tuple[str, ...] = ()
    leaders: tuple[str, ...] = ()
    base_url: str = "http://127.0.0.1:8000"   # links in emails point at the web desk
    digest_time: time = time(8, 30)
    bulletin_weekday: int = 0            # 0 = Monday
    bulletin_time: time = time(9, 0)
    digest_article: bool = False         # also make the digest a "每日动态" draft


@dataclass(frozen=True)
class ScoringSettings:
    """Weights of the weekly bulletin's ranking score (printed under the table)."""

    target_met: float = 10.0             # per activity type whose target is met
    published: float = 2.0               # per published story
    late: float = -1.0                   # per story published late
    missed: float = -3.0                 # per story still unpublished past its deadline
    reads_per_story: float = 0.0         # per read per published story (0: shown, not scored)
    national: float = 0.0                # per item of coverage by national media (中央/国家)
    provincial: float = 0.0              # per item of coverage by provincial media (省)
    city: float = 0.0                    # per item of coverage by city media (市)


@dataclass(frozen=True)
class ReachSettings:
    """The daily analytics fetch (read figures from WeChat) and its limits."""

    enabled: bool = True                 # fetch when wechat.mode is not "folder"
    fetch_after: time = time(10, 0)      # local time; WeChat's figures are ready after ~10:00
    max_calls: int = 100                 # analytics calls a quota day we allow ourselves
    article_days: int = 30               # days after publishing a story's figures are followed
    backfill_days: int = 14              # account totals fetched this far back on a first run
    retry_minutes: int = 60              # figures not ready yet: look again after this


MEDIA_LEVELS: dict[str, str] = {
    "national": "中央/国家", "provincial": "省", "city": "市", "county": "区县",
    "new_media": "新媒体/自媒体",
}
MEDIA_LEVEL_ALIASES: dict[str, str] = {
    "中央": "national", "国家": "national", "中央/国家": "national", "央媒": "national",
    "省": "provincial", "省级": "provincial", "市": "city", "市级": "city",
    "区县": "county", "区": "county", "县": "county", "区县级": "county",
    "新媒体": "new_media", "自媒体": "new_media", "新媒体/自媒体": "new_media",
}


def parse_media_level(text: str) -> str | None:
    """The media level key named by ``text`` (English key or Chinese label), else None."""
    value = text.strip()
    return value.lower() if value.lower() in MEDIA_LEVELS else MEDIA_LEVEL_ALIASES.get(value)


@dataclass(frozen=True)
class OutletSpec:
    """One news outlet: its name, the web domains it publishes on, and its level."""

    name: str
    level: str
    domains: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()        # other names reporters write for it


@dataclass(frozen=True)
class MediaSettings:
    file: str = "media.toml"             # the workspace's outlet list (optional)
    outlets: tuple[OutletSpec, ...] = ()  # from the file and [[media.outlets]]


@dataclass(frozen=True)
class ReviewStage:
    """One stage of 三审: its name and who may sign it (empty: any editor)."""

    name: str
    editors: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReviewSettings:
    # Without a [review] table an office has one stage any editor signs (one approval).
    stages: tuple[ReviewStage, ...] = (ReviewStage("审核"),)
    separate_people: bool = True         # nobody signs two stages of the same draft
    edit_resets: bool = False            # an edit after a sign-off restarts the review

    def index(self, name: str) -> int | None:
        for i, stage in enumerate(self.stages):
            if stage.name == name:
                return i
        return None


@dataclass(frozen=True)
class WebSettings:
    """The web desk's sessions, proxies and connection timeouts."""

    trusted_proxies: tuple[str, ...] = ()  # X-Forwarded-For is honoured only from these
    session_hours: int = 12              # a session ends this long after login at the latest
    idle_minutes: int = 60               # ... or after this long without a request
    header_timeout: int = 10             # seconds a client has to send its request headers
    keepalive_timeout: int = 5           # seconds an idle connection is kept open


@dataclass(frozen=True)
class IntakeSettings:
    """How a batch of reports is turned into drafts."""

    # A batch of at least PARALLEL_MIN reports is rendered and proofread by one worker
    # process per CPU while this process stores them (pipeline/render/pool.py).
    parallel_render: bool = True


@dataclass(frozen=True)
class Settings:
    root: Path
    account: AccountSettings
    schedule: ScheduleSettings
    deadline: DeadlineSettings
    limits: Limits
    paths: Paths
    activity_types: Mapping[str, ActivityType]
    units: tuple[UnitSpec, ...]
    campaign: Campaign | None
    database_url: str
    wechat: WeChatSettings = field(default_factory=WeChatSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    scoring: ScoringSettings = field(default_factory=ScoringSettings)
    review: ReviewSettings = field(default_factory=ReviewSettings)
    reach: ReachSettings = field(default_factory=ReachSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    web: WebSettings = field(default_factory=WebSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    intake: IntakeSettings = field(default_factory=IntakeSettings)

    @property
    def tz(self) -> ZoneInfo:
        return self.account.timezone

    def activity_type(self, text: str) -> ActivityType | None:
        """Find an activity type by key or by its Chinese label."""
        value = text.strip()
        if value in self.activity_types:
            return self.activity_types[value]
        for kind in self.activity_types.values():
            if kind.label == value:
                return kind
        return None


DEFAULT_ACTIVITY_TYPES: dict[str, tuple[str, str]] = {
    "film": ("禁毒电影放映", "film.md.j2"),
    "lecture": ("禁毒讲座", "lecture.md.j2"),
    "exhibition": ("禁毒展览", "exhibition.md.j2"),
    "base_visit": ("参观教育基地", "base_visit.md.j2"),
    "training": ("业务培训", "training.md.j2"),
    "volunteer": ("志愿服务", "volunteer.md.j2"),
    "hardship_visit": ("走访慰问", "hardship_visit.md.j2"),
    "household_meeting": ("屋场会", "household_meeting.md.j2"),
    "quiz": ("知识竞答", "quiz.md.j2"),
    "parent_pledge": ("学生家长承诺书", "parent_pledge.md.j2"),
    "other": ("其他", "other.md.j2"),
}
