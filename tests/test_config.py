"""config.toml: every bad key named at once, defaults, the bundled example loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import Target, load_settings, parse_settings, parse_target
from pipeline.domain import Level
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_bundled_config_loads_with_units_and_campaign() -> None:
    settings = load_settings(ROOT / "config.toml")
    names = {u.name for u in settings.units}
    assert {"XX新区", "麓谷街道", "白箬铺镇", "洋湖国际社区", "志愿者分会"} <= names
    assert settings.campaign is not None
    street = settings.campaign.targets[Level.STREET]
    assert street["base_visit"] == Target(2, None)
    assert street["film"] == Target(1, 2)
    assert settings.schedule.max_articles_per_push == 8
    assert settings.activity_type("禁毒讲座") is settings.activity_types["lecture"]


def test_skeleton_config_and_templates_match_the_workspace() -> None:
    skeleton = ROOT / "pipeline" / "skeleton"
    assert (skeleton / "config.toml").read_bytes() == (ROOT / "config.toml").read_bytes()
    workspace = sorted(p.relative_to(ROOT / "templates")
                       for p in (ROOT / "templates").rglob("*") if p.is_file())
    packaged = sorted(p.relative_to(skeleton / "templates")
                      for p in (skeleton / "templates").rglob("*") if p.is_file())
    assert workspace == packaged
    for name in workspace:
        assert (skeleton / "templates" / name).read_bytes() == \
            (ROOT / "templates" / name).read_bytes(), f"skeleton copy of {name} differs"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    raw = {
        "account": {"timezone": "Mars/Olympus", "author": "一" * 17},
        "schedule": {"push_time": "25:00", "max_articles_per_push": 9, "sweep": 3},
        "deadline": {"days": -1, "counting": "weekdays"},
        "units": [{"name": "A街道", "level": "street", "parent": "nowhere",
                   "email": "not-an-address"}],
        "campaign": {"name": "x", "start": "June", "targets": {"street": {"film": "two"}}},
        "shedule": {},
    }
    with pytest.raises(ConfigError) as info:
        parse_settings(raw, tmp_path, environ={})
    text = str(info.value)
    for key in ("account.timezone", "account.author", "schedule.push_time",
                "schedule.max_articles_per_push", "schedule.sweep: unknown key",
                "deadline.days", "deadline.counting", "units[0].email",
                "'nowhere' is not a known unit", "campaign.start",
                "campaign.targets.street.film", "shedule: unknown key"):
        assert key in text, key
    assert "'Mars/Olympus'" in text and "'25:00'" in text


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[account\nname = 1", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path)


def test_defaults_and_database_url_from_environment(tmp_path: Path) -> None:
    settings = parse_settings({}, tmp_path, environ={"DATABASE_URL": "postgresql://x/y"})
    assert settings.database_url == "postgresql://x/y"
    assert settings.schedule.push_time.hour == 20
    assert settings.deadline.days == 2 and settings.deadline.counting == "calendar"
    assert len(settings.activity_types) == 11  # 学生家长承诺书 added by issue 10
    default = parse_settings({}, tmp_path, environ={})
    assert default.database_url == f"sqlite:///{tmp_path / 'pipeline.db'}"


@pytest.mark.parametrize("text,expected", [
    (2, Target(2, 2)), ("1-2", Target(1, 2)), (">=2", Target(2, None)), ("≥3", Target(3, None)),
    ("3~5", Target(3, 5)), ("5-3", None), ("two", None), (True, None)])
def test_parse_target(text: object, expected: Target | None) -> None:
    assert parse_target(text) == expected
