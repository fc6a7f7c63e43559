"""Typed settings loaded once from ``config.toml``.

``load_settings(path)`` reads the file, checks every key, collects every
problem and raises one ``ConfigError`` naming them all, before anything touches
the database. Secrets never live in the file: the file only names the
environment variables that hold them.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .domain import Level, parse_level
from .errors import ConfigError

T = TypeVar("T")
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


class _Reader:
    """Pulls typed values out of a TOML table, collecting problems instead of raising."""

    def __init__(self, problems: list[str], path: str, table: Mapping[str, Any]) -> None:
        self.problems = problems
        self.path = path
        self.table = table
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def problem(self, name: str, message: str) -> None:
        self.problems.append(f"{self.key(name)}: {message}")

    def get(self, name: str, kind: type[T], default: T, check: Callable[[T], str | None]
            | None = None) -> T:
        self.seen.add(name)
        if name not in self.table:
            return default
        value = self.table[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.problem(name, f"expected {_kind_name(kind)}, got {value!r}")
            return default
        message = check(value) if check else None
        if message:
            self.problem(name, f"{message}, got {value!r}")
            return default
        return value

    def sub(self, name: str) -> _Reader:
        self.seen.add(name)
        value = self.table.get(name, {})
        if not isinstance(value, dict):
            self.problem(name, f"expected a table, got {value!r}")
            value = {}
        return _Reader(self.problems, self.key(name), value)

    def unknown(self) -> list[str]:
        return [self.key(k) for k in self.table if k not in self.seen]


def _kind_name(kind: type) -> str:
    return {str: "a string", int: "a whole number", float: "a number", bool: "true or false",
            list: "a list", dict: "a table",
            date: "a date like 2026-06-01"}.get(kind, kind.__name__)


def _positive(value: int) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _non_negative(value: int) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def _non_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def load_settings(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Read and validate ``config.toml``.

    Raises:
        ConfigError: listing every problem found, with its key.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError([f"file not found; run 'pipeline init {path.parent}' to create a "
                           "workspace"], str(path)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not valid UTF-8 at byte {exc.start}"], str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"not valid TOML: {exc}"], str(path)) from exc
    for key, value in (overrides or {}).items():
        section, _, name = key.rpartition(".")
        target = raw.setdefault(section, {}) if section else raw
        target[name] = value
    return parse_settings(raw, path.resolve().parent, str(path))


def parse_settings(raw: Mapping[str, Any], root: Path, source: str = "config.toml",
                   environ: Mapping[str, str] | None = None) -> Settings:
    """Validate an already-parsed TOML document into ``Settings``.

    Raises:
        ConfigError: listing every problem found, with its key.
    """
    env = os.environ if environ is None else environ
    problems: list[str] = []
    top = _Reader(problems, "", raw)
    account = _account(top.sub("account"))
    schedule = _schedule(top.sub("schedule"))
    deadline = _deadline(top.sub("deadline"))
    limits = _limits(top.sub("limits"))
    paths = _paths(top.sub("paths"), root)
    types = _activity_types(top, problems)
    units = _units(top, problems)
    campaign = _campaign(top, problems, types)
    wechat = _wechat(top.sub("wechat"))
    smtp = _smtp(top.sub("smtp"))
    notify = _notify(top.sub("notify"))
    scoring = _scoring(top.sub("scoring"))
    _report_unknown(top)
    if problems:
        raise ConfigError(problems, source)
    url = env.get("DATABASE_URL") or f"sqlite:///{paths.database}"
    return Settings(root=root, account=account, schedule=schedule, deadline=deadline,
                    limits=limits, paths=paths, activity_types=types, units=units,
                    campaign=campaign, database_url=url, wechat=wechat, smtp=smtp,
                    notify=notify, scoring=scoring)


def _account(r: _Reader) -> AccountSettings:
    tz_name = r.get("timezone", str, "Asia/Shanghai")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        r.problem("timezone", f"unknown time zone {tz_name!r}; use a name like 'Asia/Shanghai'")
        tz = ZoneInfo("Asia/Shanghai")
    author = r.get("author", str, "",
                   lambda v: None if len(v) <= 16 else "must be at most 16 characters")
    result = AccountSettings(name=r.get("name", str, "公众号", _non_empty), author=author,
                             timezone=tz, key=r.get("key", str, "default", _non_empty))
    _report_unknown(r)
    return result


def _clock_time(r: _Reader, name: str, default: time) -> time:
    text = r.get(name, str, default.strftime("%H:%M"))
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text.strip())
    if match:
        return time(int(match[1]), int(match[2]))
    r.problem(name, f"expected a 24-hour time like \"20:00\", got {text!r}")
    return default


def _schedule(r: _Reader) -> ScheduleSettings:
    result = ScheduleSettings(
        push_time=_clock_time(r, "push_time", time(20, 0)),
        max_articles_per_push=r.get("max_articles_per_push", int, 8,
                                    lambda v: None if 1 <= v <= 8 else "must be 1 to 8 "
                                    "(WeChat allows at most 8 articles per push)"),
        sweep_minutes=r.get("sweep_minutes", int, 5, _positive))
    _report_unknown(r)
    return result


def _deadline(r: _Reader) -> DeadlineSettings:
    result = DeadlineSettings(
        days=r.get("days", int, 2, _non_negative),
        counting=r.get("counting", str, "calendar",
                       lambda v: None if v in ("calendar", "workdays")
                       else 'must be "calendar" or "workdays"'))
    _report_unknown(r)
    return result


def _limits(r: _Reader) -> Limits:
    defaults = Limits()
    values = {name: r.get(name, int, getattr(defaults, name), _positive)
              for name in defaults.__dataclass_fields__}
    _report_unknown(r)
    return Limits(**values)


def _paths(r: _Reader, root: Path) -> Paths:
    def resolve(name: str, default: str) -> Path:
        return (root / r.get(name, str, default, _non_empty)).resolve()

    result = Paths(templates=resolve("templates", "templates"), drafts=resolve("drafts", "drafts"),
                   published=resolve("published", "published"),
                   database=resolve("database", "pipeline.db"))
    _report_unknown(r)
    return result


def _wechat(r: _Reader) -> WeChatSettings:
    d = WeChatSettings()
    mode = r.get("mode", str, d.mode, lambda v: None if v in (
        "folder", "masssend", "freepublish", "draftbox")
        else 'must be "folder", "masssend", "freepublish" or "draftbox"')
    base_url = r.get("base_url", str, d.base_url, lambda v: None if re.match(
        r"^https?://[^/\s]+", v) else "must be an http(s) URL like https://api.weixin.qq.com")
    appid = r.get("appid", str, "")
    if mode != "folder" and not appid.strip():
        r.problem("appid", f'is required when mode is "{mode}" (the account\'s AppID)')
    if "secret" in r.table:
        r.problem("secret", "secrets never go in config.toml: put the AppSecret in an "
                  "environment variable and name it in wechat.secret_env")
        r.seen.add("secret")
    result = WeChatSettings(
        mode=mode, appid=appid.strip(), base_url=base_url.rstrip("/"),
        secret_env=r.get("secret_env", str, d.secret_env, _env_name),
        push_token_env=r.get("push_token_env", str, d.push_token_env, _env_name),
        default_cover=r.get("default_cover", str, d.default_cover, _non_empty),
        connect_timeout=r.get("connect_timeout", float, d.connect_timeout, _positive_float),
        read_timeout=r.get("read_timeout", float, d.read_timeout, _positive_float),
        poll_budget=r.get("poll_budget", int, d.poll_budget,
                          lambda v: None if 1 <= v <= 100 else "must be 1 to 100"),
        settle_minutes=r.get("settle_minutes", int, d.settle_minutes, _non_negative))
    _report_unknown(r)
    return result


def _env_name(value: str) -> str | None:
    return None if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value) else (
        "must be the name of an environment variable (letters, digits and _)")


def _positive_float(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _smtp(r: _Reader) -> SmtpSettings:
    d = SmtpSettings()
    if "password" in r.table:
        r.problem("password", "secrets never go in config.toml: put the password in an "
                  "environment variable and name it in smtp.password_env")
        r.seen.add("password")
    sender = r.get("sender", str, d.sender, _non_empty)
    if not EMAIL_RE.match(sender.split("<")[-1].rstrip(">").strip()):
        r.problem("sender", f"{sender!r} is not a valid email address")
    result = SmtpSettings(
        host=r.get("host", str, d.host).strip(),
        port=r.get("port", int, d.port, lambda v: None if 0 < v < 65536 else "must be 1-65535"),
        security=r.get("security", str, d.security, lambda v: None if v in (
            "none", "starttls", "tls") else 'must be "none", "starttls" or "tls"'),
        username=r.get("username", str, d.username),
        password_env=r.get("password_env", str, d.password_env, _env_name),
        sender=sender, timeout=r.get("timeout", float, d.timeout, _positive_float))
    _report_unknown(r)
    return result


def _addresses(r: _Reader, name: str) -> tuple[str, ...]:
    values = r.get(name, list, [])
    good = []
    for i, value in enumerate(values):
        if isinstance(value, str) and EMAIL_RE.match(value.strip()):
            good.append(value.strip())
        else:
            r.problem(f"{name}[{i}]", f"{value!r} is not a valid email address")
    return tuple(good)


def _notify(r: _Reader) -> NotifySettings:
    d = NotifySettings()
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    weekday = r.get("bulletin_day", str, "monday", lambda v: None if v.lower() in days
                    else "must be a weekday name like monday")
    result = NotifySettings(
        editors=_addresses(r, "editors"), leaders=_addresses(r, "leaders"),
        base_url=r.get("base_url", str, d.base_url, lambda v: None if re.match(
            r"^https?://", v) else "must be an http(s) URL").rstrip("/"),
        digest_time=_clock_time(r, "digest_time", d.digest_time),
        bulletin_weekday=days.index(weekday.lower()) if weekday.lower() in days else 0,
        bulletin_time=_clock_time(r, "bulletin_time", d.bulletin_time),
        digest_article=r.get("digest_article", bool, d.digest_article))
    _report_unknown(r)
    return result


def _scoring(r: _Reader) -> ScoringSettings:
    d = ScoringSettings()
    values = {name: r.get(name, float, getattr(d, name)) for name in d.__dataclass_fields__}
    _report_unknown(r)
    return ScoringSettings(**values)


def _report_unknown(r: _Reader) -> None:
    # Unknown keys inside a known table are almost always typos: treat them as errors.
    for key in r.unknown():
        r.problems.append(f"{key}: unknown key")


def _activity_types(top: _Reader, problems: list[str]) -> dict[str, ActivityType]:
    section = top.sub("activity_types")
    if not section.table:
        return {k: ActivityType(k, label, tpl)
                for k, (label, tpl) in DEFAULT_ACTIVITY_TYPES.items()}
    types: dict[str, ActivityType] = {}
    for key in section.table:
        entry = section.sub(key)
        if not re.fullmatch(r"[a-z][a-z0-9_]*", key):
            problems.append(f"activity_types.{key}: the key must be lower-case letters, digits "
                            "and _ (for example base_visit)")
        label = entry.get("label", str, "", _non_empty)
        template = entry.get("template", str, f"{key}.md.j2", _non_empty)
        if "label" not in entry.table:
            entry.problem("label", "is missing (the Chinese name shown to people)")
        _report_unknown(entry)
        types[key] = ActivityType(key, label, template)
    labels = [t.label for t in types.values()]
    for label in {x for x in labels if labels.count(x) > 1}:
        problems.append(f"activity_types: the label {label!r} is used twice")
    return types


def _units(top: _Reader, problems: list[str]) -> tuple[UnitSpec, ...]:
    top.seen.add("units")
    raw = top.table.get("units", [])
    if not isinstance(raw, list):
        problems.append("units: expected a list of [[units]] tables")
        return ()
    units: list[UnitSpec] = []
    for i, item in enumerate(raw):
        r = _Reader(problems, f"units[{i}]", item if isinstance(item, dict) else {})
        name = r.get("name", str, "", _non_empty)
        if "name" not in r.table:
            r.problem("name", "is missing")
        level_text = r.get("level", str, "")
        level = parse_level(level_text)
        if level is None:
            r.problem("level",
                      f"expected district, street, branch or community, got {level_text!r}")
        email = r.get("email", str, "") or None
        if email and not EMAIL_RE.match(email):
            r.problem("email", f"{email!r} is not a valid email address")
        parent = r.get("parent", str, "") or None
        _report_unknown(r)
        if name and level:
            units.append(UnitSpec(name.strip(), level, parent, email))
    problems.extend(check_unit_tree(units, "units"))
    return tuple(units)


def check_unit_tree(units: list[UnitSpec], where: str) -> list[str]:
    """Check names are unique and every parent exists at the right level."""
    problems: list[str] = []
    by_name: dict[str, UnitSpec] = {}
    for unit in units:
        if unit.name in by_name:
            problems.append(f"{where}: the unit {unit.name!r} is listed twice")
        by_name[unit.name] = unit
    for unit in units:
        message = parent_problem(unit.level, by_name.get(unit.parent) if unit.parent else None,
                                 unit.parent)
        if message:
            problems.append(f"{where}: unit {unit.name!r}: {message}")
    return problems


def parent_problem(level: Level, parent: UnitSpec | None, parent_name: str | None) -> str | None:
    """Why ``parent`` cannot be the parent of a unit at ``level``, or None if it can."""
    wanted = {Level.DISTRICT: None, Level.STREET: Level.DISTRICT, Level.BRANCH: Level.DISTRICT,
              Level.COMMUNITY: Level.STREET}[level]
    if wanted is None:
        return f"a district has no parent, got {parent_name!r}" if parent_name else None
    if parent_name is None:
        return f"a {level.value} unit needs a parent ({wanted.value})"
    if parent is None:
        return f"the parent {parent_name!r} is not a known unit"
    if parent.level != wanted:
        return (f"the parent of a {level.value} unit must be a {wanted.value}, "
                f"but {parent_name!r} is a {parent.level.value}")
    return None


def _campaign(top: _Reader, problems: list[str], types: Mapping[str, ActivityType]
              ) -> Campaign | None:
    if "campaign" not in top.table:
        top.seen.add("campaign")
        return None
    r = top.sub("campaign")
    name = r.get("name", str, "", _non_empty)
    start = r.get("start", date, date(1970, 1, 1))
    end = r.get("end", date, date(1970, 1, 1))
    for key in ("start", "end"):
        if key not in r.table:
            r.problem(key, "is missing (a date like 2026-06-01)")
    if start > end:
        r.problem("end", f"must not be before campaign.start ({start})")
    targets = _targets(r.sub("targets"), types)
    _report_unknown(r)
    return Campaign(name, start, end, targets)


def _targets(r: _Reader, types: Mapping[str, ActivityType]) -> dict[Level, dict[str, Target]]:
    result: dict[Level, dict[str, Target]] = {}
    for level_key in list(r.table):
        level = parse_level(level_key)
        sub = r.sub(level_key)
        if level is None:
            r.problem(level_key, "expected a level: district, street, branch or community")
            continue
        result[level] = {}
        for type_key, value in sub.table.items():
            sub.seen.add(type_key)
            kind = types.get(type_key) or next(
                (t for t in types.values() if t.label == type_key), None)
            target = parse_target(value)
            if kind is None:
                sub.problem(type_key, "is not a configured activity type")
            elif target is None:
                sub.problem(type_key, f'expected a target like 2, "1-2" or ">=2", got {value!r}')
            else:
                result[level][kind.key] = target
    return result


def parse_target(value: object) -> Target | None:
    """Parse a campaign target: 2, "2", "1-2" or ">=2"."""
    if isinstance(value, int) and not isinstance(value, bool):
        return Target(value, value) if value >= 0 else None
    if not isinstance(value, str):
        return None
    text = value.replace(" ", "").replace("≥", ">=").replace("～", "-").replace("~", "-")
    if m := re.fullmatch(r">=(\d+)", text):
        return Target(int(m[1]), None)
    if m := re.fullmatch(r"(\d+)(?:-(\d+))?", text):
        low, high = int(m[1]), int(m[2] or m[1])
        return Target(low, high) if low <= high else None
    return None
