"""Intake stage: report files and form data in, validated ``Report`` values out.

``read_files`` reads TOML, JSON (an object or a list of objects), Markdown with
TOML (``+++``) or YAML (``---``) front matter, and CSV/XLSX ledgers (台账).
Every record then goes through ``validate_record``, which the web form and the
JSON API call too. Problems become ``Rejection`` values (file, row, field, one
English sentence) instead of exceptions, so one bad row never hides the others
and all of a report's problems are listed at once.

Side effects: reads the given files and the photos they name (type, size,
hash). Writes nothing, copies nothing, never touches the database.

Layout: ``readers`` (file formats) -> ``validate`` (one record) which uses
``record`` (field names, text rules, the rejection collector), ``times`` and
``attachments`` (links, photos).

Rules chosen here:

- Field names: English key or Chinese header, compared without spaces, ``_``,
  ``-``, ``*``, trailing colons and bracketed suffixes such as ``（必填）``. A
  missing field is named in Chinese when the record's keys are Chinese.
- Text fields must be text (a number where a title belongs is rejected);
  spreadsheet cells are turned into text first. NUL, other control
  characters, bidi overrides and lone surrogates are rejected in every text
  field. One-line fields have their whitespace collapsed and zero-width
  characters removed. HTML and template syntax are kept verbatim.
- Times: ISO 8601 (``2026-06-20T09:00+08:00``), ``2026-06-20 09:00``,
  ``2026/6/20 9:00``, ``2026.6.20``, ``2026年6月20日（周六）上午9时30分``,
  ``下午3点半``. A range is ``<start> <sep> <end>`` with ``-``, ``~``, ``至``,
  ``到`` or a dash as the separator; the end may be a time alone (same day,
  and the start's 上午/下午 carries over: ``下午2点-4点`` is 14:00-16:00). A
  ``-hh:mm`` zone offset is only read after a ``T`` or a time with seconds, so
  ``09:00-11:30`` is always a range. A date alone means the whole day
  (00:00:00 to 23:59:59). A ``活动日期``/``date`` field supplies the day for
  times written without one; alone, it is the activity time (a date-time cell
  too). Excel date cells at midnight are dates alone. Giving both ``time`` and
  ``start``/``end`` is rejected. Without a zone, times are in ``settings.tz``. The
  year must lie in 2000-2100; a date without a year and timestamp numbers are
  rejected. A start later than ``now`` plus the grace is rejected; old
  activities are accepted.
- Participants: a whole number 0-10,000,000; ``约120人``, ``120余人``,
  ``1,200人次`` read as the number they contain; ranges are rejected.
- Links: http(s) URLs must parse; other ``scheme://`` and ``javascript:``,
  ``vbscript:``, ``data:``, ``file:`` entries are rejected; anything else is an
  outlet name kept as text. Each entry at most 1024 bytes of UTF-8.
- Photos: paths relative to the report's folder; checked by magic bytes and by
  Pillow; a file that hides a PDF, script, web page or ZIP is rejected. Repeated
  names are collapsed before counting against the limit; identical content is
  collapsed after hashing.
- Files: UTF-8 (a BOM is allowed). CSV may also be UTF-16 with a BOM, or
  GB18030, which is accepted only if strict UTF-8 fails and the GB18030 text
  has a recognisable header row. A ledger's header is the first of its first 10
  rows with two or more known column names (title rows above it are skipped);
  a ledger lacking a required column is rejected as a whole. In Markdown, the
  text after the front matter is the body unless the front matter has one (then
  that text is kept in ``extra["markdown"]``). Unknown keys in TOML, JSON and
  front matter that look like a typo of a known key are rejected.
"""

from __future__ import annotations

from .readers import read_files
from .record import FIELD_LABELS, IntakeResult, Rejection
from .validate import validate_record

__all__ = ["FIELD_LABELS", "IntakeResult", "Rejection", "read_files", "validate_record"]
