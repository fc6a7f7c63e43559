"""The error vocabulary: every error a person can see is a code with parameters,
defined once here; the words come from gettext catalogues built with Babel.

``pipeline/locale/<lang>/LC_MESSAGES/pipeline.po`` holds the Chinese (``zh_CN``) and
English (``en``) text of every code; ``make`` and the package build compile them to
``.mo`` (``python -m pipeline.messages compile``). Pages, emails, the phone form, the
bulletin and the API's ``message`` field speak Chinese; the CLI follows ``LANG``
(Chinese for ``zh_*``, English otherwise). A test extracts the codes and checks that
both catalogues translate every one.

A parameter whose words differ by language names a word table in the text
(``{state:draft_state}``: 待审核 / 'drafted'; see ``SPECS``); a message inside a message
is ``{problem:message}``. Messages kept for later (a draft's WeChat problems, an alert's
detail, a push report) are ``Coded``: the English sentence as a ``str`` that keeps its
code, stored as code and parameters (``dump``, ``to_column``) and said in the reader's
language when shown (``text_of``, ``from_column``).
"""

from __future__ import annotations

import gettext
import json
import os
import string
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

LOCALE = Path(__file__).parent / "locale"
DOMAIN = "pipeline"
LANGUAGES = ("zh_CN", "en")


def N_(code: str) -> str:
    """Marks a code for extraction (the catalogue's msgid); returns it unchanged."""
    return code


# Every code the product can show, with the parameters its text uses.
CODES: dict[str, tuple[str, ...]] = {
    N_("store.unavailable"): ("detail",),
    N_("store.read_only"): ("database",),
    N_("files.folder_unwritable"): ("folder", "reason"),
    N_("files.draft_unstored"): ("reason",),
    N_("draft.not_found"): ("id",),
    N_("auth.password_short"): ("length", "minimum"),
    N_("auth.password_repeated"): (),
    N_("auth.password_common"): (),
    N_("auth.no_user"): ("name",),
    N_("http.payload_too_large"): ("limit",),
    N_("http.bad_json"): (),
    N_("http.json_too_complex"): ("limit",),
    N_("http.service_unavailable"): (),
    N_("schedule.lock_lost"): ("holder",),
    # review and lifecycle refusals
    N_("draft.illegal_move"): ("id", "state", "action", "allowed"),
    N_("draft.changed"): ("id",),
    N_("draft.edit_conflict"): ("id", "version"),
    N_("draft.not_editable"): ("id", "state"),
    N_("draft.no_photo"): ("id", "photo"),
    N_("draft.orphan"): ("id",),
    N_("draft.not_in_push"): ("id",),
    N_("state.illegal_move"): ("machine", "id", "state", "action", "allowed"),
    N_("state.changed"): ("machine", "id"),
    N_("review.not_signer"): ("id", "stage", "signers", "actor"),
    N_("review.signed_other_stage"): ("actor", "stage", "id", "open"),
    N_("review.note_required"): ("action",),
    N_("review.problems"): ("id", "problems"),
    N_("finding.blocking"): ("id", "count", "findings"),
    N_("finding.not_found"): ("id", "finding"),
    N_("finding.done"): ("finding", "state"),
    N_("finding.no_suggestion"): ("finding",),
    N_("finding.text_changed"): ("id", "finding"),
    N_("finding.reason_required"): (),
    # WeChat's rules for an article, and notes on how it was written
    N_("wechat.title_empty"): (),
    N_("wechat.too_long"): ("field", "length", "limit"),
    N_("wechat.content_chars"): ("length", "limit"),
    N_("wechat.content_bytes"): ("size", "limit"),
    N_("render.remote_image"): ("src",),
    N_("render.lead_left_out"): ("date", "place"),
    # the push and publishing, as the editors read them (alerts, push reports)
    N_("push.missed"): ("date",),
    N_("push.day_taken"): ("date",),
    N_("push.failed_today"): ("reason",),
    N_("push.missed_day"): ("date", "reason"),
    N_("push.resuming"): (),
    N_("push.claimed_elsewhere"): (),
    N_("push.wechat_under_way"): ("state",),
    N_("push.wechat_failed"): ("error",),
    N_("push.withdraw_refused"): ("id", "state"),
    N_("push.withdraw_alert"): ("id", "state"),
    N_("wechat.quota_wait"): ("push", "error"),
    N_("wechat.gave_up"): ("push", "reason"),
    N_("wechat.deferred"): ("push", "error"),
    N_("wechat.send_by_hand"): ("push",),
    N_("wechat.removed"): ("push", "status"),
    N_("wechat.left_draft_box"): ("push", "date"),
    # intake rejections: one report, one field
    N_("intake.duplicate_field"): ("key", "first", "label", "name"),
    N_("intake.unknown_field"): ("key", "guess"),
    N_("intake.extra_not_text"): ("key", "problem"),
    N_("intake.missing"): ("key",),
    N_("intake.not_text"): ("got",),
    N_("intake.not_text_list"): ("got",),
    N_("intake.bad_text"): ("value", "problem"),
    N_("text.nested"): (),
    N_("text.nul"): ("char", "position"),
    N_("text.surrogate"): ("char", "position"),
    N_("text.control"): ("char", "name", "position"),
    N_("intake.no_units"): ("value",),
    N_("intake.unknown_unit_close"): ("value", "close"),
    N_("intake.unknown_unit"): ("value", "count", "examples"),
    N_("intake.unknown_type"): ("value", "accepted"),
    N_("intake.title_long"): ("value", "length", "limit"),
    N_("intake.body_long"): ("length", "limit"),
    N_("intake.participants_not_text"): ("got",),
    N_("intake.participants_long"): ("value", "length", "limit"),
    N_("time.forms"): (),
    N_("time.implausible_year"): ("year", "first", "last"),
    N_("time.no_month"): ("month",),
    N_("time.no_day"): ("year", "month", "days", "day"),
    N_("time.no_clock"): ("clock",),
    N_("time.no_zone"): ("value",),
    N_("time.without_date"): (),
    N_("time.not_a_time"): ("got",),
    N_("time.invalid"): ("value", "reason", "forms"),
    N_("time.timestamp"): ("value", "forms"),
    N_("time.no_year"): ("value", "forms"),
    N_("time.unreadable"): ("value", "forms"),
    N_("time.reason_forms"): ("reason", "forms"),
    N_("time.date_alone"): ("date", "time"),
    N_("time.both"): ("time", "start", "end"),
    N_("time.missing"): ("time", "start", "end"),
    N_("time.range_and_end"): ("field", "end"),
    N_("time.end_range"): ("end",),
    N_("time.disagree"): ("date", "day", "field", "other"),
    N_("time.end_before_start"): ("end", "start"),
    N_("time.future"): ("start", "now"),
    N_("link.too_long"): ("value", "size", "limit"),
    N_("intake.partner_too_long"): ("value", "size", "limit"),
    N_("link.scheme"): ("value", "scheme"),
    N_("link.invalid"): ("value",),
    N_("photo.paths_here"): (),
    N_("photo.too_many"): ("count", "limit"),
    N_("photo.nul_name"): ("name",),
    N_("photo.encoded_name"): ("name",),
    N_("photo.web_address"): ("name",),
    N_("photo.bad_path"): ("name", "reason"),
    N_("photo.unresolvable"): ("name", "reason"),
    N_("photo.outside"): ("name",),
    N_("photo.not_image"): ("name", "kind"),
    N_("photo.disguised"): ("name", "kind", "what"),
    N_("photo.damaged"): ("name", "kind", "damage"),
    N_("photo.pixels"): ("name", "width", "height", "megapixels", "limit"),
    N_("photo.not_file"): ("name",),
    N_("photo.empty"): ("name",),
    N_("photo.too_big"): ("name", "mb", "bytes", "limit_mb", "limit"),
    N_("photo.not_found"): ("name",),
    N_("photo.unreadable"): ("name", "reason"),
    # the loser of a sign-off or release race: who did what first (issue 16)
    N_("review.signed_meanwhile"): ("by", "id", "stage", "at"),
    N_("review.moved_meanwhile"): ("by", "id", "action", "state", "at"),
    N_("review.no_stage"): ("stage", "stages"),
    N_("push.released_meanwhile"): ("by", "date", "count", "at"),
    N_("push.confirmed_meanwhile"): ("by", "date", "count", "at"),
}

# The HTTP status of a refused request, by code (anything else is a conflict: 409).
STATUS: dict[str, int] = {
    "draft.not_found": 404, "finding.not_found": 404, "auth.no_user": 404,
    "review.note_required": 422, "finding.reason_required": 422,
    "store.unavailable": 503, "store.read_only": 503,
    "review.no_stage": 422,
}


def status(code: str) -> int:
    return STATUS.get(code, 409)


# Parameters whose words depend on the language: the catalogue names them with a format
# spec, e.g. ``{state:draft_state}`` ("待审核" in Chinese, "'drafted'" in English).
def _draft_state(value: Any, language: str) -> str:
    from .lifecycle import DRAFT_LABELS

    return DRAFT_LABELS.get(str(value), str(value)) if language == "zh_CN" else str(value)


def _states(value: Any, language: str) -> str:
    if language == "zh_CN":
        return "、".join(f"「{_draft_state(v, language)}」" for v in value) or "（无）"
    return " or ".join(f"'{v}'" for v in value) or "no"


def _action(value: Any, language: str) -> str:
    from .lifecycle import ACTION_LABELS, ACTION_WORDS

    table = ACTION_LABELS if language == "zh_CN" else ACTION_WORDS
    return table.get(str(value), str(value))


_MACHINES_ZH = {"draft": "稿件", "push": "推送", "publication": "发布记录",
                "wechat_job": "微信任务", "outbox": "待发邮件", "finding": "校对提示"}
FINDING_KINDS_ZH = {"typo": "错别字", "banned": "禁用词", "caution": "慎用词",
                    "name": "规范名称", "privacy": "个人信息", "format": "格式"}
_FINDING_STATES_ZH = {"open": "待处理", "applied": "已采用建议", "dismissed": "已忽略",
                      "confirmed": "已确认"}


def _machine(value: Any, language: str) -> str:
    if language == "zh_CN":
        return _MACHINES_ZH.get(str(value), str(value))
    return str(value).replace("_", " ")


def _finding_state(value: Any, language: str) -> str:
    return _FINDING_STATES_ZH.get(str(value), str(value)) if language == "zh_CN" else str(value)


def _findings(value: Any, language: str) -> str:
    """[(kind, text), …] of proofreading findings."""
    if language == "zh_CN":
        return "；".join(f"{FINDING_KINDS_ZH.get(k, k)}“{t}”" for k, t in value)
    return "; ".join(f"{k} '{t}'" for k, t in value)


def _names(value: Any, language: str) -> str:
    if isinstance(value, str):
        return value
    return ("、" if language == "zh_CN" else ", ").join(str(v) for v in value)


def _message(value: Any, language: str) -> str:
    """One nested message: a code with parameters ({"code", "params"}) or text."""
    if isinstance(value, dict):
        return render(value["code"], language, **value.get("params", {}))
    return str(value)


_ARTICLE_FIELDS_ZH = {"title": "标题", "author": "作者", "digest": "摘要"}


def _article_field(value: Any, language: str) -> str:
    return _ARTICLE_FIELDS_ZH.get(str(value), str(value)) if language == "zh_CN" else str(value)


def _field(value: Any, language: str) -> str:
    """A report field as written; a bare English key ("start") in Chinese is its label."""
    if language != "zh_CN":
        return str(value)
    from .intake.record import FIELD_LABELS

    return FIELD_LABELS.get(str(value), str(value))


def _choices(value: Any, language: str) -> str:
    if language == "zh_CN":
        return "或".join(f"「{v}」" for v in value)
    return " or ".join(f"'{v}'" for v in value)


def _quoted(value: Any, language: str) -> str:
    if language == "zh_CN":
        return "、".join(f"「{v}」" for v in value)
    return ", ".join(f"'{v}'" for v in value)


def _types(value: Any, language: str) -> str:
    """[(label, key), …] of activity types: 讲座 in Chinese, 讲座 (lecture) in English."""
    if language == "zh_CN":
        return "、".join(label for label, _ in value)
    return ", ".join(f"{label} ({key})" for label, key in value)


def _sentences(value: Any, language: str) -> str:
    """A list of messages, each a code with parameters ({"code", "params"}) or text."""
    parts = [_message(v, language) for v in value]
    if language == "zh_CN":
        return "；".join(p.rstrip("。") for p in parts)
    return "; ".join(p.rstrip(".") for p in parts)


SPECS: dict[str, Callable[[Any, str], str]] = {
    "draft_state": _draft_state, "states": _states, "action": _action,
    "machine": _machine, "finding_state": _finding_state, "names": _names,
    "findings": _findings, "message": _message, "choices": _choices, "quoted": _quoted,
    "types": _types, "sentences": _sentences, "field": _field,
    "article_field": _article_field,
}


class _Formatter(string.Formatter):
    def __init__(self, language: str) -> None:
        self.language = language

    def format_field(self, value: Any, format_spec: str) -> str:
        words = SPECS.get(format_spec)
        if words is not None:
            return words(value, self.language)
        return str(super().format_field(value, format_spec))


def message(code: str, **params: Any) -> dict[str, Any]:
    """A code with parameters as data (kept in the database, rendered when read)."""
    return {"code": code, "params": params}


class Coded(str):
    """A message that is its English sentence (logs, comparisons, joins) and keeps its code
    and parameters, so a Chinese page can say it in Chinese. Stored as ``message()`` data
    (``dump``) and read back with ``load``; an old row's plain sentence stays as it is."""

    code: str
    params: dict[str, Any]

    def __new__(cls, code: str, **params: Any) -> Coded:
        made = super().__new__(cls, render(code, "en", **params))
        made.code, made.params = code, params
        return made

    def text(self, language: str = "zh_CN") -> str:
        return render(self.code, language, **self.params)

    @staticmethod
    def load(item: Any) -> str:
        if isinstance(item, dict) and "code" in item:
            return Coded(item["code"], **item.get("params", {}))
        return str(item)


def dump(items: Any) -> list[Any]:
    """Messages as JSON data: codes with parameters, plain text as it is."""
    return [message(i.code, **i.params) if isinstance(i, Coded) else i for i in items]


def to_column(text: str) -> str:
    """A message for a text column: a coded one as JSON data, plain text as it is."""
    if isinstance(text, Coded):
        return json.dumps(message(text.code, **text.params), ensure_ascii=False)
    return text


def from_column(text: str, language: str = "zh_CN") -> str:
    """A text column written by ``to_column`` in ``language`` (lines added later kept)."""
    head, newline, rest = text.partition("\n")
    if head.startswith('{"code"'):
        try:
            data = json.loads(head)
        except ValueError:
            return text
        return render(data["code"], language, **data.get("params", {})) + newline + rest
    return text


def text_of(item: Any, language: str = "zh_CN") -> str:
    """A message (coded, stored data or plain text) in ``language``."""
    if isinstance(item, Coded):
        return item.text(language)
    return _message(item, language)


@cache
def _catalogue(language: str) -> gettext.NullTranslations:
    compiled = LOCALE / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
    source = compiled.with_suffix(".po")
    fresh = compiled.exists() and (not source.exists()
                                   or compiled.stat().st_mtime >= source.stat().st_mtime)
    if fresh:
        with compiled.open("rb") as handle:
            return gettext.GNUTranslations(handle)
    # an editable install never built, or a .po edited since: read the .po (Babel is installed)
    from babel.messages.pofile import read_po

    translations = gettext.NullTranslations()
    if source.exists():
        with source.open("rb") as handle:
            catalog = read_po(handle)
        table = {str(m.id): str(m.string) for m in catalog if m.id and m.string}
        translations.gettext = lambda text: table.get(text, text)  # type: ignore[method-assign,assignment]
    return translations


def cli_language(environ: Any = None) -> str:
    """The CLI's language from the locale variables: Chinese for zh_*, else English."""
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "")
        if value:
            return "zh_CN" if value.lower().startswith("zh") else "en"
    return "en"


def render(code: str, language: str = "zh_CN", **params: Any) -> str:
    """The sentence for ``code`` in ``language`` with its parameters filled in."""
    template = _catalogue(language).gettext(code)
    if template == code:  # no translation: never show a bare code to a person
        template = _catalogue("en").gettext(code)
    try:
        return _Formatter(language).format(template, **params)
    except (KeyError, IndexError, ValueError, TypeError):
        return template


def compile_catalogues() -> list[Path]:
    """``.po`` -> ``.mo`` for every language (run by ``make`` and the package build)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written = []
    for language in LANGUAGES:
        source = LOCALE / language / "LC_MESSAGES" / f"{DOMAIN}.po"
        with source.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        target = source.with_suffix(".mo")
        with target.open("wb") as out:
            write_mo(out, catalog)
        written.append(target)
    return written


if __name__ == "__main__":  # python -m pipeline.messages compile
    if sys.argv[1:] == ["compile"]:
        for path in compile_catalogues():
            print(f"compiled {path}")
