"""Report fields the product does not know: kept as notes for the editors, never lost.

The rule, on every intake path (report files, ledgers, the web form, the JSON API):

- A key that looks like a misspelling of a known field in a hand-written TOML, JSON or
  front-matter file is refused with "did you mean" (``record._take_unknown``).
- Any other unknown key with a value (``备注 = "请尽快发布"``, ``举办单位 = ...``, an
  extra ledger column) is kept word for word as a note on the draft: ``submit`` says
  which keys it kept, ``pipeline show`` and the desk show them beside the report, and
  the bundled templates never print them, so they are never published.
- The web form posts only its own fields (its 备注 box is the report's ``notes`` field);
  the JSON API keeps any other text key as a note like a file does (at most 20), and
  refuses a misspelt one with "did you mean".

Also the list of known fields for ``pipeline submit --help``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..domain import Report
from .record import _FIELDS, REQUIRED, TIME_FIELDS

# The Markdown reader keeps the text after a front matter that already had a body here.
_LABELS = {"markdown": "正文之后的文字 (text after the front matter)"}


def notes_of(extra: Mapping[str, str]) -> list[dict[str, str]]:
    """The report's unknown fields as notes for the editors, in the order given."""
    return [{"key": key, "label": _LABELS.get(key, key), "text": text}
            for key, text in extra.items() if text]


def kept_notice(report: Report) -> str | None:
    """One sentence for whoever submitted ``report``, naming the keys kept as notes."""
    keys = [f"'{key}'" for key in report.extra if report.extra[key]]
    if not keys:
        return None
    return (f"kept as a note for the editors, not published: {', '.join(keys)} (not a "
            "field of a report)")


def notices(reports: Iterable[Report]) -> list[tuple[Report, str]]:
    return [(r, text) for r in reports if (text := kept_notice(r)) is not None]


def fields_help() -> str:
    """The fields a report may have, Chinese name first, for ``submit --help``."""
    lines = ["\n\nfields of a report (Chinese or English names; * required; a ledger has "
             "one column per field):"]
    for f in _FIELDS:
        mark = "*" if f.key in REQUIRED else ("†" if f.key in TIME_FIELDS else "")
        also = f"  also: {'、'.join(f.aliases)}" if f.aliases else ""
        lines.append(f"  {mark:<2}{f.label} ({f.key}){also}")
    lines.append("  † one of 活动时间 (time), 开始时间 (start) or 活动日期 (date) is required;\n"
                 "    e.g. 活动时间 = \"2026-06-20 09:00-11:30\"\n"
                 "  Any other field (备注, 举办单位, ...) is kept as a note for the editors and "
                 "never published;\n  a name that looks like a misspelt field is refused "
                 "with \"did you mean\".")
    return "\n".join(lines)
