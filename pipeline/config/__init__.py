"""Typed settings loaded once from ``config.toml``.

``load_settings(path)`` reads the file, checks every key, collects every
problem and raises one ``ConfigError`` naming them all, before anything touches
the database. Secrets never live in the file: the file only names the
environment variables that hold them.
"""

from .loader import load_settings, parse_settings
from .settings import (
    DEFAULT_ACTIVITY_TYPES,
    EMAIL_RE,
    MEDIA_LEVELS,
    AccountSettings,
    ActivityType,
    Campaign,
    DeadlineSettings,
    Limits,
    MediaSettings,
    NotifySettings,
    OutletSpec,
    Paths,
    PlanItem,
    ReachSettings,
    ScheduleSettings,
    ScoringSettings,
    Settings,
    SmtpSettings,
    Target,
    UnitSpec,
    WebSettings,
    WeChatSettings,
    parse_media_level,
)
from .tree import check_unit_tree, parent_problem, parse_target

__all__ = [
    "DEFAULT_ACTIVITY_TYPES", "EMAIL_RE", "MEDIA_LEVELS", "AccountSettings", "ActivityType",
    "Campaign", "DeadlineSettings", "Limits", "MediaSettings", "NotifySettings", "OutletSpec",
    "Paths", "PlanItem", "ReachSettings", "ScheduleSettings", "ScoringSettings", "Settings",
    "SmtpSettings", "Target", "UnitSpec", "WeChatSettings", "WebSettings", "check_unit_tree",
    "load_settings",
    "parent_problem", "parse_media_level", "parse_settings", "parse_target",
]
