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
from .reader import (
    Reader,
    non_empty,
    non_negative,
    positive,
    report_unknown,
)
from .settings import (
    EMAIL_RE,
    AccountSettings,
    DatabaseSettings,
    DeadlineSettings,
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
    missing = workspace_problems(raw)
    if missing:
        raise ConfigError(missing, str(path))
    return parse_settings(raw, path.resolve().parent, str(path))


def workspace_problems(raw: Mapping[str, Any]) -> list[str]:
    """An empty or truncated file would run on built-in defaults: a workspace's config
    must at least name its account and its units."""
    problems = []
    account = raw.get("account")
    if not isinstance(account, dict) or "name" not in account:
        problems.append("account.name: is missing; a workspace names its WeChat account "
                        "([account] name = \"…\"). Is the file empty or cut short? "
                        "'pipeline init DIR' writes a complete one")
    if not raw.get("units"):
        problems.append("units: no [[units]] are listed; a workspace names the units that "
                        "report (name, level, parent)")
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
    report_unknown(top)
    if problems:
        raise ConfigError(problems, source)
    url = env.get("DATABASE_URL") or f"sqlite:///{paths.database}"
    return Settings(root=root, account=account, schedule=schedule, deadline=deadline,
                    limits=limits, paths=paths, activity_types=types, units=units,
                    campaign=campaign, database_url=url, wechat=wechat, smtp=smtp,
                    notify=notify, scoring=scoring, review=review, reach=reach, media=media,
                    web=web, database=database)


def _web(r: Reader) -> WebSettings:
    d = WebSettings()
    proxies = r.get("trusted_proxies", list, [])
    good: list[str] = []
    for i, item in enumerate(proxies):
        try:
            good.append(str(ipaddress.ip_network(item, strict=False)))
        except (TypeError, ValueError):
            r.problem(f"trusted_proxies[{i}]", f"{item!r} is not an IP address or network "
                      "like '127.0.0.1' or '10.0.0.0/8'")
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
        r.problem("timezone", f"unknown time zone {tz_name!r}; use a name like 'Asia/Shanghai'")
        tz = ZoneInfo("Asia/Shanghai")
    author = r.get("author", str, "",
                   lambda v: None if len(v) <= 16 else "must be at most 16 characters")
    result = AccountSettings(name=r.get("name", str, "公众号", non_empty), author=author,
                             timezone=tz, key=r.get("key", str, "default", non_empty))
    report_unknown(r)
    return result


def _clock_time(r: Reader, name: str, default: time) -> time:
    text = r.get(name, str, default.strftime("%H:%M"))
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text.strip())
    if match:
        return time(int(match[1]), int(match[2]))
    r.problem(name, f"expected a 24-hour time like \"20:00\", got {text!r}")
    return default


def _duration_minutes(r: Reader, name: str, default: int) -> int:
    """A duration like "2h", "90m", "1h30m" or "0" (off), in minutes."""
    text = r.get(name, str, f"{default}m").strip().lower()
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?|0", text)
    if match and text:
        return int(match[1] or 0) * 60 + int(match[2] or 0)
    r.problem(name, f'expected a duration like "2h", "90m" or "0" (off), got {text!r}')
    return default


def _schedule(r: Reader) -> ScheduleSettings:
    result = ScheduleSettings(
        push_time=_clock_time(r, "push_time", time(20, 0)),
        max_articles_per_push=r.get("max_articles_per_push", int, 8,
                                    lambda v: None if 1 <= v <= 8 else "must be 1 to 8 "
                                    "(WeChat allows at most 8 articles per push)"),
        sweep_minutes=r.get("sweep_minutes", int, 5, positive),
        lease_seconds=r.get("lease_seconds", int, 90, lambda v: None if 5 <= v <= 3600 else
                            "must be 5 to 3600 (seconds without a heartbeat before a standby "
                            "scheduler takes over)"),
        empty_warning_minutes=_duration_minutes(r, "empty_warning", 120),
        late_push=r.get("late_push", bool, False))
    report_unknown(r)
    return result


def _database(r: Reader) -> DatabaseSettings:
    d = DatabaseSettings()
    result = DatabaseSettings(
        pool_size=r.get("pool_size", int, d.pool_size,
                        lambda v: None if 1 <= v <= 100 else "must be 1 to 100"),
        max_overflow=r.get("max_overflow", int, d.max_overflow,
                           lambda v: None if 0 <= v <= 100 else "must be 0 to 100"),
        pool_timeout=r.get("pool_timeout", float, d.pool_timeout, _positive_float))
    report_unknown(r)
    return result


def _deadline(r: Reader) -> DeadlineSettings:
    result = DeadlineSettings(
        days=r.get("days", int, 2, non_negative),
        counting=r.get("counting", str, "calendar",
                       lambda v: None if v in ("calendar", "workdays")
                       else 'must be "calendar" or "workdays"'),
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
        default_cover=r.get("default_cover", str, d.default_cover, non_empty),
        connect_timeout=r.get("connect_timeout", float, d.connect_timeout, _positive_float),
        read_timeout=r.get("read_timeout", float, d.read_timeout, _positive_float),
        poll_budget=r.get("poll_budget", int, d.poll_budget,
                          lambda v: None if 1 <= v <= 100 else "must be 1 to 100"),
        settle_minutes=r.get("settle_minutes", int, d.settle_minutes, non_negative))
    report_unknown(r)
    return result


def _env_name(value: str) -> str | None:
    return None if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value) else (
        "must be the name of an environment variable (letters, digits and _)")


def _positive_float(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _smtp(r: Reader) -> SmtpSettings:
    d = SmtpSettings()
    if "password" in r.table:
        r.problem("password", "secrets never go in config.toml: put the password in an "
                  "environment variable and name it in smtp.password_env")
        r.seen.add("password")
    sender = r.get("sender", str, d.sender, non_empty)
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
    report_unknown(r)
    return result


def _addresses(r: Reader, name: str) -> tuple[str, ...]:
    values = r.get(name, list, [])
    good = []
    for i, value in enumerate(values):
        if isinstance(value, str) and EMAIL_RE.match(value.strip()):
            good.append(value.strip())
        else:
            r.problem(f"{name}[{i}]", f"{value!r} is not a valid email address")
    return tuple(good)


def _notify(r: Reader) -> NotifySettings:
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
        article_days=r.get("article_days", int, d.article_days,
                           lambda v: None if 1 <= v <= 30 else "must be 1 to 30 (WeChat keeps "
                           "a story's daily figures for 30 days)"),
        backfill_days=r.get("backfill_days", int, d.backfill_days,
                            lambda v: None if 1 <= v <= 60 else "must be 1 to 60"),
        retry_minutes=r.get("retry_minutes", int, d.retry_minutes, positive))
    report_unknown(r)
    return result


def _stages(r: Reader, raw: object) -> tuple[ReviewStage, ...]:
    if not isinstance(raw, list) or not raw:
        r.problem("stages", "expected one or more [[review.stages]] tables, each with a name "
                  "and the editors who may sign it")
        return ()
    stages: list[ReviewStage] = []
    for i, item in enumerate(raw):
        s = Reader(r.problems, f"{r.key('stages')}[{i}]", item if isinstance(item, dict) else {})
        name = s.get("name", str, "", non_empty).strip()
        if "name" not in s.table:
            s.problem("name", "is missing (the stage's name shown to people, like 初审)")
        editors = s.get("editors", list, [])
        if not all(isinstance(e, str) and e.strip() for e in editors):
            s.problem("editors", f"expected a list of editor names, got {editors!r}")
            editors = []
        report_unknown(s)
        if name and name in {x.name for x in stages}:
            s.problem("name", f"the stage {name!r} is listed twice")
        stages.append(ReviewStage(name, tuple(e.strip() for e in editors)))
    return tuple(stages)


def _media(r: Reader, root: Path, problems: list[str]) -> MediaSettings:
    """The workspace's outlet list: ``[[media.outlets]]`` plus the file named by
    ``media.file`` (default media.toml; a missing file is fine)."""
    name = r.get("file", str, MediaSettings.file, non_empty)
    outlets = read_outlets(r.get("outlets", list, []), "media.outlets", problems)
    path = root / name
    if path.is_file():
        try:
            raw = tomllib.loads(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            problems.append(f"{name}: not valid UTF-8 TOML: {exc}")
            raw = {}
        listed = raw.get("outlets", [])
        outlets += read_outlets(listed if isinstance(listed, list) else [listed],
                                f"{name}: outlets", problems)
        for key in raw:
            if key != "outlets":
                problems.append(f"{name}: {key}: unknown key (the file holds [[outlets]])")
    report_unknown(r)
    return MediaSettings(file=name, outlets=tuple(outlets))


def read_outlets(items: list[Any], where: str, problems: list[str]) -> list[OutletSpec]:
    """Outlet entries ``{name, level, domains = [...], aliases = [...]}``, each problem
    reported with its place."""
    found = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{at}: expected a table with name, level and domains")
            continue
        name, level = item.get("name"), item.get("level")
        domains, aliases = item.get("domains", []), item.get("aliases", [])
        bad = [k for k in item if k not in ("name", "level", "domains", "aliases")]
        problems += [f"{at}.{k}: unknown key" for k in bad]
        key = parse_media_level(level) if isinstance(level, str) else None
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{at}.name: must be the outlet's name, got {name!r}")
        elif key is None:
            problems.append(f"{at}.level: {level!r} is not one of national (中央/国家), "
                            "provincial (省), city (市), county (区县), new_media (新媒体/自媒体)")
        elif not _texts(domains) or not _texts(aliases):
            problems.append(f"{at}: domains and aliases must be lists of text")
        else:
            found.append(OutletSpec(name.strip(), key,
                                    tuple(d.strip().lower().removeprefix("www.")
                                          for d in domains),
                                    tuple(a.strip() for a in aliases)))
    return found


def _texts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)
