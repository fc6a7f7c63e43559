"""File formats: TOML, JSON, Markdown with front matter, CSV and XLSX ledgers."""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import json
import re
import tomllib
import warnings
import zipfile
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import ParseError

from ..config import Settings
from ..domain import Report
from ..messages import message, render
from .record import (
    FIELD_LABELS,
    REQUIRED,
    TIME_FIELDS,
    IntakeResult,
    Rejection,
    describe,
    field_of,
    has_cjk,
    is_blank,
)
from .validate import validate_record

if TYPE_CHECKING:  # openpyxl and PyYAML load only for the files that need them
    import openpyxl


class _FileProblem(Exception):
    """The whole file is unusable: a code of the vocabulary (``intake.*``) says why."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(render(code, "en", **params))
        self.code, self.params = code, params

    def rejection(self, source: str) -> Rejection:
        return Rejection(source, None, "", str(self), self.code, self.params)


@dataclass(frozen=True)
class _Raw:
    row: int | None
    fields: Mapping[str, object] | None   # None: not a record; ``problem`` says why
    strict_keys: bool
    problem: Rejection | None = None   # with row and source filled in when reported


_MAX_FILE_BYTES = 50 * 2**20
_MAX_ROWS = 10_000


def read_files(paths: Sequence[Path], settings: Settings, units: Collection[str],
               now: datetime, each: Callable[[Report], object] | None = None
               ) -> IntakeResult:
    """Read report files and validate every record in them; ``each`` is told of every
    report as soon as it is valid (render workers start on it while the rest is read).

    A bad file or record becomes a rejection; nothing is raised for bad input.
    Photo paths are relative to each file's folder.
    """
    result = IntakeResult()
    for path in paths:
        if each is not None:
            done = len(result.reports)
        source = str(path)
        try:
            raws = _load(Path(path))
        except _FileProblem as exc:
            result.rejections.append(exc.rejection(source))
            continue
        base_dir = Path(path).parent.absolute()
        for raw in raws:
            _validate_raw(raw, source, base_dir, settings, units, now, result)
        if each is not None:
            for report in result.reports[done:]:
                each(report)
    return result


def _validate_raw(raw: _Raw, source: str, base_dir: Path, settings: Settings,
                  units: Collection[str], now: datetime, result: IntakeResult) -> None:
    if raw.fields is None:
        assert raw.problem is not None
        result.rejections.append(dataclasses.replace(raw.problem, source=source))
        return
    outcome = validate_record(raw.fields, settings=settings, units=units, now=now,
                              base_dir=base_dir, source=source, row=raw.row,
                              strict_keys=raw.strict_keys)
    if isinstance(outcome, Report):
        result.reports.append(outcome)
    else:
        result.rejections.extend(outcome)


def _load(path: Path) -> list[_Raw]:
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise _unsupported(path.suffix.lower())
    try:
        if path.stat().st_size > _MAX_FILE_BYTES:
            raise _FileProblem("intake.file_too_big", limit_mb=_MAX_FILE_BYTES // 2**20)
        data = path.read_bytes()
    except FileNotFoundError:
        raise _FileProblem("intake.file_not_found") from None
    except IsADirectoryError:
        raise _FileProblem("intake.file_is_folder") from None
    except OSError as exc:
        raise _FileProblem("intake.file_unreadable", reason=str(exc.strerror)) from exc
    return reader(data)


def _unsupported(suffix: str) -> _FileProblem:
    if suffix == ".xls":
        return _FileProblem("intake.file_xls")
    if not suffix:
        return _FileProblem("intake.file_no_suffix")
    return _FileProblem("intake.file_type", suffix=suffix)


def _decode_utf8(data: bytes) -> str:
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = bom + exc.start
        raise _FileProblem("intake.file_not_utf8", byte=f"{data[offset]:02X}",
                           offset=offset) from None


def _read_toml(data: bytes) -> list[_Raw]:
    try:
        table = tomllib.loads(_decode_utf8(data))
    except (ValueError, RecursionError) as exc:
        raise _FileProblem("intake.file_bad_toml", detail=str(exc)) from exc
    return [_Raw(None, table, True)]


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    table: dict[str, object] = {}
    for key, value in pairs:
        if key in table:
            raise _FileProblem("intake.file_duplicate_key", key=key)
        table[key] = value
    return table


def _read_json(data: bytes) -> list[_Raw]:
    try:
        doc = json.loads(_decode_utf8(data), object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:  # the parser's English words stay out: where it broke
        raise _FileProblem("intake.file_bad_json", line=exc.lineno, column=exc.colno) from exc
    except (ValueError, RecursionError) as exc:
        raise _FileProblem("intake.file_too_deep") from exc
    if isinstance(doc, dict):
        return [_Raw(None, doc, True)]
    if not isinstance(doc, list) or not doc:
        got = "an empty list" if doc == [] else describe(doc)
        raise _FileProblem("intake.file_not_reports", got=got)
    return [_Raw(i, item, True) if isinstance(item, dict)
            else _Raw(i, None, True, _not_report(i, item))
            for i, item in enumerate(doc, start=1)]


def _not_report(entry: int, item: object) -> Rejection:
    problem = _FileProblem("intake.entry_not_report", entry=entry, got=describe(item))
    return dataclasses.replace(problem.rejection(""), row=entry)


_FRONT_MATTER = re.compile(r"\A(?P<fence>---|\+\+\+)[ \t]*\n(?P<head>.*?)^(?P=fence)[ \t]*$\n?",
                           re.DOTALL | re.MULTILINE)


def _read_markdown(data: bytes) -> list[_Raw]:
    text = _decode_utf8(data).replace("\r\n", "\n")
    found = _FRONT_MATTER.match(text)
    if found is None:
        raise _FileProblem("intake.no_front_matter")
    fields = _front_matter(found["fence"], found["head"])
    rest = text[found.end():].strip()
    if rest:
        has_body = any(field_of(str(k)) == "body" and not is_blank(v) for k, v in fields.items())
        chinese = any(has_cjk(str(k)) for k in fields)
        fields["markdown" if has_body else ("活动内容" if chinese else "body")] = rest
    return [_Raw(None, fields, True)]


def _front_matter(fence: str, head: str) -> dict[str, object]:
    import yaml

    try:
        doc = yaml.safe_load(head) if fence == "---" else tomllib.loads(head)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        kind = "YAML" if fence == "---" else "TOML"
        raise _FileProblem("intake.bad_front_matter", kind=kind, detail=str(exc)) from exc
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise _FileProblem("intake.front_matter_not_table", got=describe(doc))
    return {str(k): v for k, v in doc.items()}


def _read_csv(data: bytes) -> list[_Raw]:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:  # Excel's "Unicode text" export: UTF-16 with a BOM, tab-separated
            return _table_records(_csv_rows(data.decode("utf-16")))
        except UnicodeDecodeError as exc:
            raise _FileProblem("intake.file_not_utf16", offset=exc.start) from None
    try:
        rows = _csv_rows(_decode_utf8(data))
    except _FileProblem as not_utf8:
        rows = _gb18030_rows(data, not_utf8)
    return _table_records(rows)


def _gb18030_rows(data: bytes, not_utf8: _FileProblem) -> list[list[object]]:
    """Excel in China saves "CSV (逗号分隔)" as GB18030; accept it only if it reads as a ledger."""
    neither = _FileProblem("intake.not_gb18030",
                           problem=message(not_utf8.code, **not_utf8.params))
    try:
        rows = _csv_rows(data.decode("gb18030"))
    except (UnicodeDecodeError, _FileProblem):
        raise neither from None
    if _header_index(rows) is None:
        raise neither
    return rows


def _csv_rows(text: str) -> list[list[object]]:
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max(",\t;", key=first.count)
    rows: list[list[object]] = []
    try:
        for cells in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            rows.append(list(cells))
            _check_row_count(len(rows))
    except csv.Error as exc:
        raise _FileProblem("intake.bad_csv", detail=str(exc)) from exc
    return rows


def _check_row_count(count: int) -> None:
    if count > _MAX_ROWS:
        raise _FileProblem("intake.too_many_rows", limit=_MAX_ROWS)


def _read_xlsx(data: bytes) -> list[_Raw]:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        with warnings.catch_warnings():
            # openpyxl warns about Excel features it ignores (data validation, styles)
            warnings.simplefilter("ignore")
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError, TypeError,
            ParseError) as exc:
        raise _FileProblem("intake.bad_xlsx") from exc
    try:
        return _table_records(_sheet_rows(book))
    finally:
        book.close()


def _sheet_rows(book: openpyxl.Workbook) -> list[list[object]]:
    if not book.worksheets:
        raise _FileProblem("intake.no_worksheet")
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    sheet = book.worksheets[0]
    if isinstance(sheet, ReadOnlyWorksheet):
        sheet.reset_dimensions()  # files from other tools often declare a wrong sheet size
    rows: list[list[object]] = []
    try:
        for values in sheet.iter_rows(values_only=True):
            rows.append([_sheet_value(v) for v in values])
            _check_row_count(len(rows))
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError, ParseError) as exc:
        raise _FileProblem("intake.bad_sheet", detail=str(exc)) from exc
    return rows


def _sheet_value(value: object) -> object:
    """Excel cells as the text a person typed; dates stay dates (midnight means a date alone)."""
    if isinstance(value, datetime):
        return value.date() if value.time() == time() else value
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | timedelta):
        return str(value)
    return value


def _cell_text(value: object) -> str:
    return "" if value is None else str(value).strip()


def _header_index(rows: Sequence[Sequence[object]]) -> int | None:
    for index, cells in enumerate(rows[:10]):
        names = {field_of(_cell_text(c)) for c in cells} - {None}
        if len(names) >= 2:
            return index
    return None


def _table_records(rows: Sequence[Sequence[object]]) -> list[_Raw]:
    if not any(not is_blank(c) for cells in rows for c in cells):
        raise _FileProblem("intake.ledger_empty")
    index = _header_index(rows)
    if index is None:
        raise _FileProblem("intake.no_header",
                           expected=[FIELD_LABELS[n] for n in (*REQUIRED, "time")])
    headers = [_cell_text(c) for c in rows[index]]
    _check_columns(headers, index + 1)
    records = [_Raw(number, _row_fields(headers, cells), False)
               for number, cells in enumerate(rows[index + 1:], start=index + 2)
               if not all(is_blank(c) for c in cells)]
    if not records:
        raise _FileProblem("intake.no_rows", row=index + 1)
    return records


def _check_columns(headers: list[str], header_row: int) -> None:
    seen: dict[str, str] = {}
    for header in headers:
        name = field_of(header)
        if name in seen:
            raise _FileProblem("intake.duplicate_columns", first=seen[name], second=header,
                               row=header_row, label=FIELD_LABELS[name])
        if name is not None:
            seen[name] = header
    missing = [FIELD_LABELS[n] for n in REQUIRED if n not in seen]
    if not set(TIME_FIELDS) & seen.keys():
        missing.append(FIELD_LABELS["time"])
    if missing:
        raise _FileProblem("intake.missing_columns", missing=missing, row=header_row)


def _column_letter(number: int) -> str:
    """Excel's name of a column (1 -> A, 27 -> AA), without importing openpyxl for a CSV."""
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _row_fields(headers: list[str], cells: Sequence[object]) -> dict[str, object]:
    fields: dict[str, object] = {}
    for column, value in enumerate(cells):
        letter = _column_letter(column + 1)
        key = (headers[column] if column < len(headers) else "") or f"column {letter}"
        fields[f"{key} (column {letter})" if key in fields else key] = value
    return fields


_READERS: dict[str, Callable[[bytes], list[_Raw]]] = {
    ".toml": _read_toml, ".json": _read_json, ".md": _read_markdown, ".markdown": _read_markdown,
    ".csv": _read_csv, ".xlsx": _read_xlsx,
}
