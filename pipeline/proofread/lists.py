"""The proofreading word lists: files of lines, parsed into one Aho-Corasick automaton.

The package ships the default lists (``data/``: typos, banned, caution, allow,
surnames); the workspace adds its own in ``paths.proofread``: ``glossary.txt``
(official names), ``words.txt`` (more words under ``[typo]``, ``[banned]``,
``[caution]``) and ``allow.txt``. Every line that does not parse is reported
with its file and line; a listed word that is also allowed is reported too.

Matching uses pyahocorasick (a C automaton): every list word is found in one
pass over the text, whatever the number of words.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ahocorasick

from ..errors import ProofreadError

log = logging.getLogger(__name__)
DATA = Path(__file__).parent / "data"
DELETE = "（删去）"      # a suggestion that means: leave the word out
_ARROW = re.compile(r"\s*(?:->|→|=>)\s*")
_SECTION = re.compile(r"^\[(\w+)\]$")
_WORD_KINDS = ("typo", "banned", "caution")


# Where a line of a list is: (file, line number); messages name both.
Place = tuple[str, int]


@dataclass(frozen=True)
class Entry:
    """One listed word: what kind of finding it makes and what to write instead."""

    kind: str            # typo, banned, caution, name
    word: str
    suggestion: str      # "" when the list gives none
    delete: bool         # the suggestion is to leave the word out
    note: str            # the list's own comment, shown to the editor
    where: Place         # file and line, for messages about the list itself


@dataclass(frozen=True)
class Lexicon:
    """Every list, ready to match: ``words`` finds listed words, ``allowed`` allowed ones."""

    words: Any                     # ahocorasick.Automaton: word -> (word, tuple[Entry, ...])
    allowed: Any                   # ahocorasick.Automaton: word -> word (or None if empty)
    surnames: tuple[str, ...]
    sources: tuple[str, ...]       # the files read, for messages


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Numbered lines without comments; a missing or unreadable file is a ProofreadError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProofreadError.coded("words.missing", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ProofreadError.coded("words.not_utf8", file=str(path), byte=exc.start) from None
    except OSError as exc:
        raise ProofreadError.coded("words.unreadable", file=str(path),
                                   reason=exc.strerror or str(exc)) from None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.lstrip("\ufeff")
        if line.lstrip().startswith("#"):
            continue
        yield number, line


def _split_note(line: str) -> tuple[str, str]:
    body, _, note = line.partition("#")
    return body.strip(), note.strip()


def parse_entries(path: Path, kind: str | None) -> list[Entry]:
    """``word -> suggestion  # note`` lines (``kind`` None: ``[typo]``-style sections).

    Raises:
        ProofreadError: the file is missing, or a line does not parse (file and line named).
    """
    entries: list[Entry] = []
    section = kind
    for number, line in _lines(path):
        body, note = _split_note(line)
        if not body:
            continue
        where = (str(path), number)
        found = _SECTION.match(body)
        if kind is None and found:
            if found[1] not in _WORD_KINDS:
                raise ProofreadError.coded("words.unknown_section", file=str(path), line=number,
                                           section=found[1])
            section = found[1]
            continue
        if section is None:
            raise ProofreadError.coded("words.before_section", file=str(path), line=number,
                                       text=body)
        entries.append(_entry(section, body, note, where, required=section == "typo"))
    return entries


def _entry(kind: str, body: str, note: str, where: Place, required: bool) -> Entry:
    file, line = where
    parts = _ARROW.split(body)
    if len(parts) > 2 or not parts[0] or (len(parts) == 2 and not parts[1]):
        raise ProofreadError.coded("words.not_entry", file=file, line=line, text=body)
    if required and len(parts) == 1:
        raise ProofreadError.coded("words.no_right_form", file=file, line=line, text=body)
    suggestion = parts[1] if len(parts) == 2 else ""
    if suggestion == parts[0]:
        raise ProofreadError.coded("words.same_word", file=file, line=line, text=body)
    delete = suggestion == DELETE
    return Entry(kind, parts[0], "" if delete else suggestion, delete, note, where)


def parse_glossary(path: Path) -> list[Entry]:
    """``variant, variant -> official name`` lines: each variant is a ``name`` entry.

    Raises:
        ProofreadError: a line does not parse (file and line named).
    """
    entries: list[Entry] = []
    for number, line in _lines(path):
        body, note = _split_note(line)
        if not body:
            continue
        file = str(path)
        parts = _ARROW.split(body)
        if len(parts) != 2 or not parts[1]:
            raise ProofreadError.coded("words.not_glossary", file=file, line=number, text=body)
        variants = [v.strip() for v in re.split(r"[,，、;；]", parts[0]) if v.strip()]
        if not variants:
            raise ProofreadError.coded("words.no_variant", file=file, line=number, text=body)
        for variant in variants:
            if variant == parts[1]:
                raise ProofreadError.coded("words.variant_is_official", file=file, line=number,
                                           variant=variant)
            entries.append(Entry("name", variant, parts[1], False, note, (file, number)))
    return entries


def parse_words(path: Path) -> list[tuple[str, Place]]:
    """One word a line (allow-lists): (word, (file, line))."""
    found = []
    for number, line in _lines(path):
        body, _ = _split_note(line)
        if body:
            found.append((body, (str(path), number)))
    return found


def parse_surnames(path: Path) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for _, line in _lines(path)
                               for name in _split_note(line)[0].split()))


def load_lexicon(workspace: Path | None) -> Lexicon:
    """The package's lists plus the workspace's, cached until a file changes.

    Raises:
        ProofreadError: a list is missing or broken, or a listed word is also allowed.
    """
    files = [DATA / name for name in ("typos.txt", "banned.txt", "caution.txt", "allow.txt",
                                      "surnames.txt")]
    if workspace is not None:
        files += [workspace / name for name in ("glossary.txt", "words.txt", "allow.txt")]
    return _cached(workspace, tuple(_stamp(path) for path in files))


def _stamp(path: Path) -> tuple[str, float]:
    try:
        return str(path), path.stat().st_mtime
    except OSError:
        return str(path), -1.0


@functools.lru_cache(maxsize=4)
def _cached(workspace: Path | None, stamps: tuple[tuple[str, float], ...]) -> Lexicon:
    entries = (parse_entries(DATA / "typos.txt", "typo")
               + parse_entries(DATA / "banned.txt", "banned")
               + parse_entries(DATA / "caution.txt", "caution"))
    allowed = parse_words(DATA / "allow.txt")
    sources = [str(DATA)]
    if workspace is not None:
        for name, parse in (("glossary.txt", parse_glossary),
                            ("words.txt", lambda p: parse_entries(p, None))):
            if (workspace / name).is_file():
                entries += parse(workspace / name)
                sources.append(str(workspace / name))
        if (workspace / "allow.txt").is_file():
            allowed += parse_words(workspace / "allow.txt")
            sources.append(str(workspace / "allow.txt"))
    entries = _check_conflicts(entries, allowed)
    return Lexicon(words=_automaton(entries), allowed=_allow_automaton(allowed),
                   surnames=parse_surnames(DATA / "surnames.txt"), sources=tuple(sources))


def _check_conflicts(entries: list[Entry], allowed: list[tuple[str, Place]]) -> list[Entry]:
    """A word both listed and allowed is a mistake in the lists, except that the office's
    allow-list may silence one of the package's default entries (that is what it is for)."""
    allow = dict(reversed(allowed))  # the first place a word is allowed
    kept = []
    for entry in entries:
        where = allow.get(entry.word)
        if where is None:
            kept.append(entry)
        elif entry.where[0].startswith(str(DATA)) and not where[0].startswith(str(DATA)):
            log.info("%s line %d: %r is allowed by %s line %d", *entry.where, entry.word, *where)
        else:
            raise ProofreadError.coded("words.allowed_too", file=entry.where[0],
                                       line=entry.where[1], word=entry.word,
                                       allowed_file=where[0], allowed_line=where[1])
    return kept


def _automaton(entries: list[Entry]) -> Any:
    by_word: dict[str, list[Entry]] = {}
    for entry in entries:
        by_word.setdefault(entry.word, []).append(entry)
    automaton = ahocorasick.Automaton()
    for word, found in by_word.items():
        automaton.add_word(word, (word, tuple(found)))
    automaton.make_automaton()
    return automaton


def _allow_automaton(allowed: list[tuple[str, Place]]) -> Any:
    automaton = ahocorasick.Automaton()
    for word, _ in allowed:
        automaton.add_word(word, word)
    if len(automaton):
        automaton.make_automaton()
    return automaton
