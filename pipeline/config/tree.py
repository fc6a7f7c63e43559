"""The unit tree, the activity types and the campaign plan of ``config.toml``."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date

from ..domain import Level, parse_level
from ..messages import Coded
from .reader import Reader, non_empty, report_unknown
from .settings import (
    DEFAULT_ACTIVITY_TYPES,
    EMAIL_RE,
    MEASURES,
    ActivityType,
    Campaign,
    PlanItem,
    Target,
    UnitSpec,
)


def read_activity_types(top: Reader, problems: list[str]) -> dict[str, ActivityType]:
    section = top.sub("activity_types")
    if not section.table:
        return {k: ActivityType(k, label, tpl)
                for k, (label, tpl) in DEFAULT_ACTIVITY_TYPES.items()}
    types: dict[str, ActivityType] = {}
    for key in section.table:
        entry = section.sub(key)
        if not re.fullmatch(r"[a-z][a-z0-9_]*", key):
            problems.append(Coded("config.type_key", key=f"activity_types.{key}"))
        label = entry.get("label", str, "", non_empty)
        template = entry.get("template", str, f"{key}.md.j2", non_empty)
        if "label" not in entry.table:
            entry.problem("label", "config.missing_type_label")
        report_unknown(entry)
        types[key] = ActivityType(key, label, template)
    labels = [t.label for t in types.values()]
    for label in {x for x in labels if labels.count(x) > 1}:
        problems.append(Coded("config.label_twice", key="activity_types", label=label))
    return types


def read_units(top: Reader, problems: list[str]) -> tuple[UnitSpec, ...]:
    top.seen.add("units")
    raw = top.table.get("units", [])
    if not isinstance(raw, list):
        problems.append(Coded("config.units_not_list", key="units"))
        return ()
    units: list[UnitSpec] = []
    for i, item in enumerate(raw):
        r = Reader(problems, f"units[{i}]", item if isinstance(item, dict) else {})
        name = r.get("name", str, "", non_empty)
        if "name" not in r.table:
            r.problem("name", "config.missing")
        level_text = r.get("level", str, "")
        level = parse_level(level_text)
        if level is None:
            r.problem("level", "config.unit_level", value=level_text)
        email = r.get("email", str, "") or None
        if email and not EMAIL_RE.match(email):
            r.problem("email", "config.not_email", value=email)
        parent = r.get("parent", str, "") or None
        report_unknown(r)
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
            problems.append(Coded("config.unit_twice", key=where, name=unit.name))
        by_name[unit.name] = unit
    for unit in units:
        problem = parent_problem(unit.level, by_name.get(unit.parent) if unit.parent else None,
                                 unit.parent)
        if problem is not None:
            problems.append(Coded("config.unit_parent", key=where, name=unit.name,
                                  problem=problem))
    return problems


def parent_problem(level: Level, parent: UnitSpec | None,
                   parent_name: str | None) -> Coded | None:
    """Why ``parent`` cannot be the parent of a unit at ``level`` (a ``unit.*`` fragment
    that config.toml and ``units add`` put in their own sentence), or None if it can."""
    wanted = {Level.DISTRICT: None, Level.STREET: Level.DISTRICT, Level.BRANCH: Level.DISTRICT,
              Level.COMMUNITY: Level.STREET}[level]
    if wanted is None:
        return Coded("unit.district_parent", parent=parent_name) if parent_name else None
    if parent_name is None:
        return Coded("unit.needs_parent", level=level.value, wanted=wanted.value)
    if parent is None:
        return Coded("unit.parent_unknown", parent=parent_name)
    if parent.level != wanted:
        return Coded("unit.parent_level", level=level.value, wanted=wanted.value,
                     parent=parent_name, parent_level=parent.level.value)
    return None


def read_campaign(top: Reader, problems: list[str], types: Mapping[str, ActivityType],
                  units: Sequence[UnitSpec] = ()) -> Campaign | None:
    if "campaign" not in top.table:
        top.seen.add("campaign")
        return None
    r = top.sub("campaign")
    name = r.get("name", str, "", non_empty)
    start = r.get("start", date, date(1970, 1, 1))
    end = r.get("end", date, date(1970, 1, 1))
    for key in ("start", "end"):
        if key not in r.table:
            r.problem(key, "config.missing_date")
    if start > end:
        r.problem("end", "config.end_before_start", start=start.isoformat())
    items = _targets(r.sub("targets"), types) + _items(r, types, {u.name for u in units})
    report_unknown(r)
    return Campaign(name, start, end, tuple(items))


def _kind(types: Mapping[str, ActivityType], text: str) -> ActivityType | None:
    return types.get(text) or next((t for t in types.values() if t.label == text), None)


def _targets(r: Reader, types: Mapping[str, ActivityType]) -> list[PlanItem]:
    """The short form: ``[campaign.targets.street] film = "1-2"`` (one type per item)."""
    result: list[PlanItem] = []
    for level_key in list(r.table):
        level = parse_level(level_key)
        sub = r.sub(level_key)
        if level is None:
            r.problem(level_key, "config.target_level")
            continue
        for type_key, value in sub.table.items():
            sub.seen.add(type_key)
            kind = _kind(types, type_key)
            target = parse_target(value)
            if kind is None:
                sub.problem(type_key, "config.unknown_type", value=type_key)
            elif target is None:
                sub.problem(type_key, "config.target", value=value)
            else:
                result.append(PlanItem(kind.key, kind.label, (level.value,), target,
                                       types=(kind.key,)))
    return result


def _items(r: Reader, types: Mapping[str, ActivityType], units: set[str]) -> list[PlanItem]:
    """``[[campaign.items]]``: every item of the plan as the speech sets it."""
    r.seen.add("items")
    raw = r.table.get("items", [])
    if not isinstance(raw, list):
        r.problem("items", "config.items_not_list")
        return []
    items = []
    for i, entry in enumerate(raw):
        item = _item(Reader(r.problems, r.key(f"items[{i}]"),
                            entry if isinstance(entry, dict) else {}), types, units)
        if item is not None:
            items.append(item)
    keys = [item.key for item in items]
    for key in sorted({k for k in keys if keys.count(k) > 1}):
        r.problem("items", "config.item_key_twice", item=key)
    return items


def _item(r: Reader, types: Mapping[str, ActivityType], units: set[str]) -> PlanItem | None:
    label = r.get("label", str, "", non_empty)
    key = r.get("key", str, label, non_empty)
    if "label" not in r.table:
        r.problem("label", "config.missing_item_label")
    who = _who(r, units)
    kinds = []
    for text in _strings(r, "types"):
        kind = _kind(types, text)
        if kind is None:
            r.problem("types", "config.unknown_type", value=text)
        else:
            kinds.append(kind.key)
    forms = tuple(_strings(r, "forms"))
    target = None
    if "target" in r.table:
        r.seen.add("target")
        target = parse_target(r.table["target"])
        if target is None:
            r.problem("target", "config.target", value=r.table["target"])
    measure_text = r.get("measure", str, "activities")
    measure = MEASURES.get(measure_text)
    if measure is None:
        r.problem("measure", "config.measure", value=measure_text)
    default_word = "户" if measure == "households" else "次"
    item = PlanItem(key, label, who, target, tuple(kinds), forms,
                    r.get("partner", bool, False), measure or "activities",
                    r.get("unit_word", str, default_word, non_empty))
    report_unknown(r)
    return item if label and who else None


def _strings(r: Reader, name: str) -> list[str]:
    r.seen.add(name)
    value = r.table.get(name, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        r.problem(name, "config.not_names", value=value)
        return []
    return [v.strip() for v in value]


def _who(r: Reader, units: set[str]) -> tuple[str, ...]:
    """Levels (by key or Chinese name) and unit names that owe the item."""
    if "who" not in r.table:
        r.problem("who", "config.missing_who")
    who = []
    for text in _strings(r, "who"):
        level = parse_level(text)
        if level is not None:
            who.append(level.value)
        elif text in units:
            who.append(text)
        else:
            r.problem("who", "config.who", value=text)
    return tuple(who)


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
