"""Review stages (三审) as pure functions: where a draft waits, who may sign each stage.

Who may sign comes from the config's ``[review] stages`` and the active web users given
a stage; the users are passed in as rows (``reads.active_users``), so this module loads
no database library and the lean start of ``pipeline queue``/``check`` can use it.
``review.py`` reads the users through a session and calls these same functions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from .config import Settings
from .config.settings import ReviewStage
from .domain import DraftStatus


class Staged(Protocol):
    """What ``open_stage`` needs of a draft (a ``models.Draft`` or a row of ``reads``)."""

    @property
    def status(self) -> str: ...

    @property
    def review_stage(self) -> int: ...


class UserRow(NamedTuple):
    """An active web user: name, the stages given (a JSON list), email."""

    name: str
    stages: str
    email: str | None


@dataclass(frozen=True)
class Holders:
    """Who holds a review stage: names, and the addresses of those who gave one."""

    stage: str
    names: tuple[str, ...]
    emails: tuple[str, ...]

    def words(self) -> str:
        return f"waiting for {self.stage} by {', '.join(self.names) or 'any editor'}"


def open_stage(settings: Settings, draft: Staged) -> ReviewStage | None:
    """The stage the draft waits at, or None when it is not in review."""
    if draft.status != DraftStatus.DRAFTED:
        return None
    stages = settings.review.stages
    return stages[min(draft.review_stage, len(stages) - 1)]


def signers_of(settings: Settings, users: Sequence[UserRow], stage: int) -> tuple[str, ...]:
    """Who may sign stage ``stage``: the config's editors and the users given the stage.

    Empty means any editor (an office that has not named its signers yet).
    """
    spec = settings.review.stages[stage]
    names = list(spec.editors)
    for user in users:
        if spec.name in json.loads(user.stages) and user.name not in names:
            names.append(user.name)
    return tuple(names)


def holders_of(settings: Settings, users: Sequence[UserRow]) -> list[Holders]:
    """Every stage's holders."""
    result = []
    for i, stage in enumerate(settings.review.stages):
        names = signers_of(settings, users, i)
        emails = tuple(u.email for u in users if u.email and u.name in names)
        result.append(Holders(stage.name, names, emails))
    return result


def stage_indexes_of(settings: Settings, users: Sequence[UserRow], name: str) -> list[int]:
    """The stages ``name`` may sign (a stage with no named signers is open to anyone)."""
    return [i for i in range(len(settings.review.stages))
            if not (names := signers_of(settings, users, i)) or name in names]
