"""Field names, text rules and the per-record collector shared by the intake modules."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from ..domain import Report
from ..errors import SubmissionError
from ..messages import message, render

# ---------------------------------------------------------------- public types


@dataclass(frozen=True)
class Rejection:
    """Why one record (or, with ``row`` None and ``field`` "", a whole file) was refused."""

    source: str        # file name as given
    row: int | None    # Excel row (header = 1), 1-based JSON list index, or None
    field: str         # the field's header or key as written ("" for the whole file)
    message: str       # English sentence: the value and the rule
    code: str = ""     # the error vocabulary's code (intake.*, time.*, link.*, photo.*)
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def text(self, language: str = "zh_CN") -> str:
        """The value and the rule in ``language``."""
        return render(self.code, language, **self.params) if self.code else self.message

    def as_error(self) -> SubmissionError:
        if not self.code:
            return SubmissionError(self.message, source=self.source, row=self.row,
                                   field=self.field)
        return SubmissionError.rule(self.code, self.params, source=self.source, row=self.row,
                                    field=self.field)

    def __str__(self) -> str:
        return str(self.as_error())


@dataclass
class IntakeResult:
    reports: list[Report] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


# ---------------------------------------------------------------- field names


@dataclass(frozen=True)
class _Field:
    key: str
    label: str                      # the Chinese header people see
    aliases: tuple[str, ...] = ()


_FIELDS = (
    _Field("unit", "单位", ("填报单位", "报送单位", "单位名称")),
    _Field("activity_type", "活动类型", ("类型",)),
    _Field("title", "标题", ("活动标题", "活动名称", "活动主题")),
    _Field("start", "开始时间"),
    _Field("end", "结束时间"),
    _Field("time", "活动时间", ("时间",)),
    _Field("date", "活动日期", ("日期",)),
    _Field("place", "活动地点", ("地点", "活动地址", "地址")),
    _Field("form", "活动方式", ("方式", "活动形式", "形式")),
    _Field("participants", "参与人数", ("参加人数", "人数")),
    _Field("body", "活动内容", ("内容", "正文", "活动情况", "活动简介")),
    _Field("links", "宣传报道", ("报道", "报道链接", "宣传报道链接", "链接")),
    _Field("photos", "图片", ("照片", "活动照片", "活动图片")),
    _Field("partners", "合作单位", ("联合单位", "协办单位", "合办单位", "联办单位", "合作方")),
    _Field("contact", "联系人", ("联系方式", "联系电话", "联系人及电话")),
    _Field("notes", "备注", ("报送说明", "说明", "备注说明", "给编辑的话")),
)
FIELD_LABELS: Mapping[str, str] = {f.key: f.label for f in _FIELDS}
REQUIRED = ("unit", "activity_type", "title", "place", "form", "body")
TIME_FIELDS = ("time", "start", "date")
_INVISIBLE = "\u200b\u2060\ufeff\u180e\u00ad"  # zero-width space, word joiner, BOM, ...
_SUFFIX = re.compile(r"\([^()]*\)$|\[[^\[\]]*\]$|【[^【】]*】$")


@functools.lru_cache(maxsize=4096)  # the same dozen headers come back on every row
def _norm_key(key: str) -> str:
    """Compare headers the way people write them: ``活动时间（必填）：`` == ``活动时间``."""
    text = unicodedata.normalize("NFKC", key)  # full-width colon and brackets become ASCII
    text = re.sub(rf"[\s{_INVISIBLE}*※_\-]", "", text).lower()
    previous = ""
    while previous != text:
        previous = text
        text = _SUFFIX.sub("", text.rstrip(":"))
    return text


_SPELLINGS: dict[str, str] = {
    _norm_key(name): name for f in _FIELDS for name in (f.key, f.label, *f.aliases)}
_ALIASES: dict[str, str] = {
    _norm_key(name): f.key for f in _FIELDS for name in (f.key, f.label, *f.aliases)}


def field_of(key: str) -> str | None:
    return _ALIASES.get(_norm_key(key))


def _typo_of(key: str) -> str | None:
    norm = _norm_key(key)
    match = difflib.get_close_matches(norm, list(_SPELLINGS), n=1, cutoff=0.75) if norm else []
    return _SPELLINGS[match[0]] if match else None


# ---------------------------------------------------------------- small text helpers

_BAD_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f"
                       "\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_INVISIBLE_TABLE = str.maketrans("", "", _INVISIBLE)
# Blank: only whitespace and invisible characters. A pattern, not translate(): it stops
# at the first visible character instead of copying a whole report body (issue 13).
_BLANK = re.compile(rf"[\s{_INVISIBLE}]*")


class Invalid(Exception):
    """A value broke a rule: a code of the vocabulary with its parameters (a fragment or
    a full sentence); no code means "unreadable", the caller says why."""

    def __init__(self, code: str = "", **params: Any) -> None:
        self.code, self.params = code, params
        super().__init__(render(code, "en", **params) if code else "")

    def message(self) -> dict[str, Any]:
        return message(self.code, **self.params)


def quote(text: str, limit: int = 60) -> str:
    # repr escapes invisible characters, so the person sees what is really there
    return repr(text if len(text) <= limit else text[:limit] + "…")


def describe(value: object) -> str:
    """Name a non-text value without printing it whole (it may be huge)."""
    if isinstance(value, bool):
        return f"the true/false value {str(value).lower()}"
    if isinstance(value, int):
        return f"the number {value}" if abs(value) < 10**18 else "a very large number"
    if isinstance(value, float):
        return f"the number {value:g}"
    if isinstance(value, datetime | date | time):
        return f"the date/time {value.isoformat()}"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a table of keys and values"
    return f"a value of type {type(value).__name__}"


def bad_char(text: str) -> dict[str, Any] | None:
    """Why ``text`` must not be accepted as written (NUL, control, bidi, surrogate): a
    message fragment (``messages.message``)."""
    found = _BAD_CHAR.search(text)
    if found is None:
        return None
    char, position = found.group(), found.start() + 1
    code = f"U+{ord(char):04X}"
    if char == "\x00":
        return message("text.nul", char=code, position=position)
    if 0xD800 <= ord(char) <= 0xDFFF:
        return message("text.surrogate", char=code, position=position)
    name = unicodedata.name(char, "control character")
    return message("text.control", char=code, name=name, position=position)


def is_blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return _BLANK.fullmatch(value) is not None
    if isinstance(value, list | tuple):
        # flat check only: a nested list counts as content (and YAML aliases cannot blow up)
        return all(item is None or (isinstance(item, str) and is_blank(item)) for item in value)
    return False


def tidy(text: str, multiline: bool) -> str:
    if multiline:
        return text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return re.sub(r"\s+", " ", text.translate(_INVISIBLE_TABLE)).strip()


def has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def _extra_text(value: object) -> str | None:
    """Unknown fields are kept as text; nested data is refused (and never expanded)."""
    if isinstance(value, list | tuple):
        parts = [_scalar_text(item) for item in value]
        return None if None in parts else "; ".join(p for p in parts if p)
    return _scalar_text(value)


def _scalar_text(value: object) -> str | None:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value) if abs(value) < 10**18 else None
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return None


# ---------------------------------------------------------------- one record


class Record:
    """A raw record with its fields found by name, and the rejections collected so far."""

    def __init__(self, raw: Mapping[str, object], source: str, row: int | None,
                 strict_keys: bool) -> None:
        self.source, self.row, self.strict_keys = source, row, strict_keys
        self.rejections: list[Rejection] = []
        self.values: dict[str, tuple[str, object]] = {}
        self.empty_keys: dict[str, str] = {}
        self.extra: dict[str, str] = {}
        self.chinese = any(has_cjk(str(k)) for k in raw)
        for key, value in raw.items():
            self._take(str(key), value)

    def _take(self, key: str, value: object) -> None:
        name = field_of(key)
        if name is None:
            self._take_unknown(key, value)
        elif is_blank(value):
            self.empty_keys.setdefault(name, key)
        elif name in self.values:
            first = self.values[name][0]
            self.reject(key, "intake.duplicate_field", key=key, first=first,
                        label=FIELD_LABELS[name], name=name)
        else:
            self.values[name] = (key, value)

    def _take_unknown(self, key: str, value: object) -> None:
        guess = _typo_of(key) if self.strict_keys else None
        if guess:
            self.reject(key, "intake.unknown_field", key=key, guess=guess)
            return
        if is_blank(value):
            return
        text = _extra_text(value)
        problem = message("text.nested") if text is None else bad_char(key + text)
        if problem:
            self.reject(key, "intake.extra_not_text", key=key, problem=problem)
        elif text is not None:
            self.extra[key] = text

    def reject(self, field_name: str, code: str, **params: Any) -> None:
        """Refuse the record: ``code`` of the vocabulary with its parameters."""
        self.rejections.append(Rejection(self.source, self.row, field_name,
                                         render(code, "en", **params), code, params))

    def refuse(self, field_name: str, exc: Invalid) -> None:
        self.reject(field_name, exc.code, **exc.params)

    def key(self, name: str) -> str:
        """The field's name as written, or its default spelling in the record's language."""
        if name in self.values:
            return self.values[name][0]
        return self.empty_keys.get(name) or (FIELD_LABELS[name] if self.chinese else name)

    def get(self, name: str) -> object | None:
        return self.values[name][1] if name in self.values else None

    def missing(self, name: str) -> None:
        self.reject(self.key(name), "intake.missing", key=self.key(name))


def text_of(rec: Record, name: str, multiline: bool = False) -> str | None:
    """The field's cleaned text; None when absent or rejected."""
    value = rec.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        rec.reject(rec.key(name), "intake.not_text", got=describe(value))
        return None
    problem = bad_char(value)
    if problem:
        rec.reject(rec.key(name), "intake.bad_text", value=quote(value), problem=problem)
        return None
    return tidy(value, multiline)


def required_text(rec: Record, name: str, multiline: bool = False) -> str | None:
    if name not in rec.values:
        rec.missing(name)
        return None
    return text_of(rec, name, multiline)
