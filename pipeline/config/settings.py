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


@dataclass(frozen=True)
class DeadlineSettings:
    days: int = 2                        # a story goes out within N days of its activity
    counting: str = "calendar"           # "calendar" or "workdays" (official calendar)


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


@dataclass(frozen=True)
class Campaign:
    name: str
    start: date
    end: date
    targets: Mapping[Level, Mapping[str, Target]] = field(default_factory=dict)


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
    "other": ("其他", "other.md.j2"),
}
