"""Reading typed values out of TOML tables while collecting every problem.

Every problem is a ``Coded`` message (``pipeline.messages``) with the key as a parameter:
its English sentence for logs and ``str()``, its Chinese one for the people who fix it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, TypeVar

from ..messages import Coded

T = TypeVar("T")

# A check on a value: None when it is fine, else the rule it breaks (a Coded fragment
# such as "must be greater than 0"; the problem adds the key and the value).
Check = Callable[[T], Coded | None]


class Reader:
    """Pulls typed values out of a TOML table, collecting problems instead of raising."""

    def __init__(self, problems: list[str], path: str, table: Mapping[str, Any]) -> None:
        self.problems = problems
        self.path = path
        self.table = table
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def problem(self, name: str, code: str, /, **params: Any) -> None:
        """Record the problem ``code`` at key ``name`` (the full key is its ``key``)."""
        self.problems.append(Coded(code, key=self.key(name), **params))

    def get(self, name: str, kind: type[T], default: T, check: Check[T] | None = None) -> T:
        self.seen.add(name)
        if name not in self.table:
            return default
        value = self.table[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.problem(name, "config.wrong_type", kind=kind_key(kind), value=value)
            return default
        rule = check(value) if check else None
        if rule is not None:
            self.problem(name, "config.bad_value", rule=rule, value=value)
            return default
        return value

    def sub(self, name: str) -> Reader:
        self.seen.add(name)
        value = self.table.get(name, {})
        if not isinstance(value, dict):
            self.problem(name, "config.wrong_type", kind="dict", value=value)
            value = {}
        return Reader(self.problems, self.key(name), value)

    def unknown(self) -> list[str]:
        return [self.key(k) for k in self.table if k not in self.seen]


def kind_key(kind: type) -> str:
    """The word-table key of a value's kind (``{kind:value_kind}`` in the catalogues)."""
    return "date" if kind is date else kind.__name__


def positive(value: float) -> Coded | None:
    return None if value > 0 else Coded("config.must_positive")


def non_negative(value: int) -> Coded | None:
    return None if value >= 0 else Coded("config.must_non_negative")


def non_empty(value: str) -> Coded | None:
    return None if value.strip() else Coded("config.must_non_empty")


def within(low: int, high: int) -> Callable[[int], Coded | None]:
    """A check that a whole number lies in ``low``..``high``."""
    def check(value: int) -> Coded | None:
        return None if low <= value <= high else Coded("config.must_range", low=low, high=high)
    return check


def one_of(*choices: str) -> Callable[[str], Coded | None]:
    """A check that a text is one of ``choices`` (as written)."""
    def check(value: str) -> Coded | None:
        return None if value in choices else Coded("config.must_be_one_of",
                                                   choices=list(choices))
    return check


def report_unknown(r: Reader) -> None:
    # Unknown keys inside a known table are almost always typos: treat them as errors.
    for key in r.unknown():
        r.problems.append(Coded("config.unknown_key", key=key))
