"""Text for the command line: the CLI's language, words for states, lateness, and
tables aligned by display width (a Chinese character takes two columns).

Pure: the language is read from the environment only by ``cli_lang``; everything
else takes it as an argument.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from wcwidth import wcswidth

from .domain import DeadlineState, DraftStatus

# The CLI follows the locale: Chinese under zh_*, English otherwise.
ZH, EN = "zh", "en"

_STATUS_WORDS: dict[str, tuple[str, str]] = {
    DraftStatus.DRAFTED: ("待审核", "waiting for review"),
    DraftStatus.CHANGES_REQUESTED: ("退回修改", "sent back for changes"),
    DraftStatus.APPROVED: ("已通过，待推送", "approved, waiting for the push"),
    DraftStatus.PUBLISHING: ("推送中", "being pushed"),
    DraftStatus.PUBLISHED: ("已发布", "published"),
    DraftStatus.REJECTED: ("未采用", "rejected"),
    DraftStatus.FAILED: ("发布失败", "publishing failed"),
}
_STATE_WORDS: dict[str, tuple[str, str]] = {
    DeadlineState.ON_TRACK: ("按期", "on track"),
    DeadlineState.DUE_SOON: ("即将到期", "due soon"),
    DeadlineState.OVERDUE: ("已超期", "overdue"),
    DeadlineState.PUBLISHED_ON_TIME: ("按时发布", "published on time"),
    DeadlineState.PUBLISHED_LATE: ("超期发布", "published late"),
    DeadlineState.CLOSED: ("已关闭", "closed"),
}


def cli_lang(environ: Mapping[str, str] | None = None) -> str:
    """``zh`` when the locale (LC_ALL, LC_MESSAGES, LANG, in POSIX order) is Chinese."""
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name)
        if value:
            return ZH if value.lower().startswith("zh") else EN
    return EN


def pick(lang: str, zh: str, en: str) -> str:
    return zh if lang == ZH else en


def status_word(status: str, lang: str) -> str:
    words = _STATUS_WORDS.get(status)
    return pick(lang, *words) if words else status


def state_word(state: str, lang: str) -> str:
    words = _STATE_WORDS.get(state)
    return pick(lang, *words) if words else state


def lateness(hours_left: float, lang: str) -> str:
    """Time to the deadline, or past it, in days and hours: "已超期21天" / "21 days overdue"."""
    overdue = hours_left < 0
    total = round(abs(hours_left))
    days, hours = divmod(total, 24)
    if lang == ZH:
        span = (f"{days}天" if days else "") + (f"{hours}小时" if hours or not days else "")
        return f"已超期{span}" if overdue else f"还剩{span}"
    parts = ([f"{days} day{'s' if days != 1 else ''}"] if days else []) + (
        [f"{hours} h"] if hours or not days else [])
    span = " ".join(parts)
    return f"{span} overdue" if overdue else f"{span} left"


def width(text: str) -> int:
    """Columns ``text`` takes on a terminal; unprintable characters count as one."""
    found = wcswidth(text)
    return found if found >= 0 else len(text)


def pad(text: str, columns: int, right: bool = False) -> str:
    fill = " " * max(0, columns - width(text))
    return fill + text if right else text + fill


def table(headers: Sequence[str], rows: Sequence[Sequence[str]],
          right: Sequence[int] = ()) -> list[str]:
    """Lines of a table with a header row, columns aligned by display width; the
    last column is not padded unless right-aligned (it is usually a long title)."""
    widths = [max([width(h), *(width(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    last = len(headers) - 1

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell if i == last and i not in right else pad(cell, widths[i], i in right)
                         for i, cell in enumerate(cells)).rstrip()
    return [line(headers), *(line(r) for r in rows)]
