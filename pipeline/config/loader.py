"""``load_settings``: read, validate every key, report every problem at once."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import ConfigError
from ..messages import Coded
from .reader import (
    Reader,
    non_empty,
    non_negative,
    one_of,
    positive,
    report_unknown,
    within,
)
from .settings import (
    EMAIL_RE,
    AccountSettings,
    DatabaseSettings,
    DeadlineSettings,
    IntakeSettings,
    Limits,
    MediaSettings,
    NotifySettings,
    OutletSpec,
    Paths,
    ReachSettings,
    ReviewSettings,
    ReviewStage,
    ScheduleSettings,
    ScoringSettings,
    Settings,
    SmtpSettings,
    WebSettings,
    WeChatSettings,
    parse_media_level,
)
from .tree import read_activity_types, read_campaign, read_units


def load_settings(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Read and validate ``config.toml``.

    Raises:
        ConfigError: listing every problem found, with its key.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError([Coded("config.file_missing", folder=str(path.parent))],
                          str(path)) from exc
    raw, problem = read_toml(data, path.name)
    if problem is not None:
        raise ConfigError([problem], str(path))
    for key, value in (overrides or {}).items():
        section, _, name = key.rpartition(".")
        target = raw.setdefault(section, {}) if section else raw
        target[name] = value
    missing = workspace_problems(raw)
    if missing:
        raise ConfigError(missing, str(path))
    return parse_settings(raw, path.resolve().parent, str(path))


def read_toml(data: bytes, file: str) -> tuple[dict[str, Any], Coded | None]:
    """A TOML document, or {} and the problem (file, line and column) that stops it."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return {}, Coded("config.not_utf8", file=file, byte=exc.start)
    try:
        return tomllib.loads(text), None
    except tomllib.TOMLDecodeError as exc:
        line, column, detail = _toml_place(str(exc), text)
        content = (text.split("\n")[line - 1:line] or [""])[0].strip()[:80]
        return {}, Coded("config.not_toml", file=file, line=line, column=column,
                         content=content, detail=detail)


def _toml_place(message: str, text: str) -> tuple[int, int, str]:
    """Line, column and the reason of a tomllib message ("… (at line 3, column 9)")."""
    found = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if found:
        return int(found[1]), int(found[2]), message[:found.start()]
    lines = text.split("\n")  # "(at end of document)"
    return len(lines), len(lines[-1]) + 1, re.sub(r"\s*\(at end of document\)$", "", message)


def workspace_problems(raw: Mapping[str, Any]) -> list[str]:
    """An empty or truncated file would run on built-in defaults: a workspace's config
    must at least name its account and its units."""
    problems: list[str] = []
    account = raw.get("account")
    if not isinstance(account, dict) or "name" not in account:
        problems.append(Coded("config.no_account_name"))
    if not raw.get("units"):
        problems.append(Coded("config.no_units"))
    return problems


def parse_settings(raw: Mapping[str, Any], root: Path, source: str = "config.toml",
                   environ: Mapping[str, str] | None = None) -> Settings:
    """Validate an already-parsed TOML document into ``Settings``.

    Raises:
        ConfigError: listing every problem found, with its key.
    """
    env = os.environ if environ is None else environ
    problems: list[str] = []
    top = Reader(problems, "", raw)
    account = _account(top.sub("account"))
    schedule = _schedule(top.sub("schedule"))
    deadline = _deadline(top.sub("deadline"))
    limits = _limits(top.sub("limits"))
    paths = _paths(top.sub("paths"), root)
    types = read_activity_types(top, problems)
    units = read_units(top, problems)
    campaign = read_campaign(top, problems, types, units)
    wechat = _wechat(top.sub("wechat"))
    smtp = _smtp(top.sub("smtp"))
    notify = _notify(top.sub("notify"))
    scoring = _scoring(top.sub("scoring"))
    review = _review(top.sub("review"))
    reach = _reach(top.sub("reach"))
    media = _media(top.sub("media"), root, problems)
    web = _web(top.sub("web"))
    database = _database(top.sub("database"))
    intake = _intake(top.sub("intake"))
    report_unknown(top)
    if problems:
        raise ConfigError(problems, source)
    url = env.get("DATABASE_URL") or f"sqlite:///{paths.database}"
    return Settings(root=root, account=account, schedule=schedule, deadline=deadline,
                    limits=limits, paths=paths, activity_types=types, units=units,
                    campaign=campaign, database_url=url, wechat=wechat, smtp=smtp,
                    notify=notify, scoring=scoring, review=review, reach=reach, media=media,
                    web=web, database=database, intake=intake)


def _web(r: Reader) -> WebSettings:
    d = WebSettings()
    proxies = r.get("trusted_proxies", list, [])
    good: list[str] = []
    for i, item in enumerate(proxies):
        try:
            good.append(str(ipaddress.ip_network(item, strict=False)))
        except (TypeError, ValueError):
            r.problem(f"trusted_proxies[{i}]", "config.not_network", value=item)
    result = WebSettings(trusted_proxies=tuple(good),
                         session_hours=r.get("session_hours", int, d.session_hours, positive),
                         idle_minutes=r.get("idle_minutes", int, d.idle_minutes, positive),
                         header_timeout=r.get("header_timeout", int, d.header_timeout, positive),
                         keepalive_timeout=r.get("keepalive_timeout", int, d.keepalive_timeout,
                                                 positive))
    report_unknown(r)
    return result


def _account(r: Reader) -> AccountSettings:
    tz_name = r.get("timezone", str, "Asia/Shanghai")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        r.problem("timezone", "config.timezone", value=tz_name)
        tz = ZoneInfo("Asia/Shanghai")
    author = r.get("author", str, "", lambda v: None if len(v) <= 16
                   else Coded("config.must_max_chars", limit=16))
    result = AccountSettings(name=r.get("name", str, "公众号", non_empty), author=author,
                             timezone=tz, key=r.get("key", str, "default", non_empty))
    report_unknown(r)
    return result


def _clock_time(r: Reader, name: str, default: time) -> time:
    text = r.get(name, str, default.strftime("%H:%M"))
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text.strip())
    if match:
        return time(int(match[1]), int(match[2]))
    r.problem(name, "config.clock_time", value=text)
    return default


def _duration_minutes(r: Reader, name: str, default: int) -> int:
    """A duration like "2h", "90m", "1h30m" or "0" (off), in minutes."""
    text = r.get(name, str, f"{default}m").strip().lower()
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?|0", text)
    if match and text:
        return int(match[1] or 0) * 60 + int(match[2] or 0)
    r.problem(name, "config.duration", value=text)
    return default


def _schedule(r: Reader) -> ScheduleSettings:
    result = ScheduleSettings(
        push_time=_clock_time(r, "push_time", time(20, 0)),
        max_articles_per_push=r.get("max_articles_per_push", int, 8, lambda v: None
                                    if 1 <= v <= 8 else Coded("config.must_articles")),
        sweep_minutes=r.get("sweep_minutes", int, 5, positive),
        lease_seconds=r.get("lease_seconds", int, 90, lambda v: None if 5 <= v <= 3600
                            else Coded("config.must_lease")),
        empty_warning_minutes=_duration_minutes(r, "empty_warning", 120),
        late_push=r.get("late_push", bool, False))
    report_unknown(r)
    return result


def _database(r: Reader) -> DatabaseSettings:
    d = DatabaseSettings()
    result = DatabaseSettings(
        pool_size=r.get("pool_size", int, d.pool_size, within(1, 100)),
        max_overflow=r.get("max_overflow", int, d.max_overflow, within(0, 100)),
        pool_timeout=r.get("pool_timeout", float, d.pool_timeout, positive))
    report_unknown(r)
    return result


def _intake(r: Reader) -> IntakeSettings:
    result = IntakeSettings(parallel_render=r.get("parallel_render", bool,
                                                  IntakeSettings().parallel_render))
    report_unknown(r)
    return result


def _deadline(r: Reader) -> DeadlineSettings:
    result = DeadlineSettings(
        days=r.get("days", int, 2, non_negative),
        counting=r.get("counting", str, "calendar", one_of("calendar", "workdays")),
        report_hours=r.get("report_hours", int, 24, positive))
    report_unknown(r)
    return result


def _limits(r: Reader) -> Limits:
    defaults = Limits()
    values = {name: r.get(name, int, getattr(defaults, name), positive)
              for name in defaults.__dataclass_fields__}
    report_unknown(r)
    return Limits(**values)


def _paths(r: Reader, root: Path) -> Paths:
    def resolve(name: str, default: str) -> Path:
        return (root / r.get(name, str, default, non_empty)).resolve()

    result = Paths(templates=resolve("templates", "templates"), drafts=resolve("drafts", "drafts"),
                   published=resolve("published", "published"),
                   database=resolve("database", "pipeline.db"),
                   proofread=resolve("proofread", "proofread"))
    report_unknown(r)
    return result


def _wechat(r: Reader) -> WeChatSettings:
    d = WeChatSettings()
    mode = r.get("mode", str, d.mode, one_of("folder", "masssend", "freepublish", "draftbox"))
    base_url = r.get("base_url", str, d.base_url, lambda v: None if re.match(
        r"^https?://[^/\s]+", v) else Coded("config.must_url",
                                          example="https://api.weixin.qq.com"))
    appid = r.get("appid", str, "")
    if mode != "folder" and not appid.strip():
        r.problem("appid", "config.appid_required", mode=mode)
    if "secret" in r.table:
        r.problem("secret", "config.wechat_secret")
        r.seen.add("secret")
    result = WeChatSettings(
        mode=mode, appid=appid.strip(), base_url=base_url.rstrip("/"),
        secret_env=r.get("secret_env", str, d.secret_env, _env_name),
        push_token_env=r.get("push_token_env", str, d.push_token_env, _env_name),
        default_cover=r.get("default_cover", str, d.default_cover, non_empty),
        connect_timeout=r.get("connect_timeout", float, d.connect_timeout, positive),
        read_timeout=r.get("read_timeout", float, d.read_timeout, positive),
        poll_budget=r.get("poll_budget", int, d.poll_budget, within(1, 100)),
        settle_minutes=r.get("settle_minutes", int, d.settle_minutes, non_negative))
    report_unknown(r)
    return result


def _env_name(value: str) -> Coded | None:
    return None if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value) else (
        Coded("config.must_env_name"))


def _smtp(r: Reader) -> SmtpSettings:
    d = SmtpSettings()
    if "password" in r.table:
        r.problem("password", "config.smtp_password")
        r.seen.add("password")
    sender = r.get("sender", str, d.sender, non_empty)
    if not EMAIL_RE.match(sender.split("<")[-1].rstrip(">").strip()):
        r.problem("sender", "config.not_email", value=sender)
    result = SmtpSettings(
        host=r.get("host", str, d.host).strip(),
        port=r.get("port", int, d.port, within(1, 65535)),
        security=r.get("security", str, d.security, one_of("none", "starttls", "tls")),
        username=r.get("username", str, d.username),
        password_env=r.get("password_env", str, d.password_env, _env_name),
        sender=sender, timeout=r.get("timeout", float, d.timeout, positive))
    report_unknown(r)
    return result


def _addresses(r: Reader, name: str) -> tuple[str, ...]:
    values = r.get(name, list, [])
    good = []
    for i, value in enumerate(values):
        if isinstance(value, str) and EMAIL_RE.match(value.strip()):
            good.append(value.strip())
        else:
            r.problem(f"{name}[{i}]", "config.not_email", value=value)
    return tuple(good)


def _notify(r: Reader) -> NotifySettings:
    d = NotifySettings()
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    weekday = r.get("bulletin_day", str, "monday", lambda v: None if v.lower() in days
                    else Coded("config.must_weekday"))
    result = NotifySettings(
        editors=_addresses(r, "editors"), leaders=_addresses(r, "leaders"),
        base_url=r.get("base_url", str, d.base_url, lambda v: None if re.match(
            r"^https?://", v) else Coded("config.must_url", example="https://desk.example.cn")
                       ).rstrip("/"),
        digest_time=_clock_time(r, "digest_time", d.digest_time),
        bulletin_weekday=days.index(weekday.lower()) if weekday.lower() in days else 0,
        bulletin_time=_clock_time(r, "bulletin_time", d.bulletin_time),
        digest_article=r.get("digest_article", bool, d.digest_article))
    report_unknown(r)
    return result


def _scoring(r: Reader) -> ScoringSettings:
    d = ScoringSettings()
    values = {name: r.get(name, float, getattr(d, name)) for name in d.__dataclass_fields__}
    report_unknown(r)
    return ScoringSettings(**values)


def _review(r: Reader) -> ReviewSettings:
    d = ReviewSettings()
    r.seen.add("stages")
    raw = r.table.get("stages")
    stages = d.stages if raw is None else _stages(r, raw)
    result = ReviewSettings(stages=stages or d.stages,
                            separate_people=r.get("separate_people", bool, d.separate_people),
                            edit_resets=r.get("edit_resets", bool, d.edit_resets))
    report_unknown(r)
    return result


def _reach(r: Reader) -> ReachSettings:
    d = ReachSettings()
    result = ReachSettings(
        enabled=r.get("enabled", bool, d.enabled),
        fetch_after=_clock_time(r, "fetch_after", d.fetch_after),
        max_calls=r.get("max_calls", int, d.max_calls, positive),
        article_days=r.get("article_days", int, d.article_days, lambda v: None
                           if 1 <= v <= 30 else Coded("config.must_article_days")),
        backfill_days=r.get("backfill_days", int, d.backfill_days, within(1, 60)),
        retry_minutes=r.get("retry_minutes", int, d.retry_minutes, positive))
    report_unknown(r)
    return result


def _stages(r: Reader, raw: object) -> tuple[ReviewStage, ...]:
    if not isinstance(raw, list) or not raw:
        r.problem("stages", "config.no_stages")
        return ()
    stages: list[ReviewStage] = []
    for i, item in enumerate(raw):
        s = Reader(r.problems, f"{r.key('stages')}[{i}]", item if isinstance(item, dict) else {})
        name = s.get("name", str, "", non_empty).strip()
        if "name" not in s.table:
            s.problem("name", "config.missing_stage_name")
        editors = s.get("editors", list, [])
        if not all(isinstance(e, str) and e.strip() for e in editors):
            s.problem("editors", "config.not_names", value=editors)
            editors = []
        report_unknown(s)
        if name and name in {x.name for x in stages}:
            s.problem("name", "config.stage_twice", name=name)
        stages.append(ReviewStage(name, tuple(e.strip() for e in editors)))
    return tuple(stages)


def _media(r: Reader, root: Path, problems: list[str]) -> MediaSettings:
    """The workspace's outlet list: ``[[media.outlets]]`` plus the file named by
    ``media.file`` (default media.toml; a missing file is fine)."""
    name = r.get("file", str, MediaSettings.file, non_empty)
    outlets = read_outlets(r.get("outlets", list, []), "media.outlets", problems)
    path = root / name
    if path.is_file():
        raw, problem = read_toml(path.read_bytes(), name)
        if problem is not None:
            problems.append(problem)
        listed = raw.get("outlets", [])
        outlets += read_outlets(listed if isinstance(listed, list) else [listed],
                                f"{name}: outlets", problems)
        for key in raw:
            if key != "outlets":
                problems.append(Coded("config.media_unknown_key", file=name, key=key))
    report_unknown(r)
    return MediaSettings(file=name, outlets=tuple(outlets))


def read_outlets(items: list[Any], where: str, problems: list[str]) -> list[OutletSpec]:
    """Outlet entries ``{name, level, domains = [...], aliases = [...]}``, each problem
    reported with its place."""
    found = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            problems.append(Coded("config.outlet_not_table", key=at))
            continue
        name, level = item.get("name"), item.get("level")
        domains, aliases = item.get("domains", []), item.get("aliases", [])
        bad = [k for k in item if k not in ("name", "level", "domains", "aliases")]
        problems += [Coded("config.unknown_key", key=f"{at}.{k}") for k in bad]
        key = parse_media_level(level) if isinstance(level, str) else None
        if not isinstance(name, str) or not name.strip():
            problems.append(Coded("config.outlet_name", key=f"{at}.name", value=name))
        elif key is None:
            problems.append(Coded("config.outlet_level", key=f"{at}.level", value=level))
        elif not _texts(domains) or not _texts(aliases):
            problems.append(Coded("config.outlet_lists", key=at))
        else:
            found.append(OutletSpec(name.strip(), key,
                                    tuple(d.strip().lower().removeprefix("www.")
                                          for d in domains),
                                    tuple(a.strip() for a in aliases)))
    return found


def _texts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)
