"""Plain domain types shared by every stage: levels, statuses, a validated report.

No I/O here; intake produces ``Report`` values, render and store consume them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol, TypeVar


class Level(StrEnum):
    """The three-level unit tree (plus industry branches beside the streets)."""

    DISTRICT = "district"
    STREET = "street"
    BRANCH = "branch"
    COMMUNITY = "community"

    @property
    def label(self) -> str:
        return LEVEL_LABELS[self]


LEVEL_LABELS: dict[Level, str] = {
    Level.DISTRICT: "区",
    Level.STREET: "街道/镇",
    Level.BRANCH: "行业分会",
    Level.COMMUNITY: "社区/村",
}

# Chinese spellings accepted wherever a level is typed by a person.
LEVEL_ALIASES: dict[str, Level] = {
    "区": Level.DISTRICT, "区级": Level.DISTRICT, "新区": Level.DISTRICT,
    "街道": Level.STREET, "镇": Level.STREET, "街道/镇": Level.STREET, "乡镇": Level.STREET,
    "行业分会": Level.BRANCH, "分会": Level.BRANCH,
    "社区": Level.COMMUNITY, "村": Level.COMMUNITY, "社区/村": Level.COMMUNITY,
}


def parse_level(text: str) -> Level | None:
    """Return the level named by ``text`` (English key or Chinese label), else None."""
    value = text.strip()
    try:
        return Level(value.lower())
    except ValueError:
        return LEVEL_ALIASES.get(value)


class UnitNode(Protocol):
    """What ``tree_order`` reads of a unit: a ``models.Unit`` or a row of ``reads``."""

    @property
    def id(self) -> int | None: ...
    @property
    def level(self) -> str: ...
    @property
    def parent_id(self) -> int | None: ...


U = TypeVar("U", bound=UnitNode)


def tree_order(units: list[U]) -> list[U]:
    """Depth-first order: each unit followed by its children, levels in the usual order."""
    rank = {Level.DISTRICT: 0, Level.STREET: 1, Level.BRANCH: 2, Level.COMMUNITY: 3}
    children: dict[int | None, list[U]] = {}
    for unit in sorted(units, key=lambda u: (rank[Level(u.level)], u.id or 0)):
        children.setdefault(unit.parent_id, []).append(unit)
    ordered: list[U] = []

    def visit(parent: int | None) -> None:
        for child in children.get(parent, []):
            ordered.append(child)
            visit(child.id)

    visit(None)
    return ordered


class DraftStatus(StrEnum):
    """Where a draft is in review and publishing."""

    DRAFTED = "drafted"                      # waiting for an editor
    CHANGES_REQUESTED = "changes_requested"  # back with the reporting unit
    APPROVED = "approved"                    # waiting for the next push
    PUBLISHING = "publishing"                # claimed by a push, not out yet
    PUBLISHED = "published"
    REJECTED = "rejected"
    FAILED = "failed"                        # publishing gave up; a person must look


class PushState(StrEnum):
    """The day's push (the machine is ``lifecycle.PUSH``)."""

    RUNNING = "running"    # claimed; its stories are being published
    EMPTY = "empty"        # nothing was approved yet; the day stays open
    DONE = "done"
    FAILED = "failed"      # WeChat gave up; a person decides about the stories
    MISSED = "missed"      # push time passed without a push, or its stories moved on


class PublicationState(StrEnum):
    """One story in one push (the machine is ``lifecycle.PUBLICATION``)."""

    QUEUED = "queued"
    PUBLISHED = "published"
    FAILED = "failed"
    CANCELLED = "cancelled"


# The day had its push, is having it, or is over without one (missed): no claim for it.
PUSH_TAKEN = frozenset({PushState.DONE, PushState.RUNNING, PushState.FAILED,
                        PushState.MISSED})
PUSH_OUT = frozenset({PushState.DONE})                  # the day's push went out


def push_taken(state: str | None) -> bool:
    """Whether a day whose push row is in ``state`` has had (or is having) its push."""
    return state is not None and state in PUSH_TAKEN


def push_went_out(state: str | None) -> bool:
    return state is not None and state in PUSH_OUT


# The account's own daily round-up article (notify.roundup): not a unit's report, so
# never counted in the bulletin's figures.
ROUNDUP = "daily_roundup"


class DeadlineState(StrEnum):
    """How a story stands against its two-day deadline."""

    ON_TRACK = "on_track"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    PUBLISHED_ON_TIME = "published_on_time"
    PUBLISHED_LATE = "published_late"
    CLOSED = "closed"  # rejected: no deadline applies any more

    @property
    def label(self) -> str:
        return {
            "on_track": "按期", "due_soon": "即将到期", "overdue": "已超期",
            "published_on_time": "按时发布", "published_late": "超期发布", "closed": "已关闭",
        }[self.value]


@dataclass(frozen=True)
class Photo:
    """A photo referenced by a report, checked but not yet copied."""

    path: Path            # resolved absolute path of the submitted file
    original_name: str    # cleaned client name, metadata only, never a path
    kind: str             # "jpeg" or "png", from the file's magic bytes
    size: int
    sha256: str

    @property
    def stored_name(self) -> str:
        """Generated name for the stored photo: never the name the reporter gave it."""
        return f"photos/{self.sha256[:20]}.{'jpg' if self.kind == 'jpeg' else 'png'}"


@dataclass(frozen=True)
class Report:
    """One validated activity report, ready to be stored and rendered."""

    unit: str
    activity_type: str            # key of settings.activity_types
    title: str
    start: datetime               # timezone-aware
    end: datetime                 # timezone-aware, >= start
    place: str
    form: str                     # 活动方式
    body: str                     # 活动内容, Markdown
    participants: int | None = None   # the count read from participants_text, if any
    links: tuple[str, ...] = ()   # 宣传报道: URLs or outlet names
    photos: tuple[Photo, ...] = ()
    contact: str = ""
    source: str = ""              # file name the report came from
    row: int | None = None        # spreadsheet row (1-based, header = row 1)
    extra: dict[str, str] = field(default_factory=dict)
    participants_unit: str = ""   # 人, 人次 or 户: what participants counts
    participants_text: str = ""   # 参与人数 as the reporter wrote it, printed verbatim
    timed: bool = True            # False: the activity time was a date without a time
    notes: str = ""               # the reporter's notes to the editors, never published
    partners: tuple[str, ...] = ()  # 合作单位: the units the activity was held with

    @property
    def dedupe_key(self) -> str:
        """Same unit, type, title and activity time means the same report."""
        return "|".join([self.unit, self.activity_type, self.title.strip(),
                         self.start.isoformat()])
