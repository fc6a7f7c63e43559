"""The unit tree, the activity types and the campaign plan of ``config.toml``."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date

from ..domain import Level, parse_level
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
            problems.append(f"activity_types.{key}: the key must be lower-case letters, digits "
                            "and _ (for example base_visit)")
        label = entry.get("label", str, "", non_empty)
        template = entry.get("template", str, f"{key}.md.j2", non_empty)
        if "label" not in entry.table:
            entry.problem("label", "is missing (the Chinese name shown to people)")
        report_unknown(entry)
        types[key] = ActivityType(key, label, template)
    labels = [t.label for t in types.values()]
    for label in {x for x in labels if labels.count(x) > 1}:
        problems.append(f"activity_types: the label {label!r} is used twice")
    return types


def read_units(top: Reader, problems: list[str]) -> tuple[UnitSpec, ...]:
    top.seen.add("units")
    raw = top.table.get("units", [])
    if not isinstance(raw, list):
        problems.append("units: expected a list of [[units]] tables")
        return ()
    units: list[UnitSpec] = []
    for i, item in enumerate(raw):
        r = Reader(problems, f"units[{i}]", item if isinstance(item, dict) else {})
        name = r.get("name", str, "", non_empty)
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
            r.problem(key, "is missing (a date like 2026-06-01)")
    if start > end:
        r.problem("end", f"must not be before campaign.start ({start})")
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
            r.problem(level_key, "expected a level: district, street, branch or community")
            continue
        for type_key, value in sub.table.items():
            sub.seen.add(type_key)
            kind = _kind(types, type_key)
            target = parse_target(value)
            if kind is None:
                sub.problem(type_key, "is not a configured activity type")
            elif target is None:
                sub.problem(type_key, f'expected a target like 2, "1-2" or ">=2", got {value!r}')
            else:
                result.append(PlanItem(kind.key, kind.label, (level.value,), target,
                                       types=(kind.key,)))
    return result


def _items(r: Reader, types: Mapping[str, ActivityType], units: set[str]) -> list[PlanItem]:
    """``[[campaign.items]]``: every item of the plan as the speech sets it."""
    r.seen.add("items")
    raw = r.table.get("items", [])
    if not isinstance(raw, list):
        r.problem("items", "expected a list of [[campaign.items]] tables")
        return []
    items = []
    for i, entry in enumerate(raw):
        item = _item(Reader(r.problems, r.key(f"items[{i}]"),
                            entry if isinstance(entry, dict) else {}), types, units)
        if item is not None:
            items.append(item)
    keys = [item.key for item in items]
    for key in sorted({k for k in keys if keys.count(k) > 1}):
        r.problem("items", f"the key {key!r} is used by more than one item")
    return items


def _item(r: Reader, types: Mapping[str, ActivityType], units: set[str]) -> PlanItem | None:
    label = r.get("label", str, "", non_empty)
    key = r.get("key", str, label, non_empty)
    if "label" not in r.table:
        r.problem("label", "is missing (what the bulletin calls the item, e.g. 联合主题活动)")
    who = _who(r, units)
    kinds = []
    for text in _strings(r, "types"):
        kind = _kind(types, text)
        if kind is None:
            r.problem("types", f"{text!r} is not a configured activity type")
        else:
            kinds.append(kind.key)
    forms = tuple(_strings(r, "forms"))
    target = None
    if "target" in r.table:
        r.seen.add("target")
        target = parse_target(r.table["target"])
        if target is None:
            r.problem("target", f'expected a target like 2, "1-2" or ">=2", '
                                f'got {r.table["target"]!r}')
    measure_text = r.get("measure", str, "activities")
    measure = MEASURES.get(measure_text)
    if measure is None:
        r.problem("measure", f'expected "activities" or "households" (户), got {measure_text!r}')
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
        r.problem(name, f"expected a list of names, got {value!r}")
        return []
    return [v.strip() for v in value]


def _who(r: Reader, units: set[str]) -> tuple[str, ...]:
    """Levels (by key or Chinese name) and unit names that owe the item."""
    if "who" not in r.table:
        r.problem("who", 'is missing (levels such as "street" or unit names)')
    who = []
    for text in _strings(r, "who"):
        level = parse_level(text)
        if level is not None:
            who.append(level.value)
        elif text in units:
            who.append(text)
        else:
            r.problem("who", f"{text!r} is neither a level (district, street, branch, "
                             "community) nor a configured unit")
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
