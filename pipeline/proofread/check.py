"""The proofreading checks (pure): article Markdown in, findings out; the text is never changed.
``Checker`` loads the word lists once for a batch and runs the checks.

Offsets are Python string indices (code points) into the Markdown, so an emoji or a
full-width mark counts as one character, as it does for ``text[start:end]``.
Link targets, image paths and attribute lists (``{: .caption }``) are not prose and
are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ProofreadError
from ..messages import Coded
from .lists import Entry, Lexicon, load_lexicon

if TYPE_CHECKING:
    from ..config import Settings

BLOCKING = ("privacy", "banned")   # open findings of these kinds need a confirmation


@dataclass(frozen=True)
class Hit:
    kind: str                 # typo, banned, caution, name, privacy, format
    rule: str                 # list, delete, glossary, mobile, landline, id_number, plate,
                              # protected_name, halfwidth, unpaired, title_length
    text: str
    start: int | None         # None: the finding is in the title, not the Markdown
    end: int | None
    suggestion: str
    message: str              # English sentence (CLI, JSON, logs)
    detail: str = ""          # the word list's note, shown to editors as written


class Checker:
    """Proofreading of new drafts, the lists loaded once for a whole batch (and in each
    render worker, which is why it lives here and not with the findings' rows)."""

    def __init__(self, settings: Settings) -> None:
        self.limit = settings.limits.title_chars
        try:
            self.lexicon: Lexicon | None = load_lexicon(settings.paths.proofread)
            self.error = ""
        except ProofreadError as exc:
            self.lexicon, self.error = None, not_run_reason(exc)

    def check(self, markdown: str, title: str) -> tuple[list[Hit], str]:
        """The findings, and why proofreading did not run ("" when it ran)."""
        if self.lexicon is None:
            return [], self.error
        return proofread_text(markdown, title, self.lexicon, self.limit), ""


def count_line(count: int) -> str:
    return f"{count} proofreading finding{'' if count == 1 else 's'}"


def not_run_reason(exc: ProofreadError) -> str:
    """Why proofreading did not run, kept as its code so a page can say it in Chinese."""
    return Coded(exc.code, **exc.params) if exc.code else str(exc)


def proofread_text(markdown: str, title: str, lexicon: Lexicon, title_limit: int
                   ) -> list[Hit]:
    """Every finding in an article, in text order (title findings first)."""
    skip = _skipped_spans(markdown)
    hits = list(_title_hits(title, title_limit))
    found = [*_list_hits(markdown, lexicon), *_privacy_hits(markdown, lexicon.surnames),
             *_format_hits(markdown)]
    hits += sorted((h for h in found if not _inside_any(h, skip)),
                   key=lambda h: (h.start or 0, h.end or 0, h.kind))
    return hits


# ---------------------------------------------------------------- what is not prose

_NOT_PROSE = re.compile(r"\]\([^)\n]*\)|<https?://[^>\s]+>|https?://[^\s)>\]]+|\{:[^}\n]*\}")


def _skipped_spans(markdown: str) -> list[tuple[int, int]]:
    return [m.span() for m in _NOT_PROSE.finditer(markdown)]


def _inside_any(hit: Hit, spans: Iterable[tuple[int, int]]) -> bool:
    if hit.start is None or hit.end is None:
        return False
    return any(start < hit.end and hit.start < end for start, end in spans)


# ---------------------------------------------------------------- word lists

def _list_hits(text: str, lexicon: Lexicon) -> Iterator[Hit]:
    raw: list[tuple[int, int, Entry]] = []
    allowed: list[tuple[int, int]] | None = None  # found only when a listed word is
    for last, (word, entries) in lexicon.words.iter(text):
        start, end = last - len(word) + 1, last + 1
        if word.isascii() and not _ascii_word_edges(text, start, end):
            continue  # SB inside USB, NB inside NBA
        allowed = _allowed_spans(text, lexicon) if allowed is None else allowed
        if any(a <= start and end <= b for a, b in allowed):
            continue
        raw += [(start, end, e) for e in entries if not _is_inside_right_form(text, start, e)]
    for start, end, entry in raw:
        if any(s <= start and end <= e and (e - s) > (end - start) for s, e, _ in raw):
            continue  # a longer listed word covers this one: report that one alone
        yield _list_hit(entry, start, end)


def _allowed_spans(text: str, lexicon: Lexicon) -> list[tuple[int, int]]:
    if not len(lexicon.allowed):
        return []
    return [(last - len(word) + 1, last + 1) for last, word in lexicon.allowed.iter(text)]


def _ascii_word_edges(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return not (before.isascii() and before.isalnum()) and not (
        after.isascii() and after.isalnum())


def _is_inside_right_form(text: str, start: int, entry: Entry) -> bool:
    """禁毒委 inside 岳麓区禁毒委员会, 戒毒所 inside 强制隔离戒毒所: the right form is there."""
    right = entry.suggestion
    at = right.find(entry.word) if right else -1
    while at >= 0:
        if text.startswith(right, start - at):
            return True
        at = right.find(entry.word, at + 1)
    return False


_LIST_MESSAGES = {
    "typo": "'{w}' is a common misspelling",
    "banned": "'{w}' must not be used in an article",
    "caution": "use '{w}' with care",
    "name": "'{w}' is not the official name in the glossary",
}


def _list_hit(entry: Entry, start: int, end: int) -> Hit:
    message = _LIST_MESSAGES[entry.kind].format(w=entry.word)
    if entry.delete:
        message += "; leave it out"
    elif entry.suggestion:
        message += f"; write '{entry.suggestion}'"
    return Hit(entry.kind, "delete" if entry.delete else (
        "glossary" if entry.kind == "name" else "list"), entry.word, start, end,
        entry.suggestion, message, entry.note)


# ---------------------------------------------------------------- private data

# Each pattern starts with the characters it needs and looks behind afterwards, so the
# regular-expression engine skips to those characters instead of trying every position
# (the same matches; a fifth of the proofreading time).
_MOBILE = re.compile(r"1(?<!\d1)[3-9]\d(?:\d{8}|[ -]\d{4}[ -]\d{4})(?!\d)")
_LANDLINE = re.compile(r"[(（0](?<!\d[(（0])"
                       r"(?:(?<=\()0\d{2,3}\)|(?<=（)0\d{2,3}）|(?<=0)\d{2,3}[-－])\d{7,8}(?!\d)")
_ID_NUMBER = re.compile(r"\d(?<![0-9A-Za-z]\d)\d{16}[0-9Xx](?![0-9A-Za-z])")
_PLATE = re.compile(r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼]"
                    r"[A-Z][·•]?[A-HJ-NP-Z0-9]{5,6}(?![0-9A-Za-z])")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_PROTECTED = ("强制隔离戒毒人员", "社区戒毒人员", "社区康复人员", "戒毒人员", "吸毒人员",
              "戒毒学员", "涉毒人员", "吸毒者", "涉案未成年人", "未成年人")
# Two-character words that start with a surname but are not names ("吸毒人员张贴…").
_NOT_NAMES = frozenset(
    "张贴 高度 周边 周围 方面 方式 方法 向前 常常 陈列 林业 黄色 白色 金额 文化 马上 于是 程度 "
    "任务 任何 严重 严格 何时 易于 孔洞 江边 龙头 余下 叶子 万元 史上 石头 毛病 钱款 田间 "
    "雷同 夏季 秦岭 武器 向社 向群 向其 向他 向她 白天 高中 高校 黄金 于当 于此 于本 于该 "
    "曾经 曾在 常年 常住 韩国 宋体 郭外 罗列 沈阳 汪洋 金融 金钱 石门 方才 文明 文艺 孟夏 "
    "邱陵 温暖 何处 何种 余额 陆续 陆地 范围 包括 包含 程序 段落 朱红 毛巾 严禁 易感 时间".split())
_AFTER_NAME = frozenset("在是的于和与等被因从到说表已曾也都就现今自对将把为以经接参来去正还又同")
_SEPARATOR = r"[：:，,、\s]?(?:名叫|名为|叫|系|是)?"


def _privacy_hits(text: str, surnames: tuple[str, ...]) -> Iterator[Hit]:
    for found in _MOBILE.finditer(text):
        yield _private(found, "mobile", "a mobile phone number must not be published")
    for found in _LANDLINE.finditer(text):
        yield _private(found, "landline", "a telephone number must not be published")
    for found in _ID_NUMBER.finditer(text):
        if _id_checksum_ok(found[0]):
            yield _private(found, "id_number", "a resident ID number must not be published")
    for found in _PLATE.finditer(text):
        if any(ch.isdigit() for ch in found[0]):
            yield _private(found, "plate", "a licence plate number must not be published")
    yield from _protected_names(text, surnames)


def _private(found: re.Match[str], rule: str, message: str) -> Hit:
    return Hit("privacy", rule, found[0], found.start(), found.end(), "", message)


def _id_checksum_ok(number: str) -> bool:
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == number[17].upper()


def _name_pattern(surnames: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    family = "|".join(sorted(map(re.escape, surnames), key=len, reverse=True))
    marker = "|".join(_PROTECTED)
    name = rf"(?P<name>(?:{family})(?!某)[\u4e00-\u9fff]{{1,2}})"
    after = re.compile(rf"(?:{marker}){_SEPARATOR}{name}")
    before = re.compile(rf"{name}(?:（|\(|系|是|为)(?:{marker})")
    return after, before


_PATTERNS: dict[tuple[str, ...], tuple[re.Pattern[str], re.Pattern[str]]] = {}


def _protected_names(text: str, surnames: tuple[str, ...]) -> Iterator[Hit]:
    if not any(marker in text for marker in _PROTECTED):
        return  # the common case: no protected group is mentioned at all
    patterns = _PATTERNS.get(surnames) or _PATTERNS.setdefault(surnames,
                                                               _name_pattern(surnames))
    seen: set[int] = set()
    for pattern in patterns:
        for found in pattern.finditer(text):
            name, start = found["name"], found.start("name")
            if len(name) == 3 and name[2] in _AFTER_NAME:
                name = name[:2]  # 张三在社区…: the name is 张三
            if start in seen or name[:2] in _NOT_NAMES or name in _NOT_NAMES:
                continue
            seen.add(start)
            family = next(s for s in sorted(surnames, key=len, reverse=True)
                          if name.startswith(s))
            yield Hit("privacy", "protected_name", name, start, start + len(name),
                      family + "某",
                      f"'{name}' is named as a person with a drug history, in rehabilitation "
                      f"or a minor; such people are not named: write '{family}某'")


# ---------------------------------------------------------------- format

_CJK = "\u4e00-\u9fff"
_HALF = {",": "，", ";": "；", ":": "：", "?": "？", "!": "！", "(": "（", ")": "）"}
_HALF_WIDTH = re.compile(rf"[,;:?!](?<=[{_CJK}][,;:?!])(?=[{_CJK}“‘（]|$)"
                         rf"|\((?<=[{_CJK}]\()(?=[^)\n]*[{_CJK}])"
                         rf"|\)(?<=[{_CJK}]\))(?=[{_CJK}，。]|$)", re.M)
_PAIRS = {"“": "”", "‘": "’", "（": "）", "《": "》", "【": "】", "「": "」"}
_CLOSERS = {close: open_ for open_, close in _PAIRS.items()}


def _format_hits(text: str) -> Iterator[Hit]:
    for found in _HALF_WIDTH.finditer(text):
        mark = found[0]
        yield Hit("format", "halfwidth", mark, found.start(), found.end(), _HALF[mark],
                  f"half-width '{mark}' in Chinese text; write '{_HALF[mark]}'")
    yield from _unpaired(text)


_PAIR_OR_BREAK = re.compile("[" + "".join(_PAIRS) + "".join(_CLOSERS) + r"]|\n[ \t]*\n")


def _unpaired(text: str) -> Iterator[Hit]:
    """Quotes and brackets that do not close within their paragraph."""
    stack: list[tuple[str, int]] = []
    for found in _PAIR_OR_BREAK.finditer(text):
        char, at = found[0], found.start()
        if char in _PAIRS:
            stack.append((char, at))
        elif char in _CLOSERS:
            if stack and stack[-1][0] == _CLOSERS[char]:
                stack.pop()
            else:
                yield _unpaired_hit(char, at, _CLOSERS[char])
        else:  # a blank line ends the paragraph
            yield from (_unpaired_hit(c, a, _PAIRS[c]) for c, a in stack)
            stack = []
    yield from (_unpaired_hit(c, a, _PAIRS[c]) for c, a in stack)


def _unpaired_hit(char: str, at: int, partner: str) -> Hit:
    return Hit("format", "unpaired", char, at, at + 1, "",
               f"'{char}' has no matching '{partner}' in its paragraph")


def _title_hits(title: str, limit: int) -> Iterator[Hit]:
    if len(title) > limit:
        yield Hit("format", "title_length", title, None, None, "",
                  f"the title is {len(title)} characters; the limit is {limit}")
