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
    N_("auth.name_length"): (),
    N_("auth.user_exists"): ("name",),
    N_("auth.no_user_to_change"): ("name",),
    N_("auth.passwords_differ"): (),
    N_("auth.no_password"): (),
    N_("auth.no_stage"): ("name", "known"),
    N_("serve.bad_host"): ("host", "reason"),
    N_("serve.port_in_use"): ("host", "port", "next"),
    N_("serve.port_privileged"): ("host", "port"),
    N_("serve.cannot_listen"): ("host", "port", "reason"),
    N_("serve.no_secret"): ("name",),
    N_("init.exists"): ("path",),
    N_("cli.editor_failed"): ("editor",),
    N_("cli.no_editor"): ("editor", "variable", "reason"),
    N_("cli.wechat_folder_mode"): (),
    N_("cli.bad_date"): ("text",),
    N_("cli.bad_level"): ("level",),
    N_("cli.bad_week"): ("text",),
    N_("cli.no_such_week"): ("text", "year", "week"),
    N_("notify.no_recipients"): ("what",),
    N_("notify.no_smtp"): (),
    N_("notify.no_message"): ("id",),
    N_("files.outside"): ("path", "root"),
    N_("schedule.another_running"): ("holder",),
    N_("publish.photo_missing"): ("photo", "folder"),
    N_("publish.no_secret"): ("name",),
    N_("draft.no_markdown"): ("id", "path"),
    N_("draft.no_article_file"): ("id", "path"),
    N_("draft.bad_article_name"): ("id", "stem"),
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
    N_("push.left_turns_late"): ("limit",),
    N_("push.left_overdue"): ("limit",),
    N_("push.left_on_time"): ("limit",),
    N_("attention.needs_human"): ("day",),
    N_("attention.sent_unconfirmed"): ("day",),
    N_("attention.awaiting_manual"): (),
    N_("attention.deferred"): (),
    N_("attention.failed"): ("error",),
    N_("push.not_awaiting_confirmation"): ("date", "state"),
    N_("push.not_awaiting_person"): ("date", "state"),
    N_("push.changed_just_now"): ("date",),
    N_("push.draft_not_waiting"): ("id",),
    N_("push.job_changing"): ("id",),
    N_("push.handed_back"): ("date", "error"),
    N_("push.not_sent_checked"): ("actor",),
    N_("wechat.quota_wait"): ("push", "error"),
    N_("wechat.gave_up"): ("push", "reason"),
    N_("wechat.deferred"): ("push", "error"),
    N_("wechat.send_by_hand"): ("push",),
    N_("wechat.removed"): ("push", "status"),
    N_("wechat.left_draft_box"): ("push", "date"),
    N_("wechat.e.whitelist"): ("errcode",),
    N_("wechat.e.secret"): ("errcode",),
    N_("wechat.e.40013"): ("errcode",),
    N_("wechat.e.41002"): ("errcode",),
    N_("wechat.e.41004"): ("errcode",),
    N_("wechat.e.40243"): ("errcode",),
    N_("wechat.e.50004"): ("errcode",),
    N_("wechat.e.50007"): ("errcode",),
    N_("wechat.e.89503"): ("errcode",),
    N_("wechat.e.89506"): ("errcode",),
    N_("wechat.e.89507"): ("errcode",),
    N_("wechat.e.40001"): ("errcode",),
    N_("wechat.e.40014"): ("errcode",),
    N_("wechat.e.42001"): ("errcode",),
    N_("wechat.e.41001"): ("errcode",),
    N_("wechat.e.bug"): ("errcode",),
    N_("wechat.e.40033"): ("errcode",),
    N_("wechat.e.44003"): ("errcode",),
    N_("wechat.e.45002"): ("errcode",),
    N_("wechat.e.45003"): ("errcode",),
    N_("wechat.e.45004"): ("errcode",),
    N_("wechat.e.45110"): ("errcode",),
    N_("wechat.e.45008"): ("errcode",),
    N_("wechat.e.40004"): ("errcode",),
    N_("wechat.e.40005"): ("errcode",),
    N_("wechat.e.40009"): ("errcode",),
    N_("wechat.e.40012"): ("errcode",),
    N_("wechat.e.40007"): ("errcode",),
    N_("wechat.e.41039"): ("errcode",),
    N_("wechat.e.40114"): ("errcode",),
    N_("wechat.e.45166"): ("errcode",),
    N_("wechat.e.53402"): ("errcode",),
    N_("wechat.e.88000"): ("errcode",),
    N_("wechat.e.45009"): ("errcode", "endpoint"),
    N_("wechat.e.45011"): ("errcode", "endpoint"),
    N_("wechat.e.45028"): ("errcode",),
    N_("wechat.e.45065"): ("errcode",),
    N_("wechat.e.45066"): ("errcode",),
    N_("wechat.e.48001"): ("errcode", "endpoint"),
    N_("wechat.e.48004"): ("errcode", "endpoint"),
    N_("wechat.e.50002"): ("errcode",),
    N_("wechat.e.53500"): ("errcode",),
    N_("wechat.e.53501"): ("errcode",),
    N_("wechat.e.53502"): ("errcode",),
    N_("wechat.e.53503"): ("errcode",),
    N_("wechat.e.53504"): ("errcode",),
    N_("wechat.e.53505"): ("errcode",),
    N_("wechat.e.53600"): ("errcode",),
    N_("wechat.e.61500"): ("errcode", "endpoint"),
    N_("wechat.e.61501"): ("errcode", "endpoint"),
    N_("wechat.e.61503"): ("errcode", "endpoint"),
    N_("wechat.e.unknown"): ("endpoint", "errcode"),
    N_("wechat.e.system"): ("endpoint",),
    N_("wechat.api_error"): ("text", "then", "said"),
    N_("wechat.then_retry"): (),
    N_("wechat.then_reconcile"): (),
    N_("wechat.no_connect"): ("endpoint", "reason"),
    N_("wechat.timeout"): ("endpoint", "reason", "then"),
    N_("wechat.broken"): ("endpoint", "reason", "then"),
    N_("wechat.http_status"): ("endpoint", "status", "then"),
    N_("wechat.http_config"): ("endpoint", "status"),
    N_("wechat.bad_answer"): ("endpoint", "problem", "then"),
    N_("wechat.answer_not_json"): (),
    N_("wechat.answer_not_object"): (),
    N_("wechat.answer_bad_errcode"): (),
    N_("wechat.answer_missing"): ("key",),
    N_("wechat.kept_failing"): ("error",),
    N_("wechat.draft_not_taken"): ("tries", "error"),
    N_("wechat.submit_refused"): ("tries", "error"),
    N_("wechat.see_attempts"): (),
    N_("wechat.push_too_large"): (),
    N_("wechat.push_bad_xml"): ("detail",),
    N_("wechat.push_no_info"): (),
    N_("wechat.nothing_left"): (),
    N_("wechat.still_in_progress"): ("checks",),
    N_("wechat.ended_status"): ("status", "failed"),
    N_("wechat.confirmed_by"): ("actor",),
    # intake rejections: one report, one field
    N_("intake.duplicate_field"): ("key", "first", "label", "name"),
    N_("intake.file_xls"): (),
    N_("intake.file_type"): ("suffix",),
    N_("intake.file_no_suffix"): (),
    N_("intake.file_too_big"): ("limit_mb",),
    N_("intake.file_not_found"): (),
    N_("intake.file_is_folder"): (),
    N_("intake.file_unreadable"): ("reason",),
    N_("intake.file_not_utf8"): ("byte", "offset"),
    N_("intake.file_bad_toml"): ("detail",),
    N_("intake.file_duplicate_key"): ("key",),
    N_("intake.file_bad_json"): ("line", "column"),
    N_("intake.file_too_deep"): (),
    N_("intake.file_not_reports"): ("got",),
    N_("intake.entry_not_report"): ("entry", "got"),
    N_("intake.no_front_matter"): (),
    N_("intake.bad_front_matter"): ("kind", "detail"),
    N_("intake.front_matter_not_table"): ("got",),
    N_("intake.file_not_utf16"): ("offset",),
    N_("intake.not_gb18030"): ("problem",),
    N_("intake.bad_csv"): ("detail",),
    N_("intake.too_many_rows"): ("limit",),
    N_("intake.bad_xlsx"): (),
    N_("intake.no_worksheet"): (),
    N_("intake.bad_sheet"): ("detail",),
    N_("intake.ledger_empty"): (),
    N_("intake.no_header"): ("expected",),
    N_("intake.no_rows"): ("row",),
    N_("intake.duplicate_columns"): ("first", "second", "row", "label"),
    N_("intake.missing_columns"): ("missing", "row"),
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
    # config.toml, units, word lists, templates, email and SMTP (issue 11c)
    N_("config.problems"): ("path", "count"),
    N_("config.file_missing"): ("folder",),
    N_("config.not_utf8"): ("file", "byte"),
    N_("config.not_toml"): ("file", "line", "column", "content", "detail"),
    N_("config.no_account_name"): (),
    N_("config.no_units"): (),
    N_("config.unknown_key"): ("key",),
    N_("config.wrong_type"): ("key", "kind", "value"),
    N_("config.bad_value"): ("key", "rule", "value"),
    N_("config.must_positive"): (),
    N_("config.must_non_negative"): (),
    N_("config.must_non_empty"): (),
    N_("config.must_range"): ("low", "high"),
    N_("config.must_max_chars"): ("limit",),
    N_("config.must_articles"): (),
    N_("config.must_lease"): (),
    N_("config.must_article_days"): (),
    N_("config.must_be_one_of"): ("choices",),
    N_("config.must_url"): ("example",),
    N_("config.must_env_name"): (),
    N_("config.must_weekday"): (),
    N_("config.not_network"): ("key", "value"),
    N_("config.timezone"): ("key", "value"),
    N_("config.clock_time"): ("key", "value"),
    N_("config.duration"): ("key", "value"),
    N_("config.appid_required"): ("key", "mode"),
    N_("config.wechat_secret"): ("key",),
    N_("config.smtp_password"): ("key",),
    N_("config.not_email"): ("key", "value"),
    N_("config.no_stages"): ("key",),
    N_("config.missing_stage_name"): ("key",),
    N_("config.not_names"): ("key", "value"),
    N_("config.stage_twice"): ("key", "name"),
    N_("config.media_unknown_key"): ("file", "key"),
    N_("config.outlet_not_table"): ("key",),
    N_("config.outlet_name"): ("key", "value"),
    N_("config.outlet_level"): ("key", "value"),
    N_("config.outlet_lists"): ("key",),
    N_("config.type_key"): ("key",),
    N_("config.missing_type_label"): ("key",),
    N_("config.label_twice"): ("key", "label"),
    N_("config.units_not_list"): ("key",),
    N_("config.missing"): ("key",),
    N_("config.unit_level"): ("key", "value"),
    N_("config.unit_twice"): ("key", "name"),
    N_("config.unit_parent"): ("key", "name", "problem"),
    N_("unit.district_parent"): ("parent",),
    N_("unit.needs_parent"): ("level", "wanted"),
    N_("unit.parent_unknown"): ("parent",),
    N_("unit.parent_level"): ("level", "wanted", "parent", "parent_level"),
    N_("config.missing_date"): ("key",),
    N_("config.end_before_start"): ("key", "start"),
    N_("config.target_level"): ("key",),
    N_("config.unknown_type"): ("key", "value"),
    N_("config.target"): ("key", "value"),
    N_("config.items_not_list"): ("key",),
    N_("config.item_key_twice"): ("key", "item"),
    N_("config.missing_item_label"): ("key",),
    N_("config.measure"): ("key", "value"),
    N_("config.missing_who"): ("key",),
    N_("config.who"): ("key", "value"),
    N_("unit.exists"): ("name",),
    N_("unit.name_empty"): (),
    N_("unit.row_name_empty"): (),
    N_("unit.cannot_add"): ("name", "problem"),
    N_("unit.bad_email"): ("name", "email"),
    N_("unit.level_unknown"): ("value",),
    N_("unit.file_kind"): ("file",),
    N_("unit.no_file"): ("path",),
    N_("unit.not_utf8"): ("file", "byte"),
    N_("unit.bad_xlsx"): ("file", "detail"),
    N_("unit.file_empty"): ("file",),
    N_("unit.no_columns"): ("file", "found"),
    N_("unit.not_found"): ("id",),
    N_("words.missing"): ("file",),
    N_("words.not_utf8"): ("file", "byte"),
    N_("words.unreadable"): ("file", "reason"),
    N_("words.unknown_section"): ("file", "line", "section"),
    N_("words.before_section"): ("file", "line", "text"),
    N_("words.not_entry"): ("file", "line", "text"),
    N_("words.no_right_form"): ("file", "line", "text"),
    N_("words.same_word"): ("file", "line", "text"),
    N_("words.not_glossary"): ("file", "line", "text"),
    N_("words.no_variant"): ("file", "line", "text"),
    N_("words.variant_is_official"): ("file", "line", "variant"),
    N_("words.allowed_too"): ("file", "line", "word", "allowed_file", "allowed_line"),
    N_("template.type_unknown"): ("type",),
    N_("template.missing"): ("name", "folders"),
    N_("template.syntax"): ("name", "line", "detail"),
    N_("template.failed_at"): ("name", "line", "detail"),
    N_("template.failed"): ("name", "detail"),
    N_("template.css"): ("template", "detail"),
    N_("email.template_syntax"): ("name", "line", "detail"),
    N_("email.template_missing"): ("name", "folder"),
    N_("email.template_failed"): ("name", "detail"),
    N_("email.template_failed_at"): ("name", "line", "detail"),
    N_("email.template_css"): ("name", "detail"),
    N_("smtp.bad_address"): ("addresses",),
    N_("smtp.no_starttls"): ("server",),
    N_("smtp.no_password"): ("env",),
    N_("smtp.no_auth"): ("server",),
    N_("smtp.no_auth_plain"): ("server",),
    N_("smtp.ascii_login"): ("env",),
    N_("smtp.login_failed"): ("server", "user", "reply"),
    N_("smtp.refused_connection"): ("server",),
    N_("smtp.timeout"): ("server",),
    N_("smtp.unresolvable"): ("server", "reason"),
    N_("smtp.untrusted"): ("server", "reason"),
    N_("smtp.tls_failed"): ("server", "reason"),
    N_("smtp.answered"): ("server", "reply"),
    N_("smtp.unreachable"): ("server", "reason"),
    N_("smtp.recipients_refused"): ("server", "replies"),
    N_("smtp.message_refused"): ("server", "reply"),
    N_("smtp.disconnected"): ("server",),
    N_("smtp.send_timeout"): ("server",),
    N_("smtp.send_failed"): ("server", "reason"),
    N_("media.empty_key"): (),
    N_("media.level_unknown"): ("value", "levels"),
    N_("media.classified"): ("name",),
    N_("reach.nothing_to_fetch"): (),
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
    """One nested message: a code with parameters ({"code", "params"}, ``Coded``), a text
    column written by ``to_column``, or plain text."""
    if isinstance(value, Coded):
        return value.text(language)
    if isinstance(value, dict):
        return render(value["code"], language, **value.get("params", {}))
    return from_column(str(value), language)


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


_MAIL_KINDS_ZH = {"digest": "日报", "bulletin": "周报"}


def _mail_kind(value: Any, language: str) -> str:
    return _MAIL_KINDS_ZH.get(str(value), str(value)) if language == "zh_CN" else str(value)


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


_VALUE_KINDS = {  # a TOML value's kind (config.toml): (English, Chinese)
    "str": ("a string", "文字（用英文双引号括起来）"), "int": ("a whole number", "整数"),
    "float": ("a number", "数字"), "bool": ("true or false", "true 或 false"),
    "list": ("a list", "列表（[…]）"), "dict": ("a table", "表（[节名] 或 {…}）"),
    "date": ("a date like 2026-06-01", "日期（如 2026-06-01）"),
}


def _value_kind(value: Any, language: str) -> str:
    words = _VALUE_KINDS.get(str(value), (str(value), str(value)))
    return words[1] if language == "zh_CN" else words[0]


def _level(value: Any, language: str) -> str:
    """A unit level key ("street"): 街道/镇 in Chinese, the key in English."""
    if language != "zh_CN":
        return str(value)
    from .domain import LEVEL_LABELS, Level

    try:
        return LEVEL_LABELS[Level(str(value))]
    except ValueError:
        return str(value)


def _options(value: Any, language: str) -> str:
    """Values to type as they are ("calendar" or "workdays"), quoted as TOML writes them."""
    quoted = [f'"{v}"' for v in value]
    joiner, last = ("、", " 或 ") if language == "zh_CN" else (", ", " or ")
    return joiner.join(quoted[:-1]) + last + quoted[-1] if len(quoted) > 1 else "".join(quoted)


SPECS: dict[str, Callable[[Any, str], str]] = {
    "draft_state": _draft_state, "states": _states, "action": _action,
    "machine": _machine, "finding_state": _finding_state, "names": _names,
    "findings": _findings, "message": _message, "choices": _choices, "quoted": _quoted,
    "types": _types, "sentences": _sentences, "field": _field,
    "article_field": _article_field, "mail_kind": _mail_kind, "value_kind": _value_kind,
    "level": _level, "options": _options,
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
        # Worded once per language: one reason is shared by thousands of stories (the
        # push planner's left-over), and a message never changes once made.
        texts: dict[str, str] = self.__dict__.setdefault("_texts", {})
        if language not in texts:
            texts[language] = render(self.code, language, **self.params)
        return texts[language]

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled by code and parameters (render workers send problems back): str's own
        # reduction would pass the English sentence to __new__ as if it were the code.
        return (_coded, (self.code, self.params))

    @staticmethod
    def load(item: Any) -> str:
        if isinstance(item, dict) and "code" in item:
            return Coded(item["code"], **item.get("params", {}))
        return str(item)


def _coded(code: str, params: dict[str, Any]) -> Coded:
    return Coded(code, **params)


def of_error(error: BaseException) -> str:
    """An error as a message to keep: ``Coded`` when it carries a code, else its text."""
    code = getattr(error, "code", "")
    return Coded(code, **getattr(error, "params", {})) if code else str(error)


def as_data(item: Any) -> Any:
    """A message as a parameter of another (``{name:message}``): coded ones as data."""
    return message(item.code, **item.params) if isinstance(item, Coded) else item


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


def load_column(text: str) -> str:
    """A text column written by ``to_column`` as a ``Coded`` (plain text as it is)."""
    if text.startswith('{"code"'):
        try:
            data = json.loads(text)
        except ValueError:
            return text
        return Coded(data["code"], **data.get("params", {}))
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
