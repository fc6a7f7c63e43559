"""Reported coverage from the store: every report's 宣传报道 items classified, counts per
unit and level, the outlets nobody has classified yet, and classifying one once."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, select

from ..config import MEDIA_LEVELS, Settings, parse_media_level
from ..errors import PipelineError
from ..models import MediaOutlet, Submission, Unit
from .media import COVERAGE_LEVELS, MediaList, classify_report, with_classified


def load_media(session: Session, settings: Settings) -> MediaList:
    """The bundled list, the workspace's and the editors' classifications."""
    rows = session.exec(select(MediaOutlet).order_by(col(MediaOutlet.id))).all()
    return with_classified(settings.media.outlets, [(r.outlet, r.level, r.name) for r in rows])


def coverage_by_unit(session: Session, settings: Settings, start: datetime, end: datetime
                     ) -> dict[int, Counter[str]]:
    """Per unit id: coverage items by level of the reports received in [start, end)."""
    media = load_media(session, settings)
    rows = session.exec(select(Submission.unit_id, Submission.links).where(
        col(Submission.received_at) >= start, col(Submission.received_at) < end)).all()
    counts: dict[int, Counter[str]] = {}
    for unit_id, links in rows:
        for found in classify_report(media, links):
            if found.level:
                counts.setdefault(int(unit_id), Counter())[found.level] += 1
    return counts


@dataclass
class Unknown:
    key: str                       # the host of a link, or the name as written
    count: int = 0
    examples: list[str] = field(default_factory=list)
    units: list[str] = field(default_factory=list)


def unknown_outlets(session: Session, settings: Settings) -> list[Unknown]:
    """Reported items no list knows, most frequent first."""
    media = load_media(session, settings)
    names = {u.id: u.name for u in session.exec(select(Unit))}
    found: dict[str, Unknown] = {}
    for unit_id, links in session.exec(select(Submission.unit_id, Submission.links)).all():
        for item in classify_report(media, links):
            if item.known:
                continue
            entry = found.setdefault(item.key, Unknown(item.key))
            entry.count += 1
            if item.item not in entry.examples and len(entry.examples) < 3:
                entry.examples.append(item.item)
            unit = names.get(unit_id, "")
            if unit and unit not in entry.units:
                entry.units.append(unit)
    return sorted(found.values(), key=lambda u: (-u.count, u.key))


def classify_outlet(session: Session, key: str, level: str, outlet: str, *, actor: str,
                    now: datetime) -> MediaOutlet:
    """Record an editor's classification of ``key`` (a host or a name) once.

    Raises:
        PipelineError: for an unknown level, an empty key or a key already classified.
    """
    name = key.strip()
    level_key = parse_media_level(level)
    if not name:
        raise PipelineError.coded("media.empty_key")
    if level_key is None:
        raise PipelineError.coded("media.level_unknown", value=level, levels=[
            f"{k} ({v})" for k, v in MEDIA_LEVELS.items()])
    if session.exec(select(MediaOutlet).where(MediaOutlet.name == name)).first() is not None:
        raise PipelineError.coded("media.classified", name=name)
    row = MediaOutlet(name=name, outlet=(outlet.strip() or name)[:200], level=level_key,
                      created_by=actor[:100], created_at=now)
    session.add(row)
    session.flush()
    return row


__all__ = ["COVERAGE_LEVELS", "Unknown", "classify_outlet", "classify_report",
           "coverage_by_unit", "load_media", "unknown_outlets"]
