"""Reading typed values out of TOML tables while collecting every problem."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, TypeVar

T = TypeVar("T")


class Reader:
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
            self.problem(name, f"expected {kind_name(kind)}, got {value!r}")
            return default
        message = check(value) if check else None
        if message:
            self.problem(name, f"{message}, got {value!r}")
            return default
        return value

    def sub(self, name: str) -> Reader:
        self.seen.add(name)
        value = self.table.get(name, {})
        if not isinstance(value, dict):
            self.problem(name, f"expected a table, got {value!r}")
            value = {}
        return Reader(self.problems, self.key(name), value)

    def unknown(self) -> list[str]:
        return [self.key(k) for k in self.table if k not in self.seen]


def kind_name(kind: type) -> str:
    return {str: "a string", int: "a whole number", float: "a number", bool: "true or false",
            list: "a list", dict: "a table",
            date: "a date like 2026-06-01"}.get(kind, kind.__name__)


def positive(value: int) -> str | None:
    return None if value > 0 else "must be greater than 0"


def non_negative(value: int) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def non_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def report_unknown(r: Reader) -> None:
    # Unknown keys inside a known table are almost always typos: treat them as errors.
    for key in r.unknown():
        r.problems.append(f"{key}: unknown key")
