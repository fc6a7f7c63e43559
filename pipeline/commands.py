"""The CLI's commands: each loads what it needs through the context, calls the
stage functions and prints text (English) or one JSON document (``--json``).

No business rules live here; the web layer calls the same stage functions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import review, views
from .config import Settings, UnitSpec
from .domain import parse_level
from .drafts import read_markdown
from .errors import PipelineError, RaceLost
from .messages import cli_language, text_of
from .proofread.check import count_line
from .readcmds import _deadline, _out
from .submitcmd import where as _where
from .textfmt import ZH, cli_lang, pick, table
from .units import add_unit, import_units

if TYPE_CHECKING:  # the push, WeChat and email stages load only for their commands
    from .cli import Context

SKELETON = Path(__file__).parent / "skeleton"


def _when(moment: datetime | str | None, settings: Settings) -> str:
    if moment is None:
        return "-"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")


def cmd_init(ctx: Context) -> int:
    target = Path(ctx.args.dir)
    if (target / "config.toml").exists():
        raise PipelineError.coded("init.exists", path=str(target / "config.toml"))
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(SKELETON / "config.toml", target / "config.toml")
    shutil.copytree(SKELETON / "templates", target / "templates", dirs_exist_ok=True)
    for folder in ("drafts", "published"):
        (target / folder).mkdir(exist_ok=True)
    print(f"workspace created in {target}: config.toml, templates/, drafts/, published/")
    return 0


def cmd_show(ctx: Context) -> int:
    with ctx.store.session() as session:
        data = views.detail(session, ctx.settings, ctx.args.id, ctx.now())
    if ctx.args.json:
        _out(data)
        return 0
    settings = ctx.settings
    print(f"#{data['id']}  {data['title']}")
    print(f"unit: {data['unit']} ({data['level']})   type: {data['activity_label']}")
    # Time left means nothing once a story is out; its state says on time or late.
    closed = data["published_at"] or data["status"] == "rejected"
    when = _when(data["deadline"], settings) if closed else _deadline(data["deadline"], ctx)
    print(f"status: {data['status']}   deadline: {when} "
          f"({data['deadline_state']})" + ("   LATE" if data["late"] else ""))
    _print_report(data["report"], settings)
    print(f"markdown: {data['files']['markdown']}\nhtml:     {data['files']['html']}")
    language = cli_language()
    for problem in data["problems"]:
        print(f"problem: {text_of(problem, language)}")
    for note in data["notes"]:
        print(f"note: {text_of(note, language)}")
    _print_findings(data["findings"], data["proofread"])
    _print_review(data, settings)
    for note in data["image_notes"]:
        print(f"note: {text_of(note, language)}")
    print("history:")
    for e in data["history"]:
        note = f" - {e['note']}" if e["note"] else ""
        print(f"  {_when(e['at'], settings)}  {e['actor']:<10} {e['action']}{note}")
    for p in data["publications"]:
        print(f"publication: push {p['push_id']} position {p['position']} {p['state']}"
              + (f"  {p['url']}" if p["url"] else ""))
        for call in p.get("wechat", {}).get("attempts", []):
            print(f"  wechat {_when(call['at'], settings)}  {call['step']:<12} "
                  f"{call['outcome']:<10} {call['detail'][:80]}")
    for a in data["alerts"]:
        print(f"alert: {a['kind']} at {_when(a['at'], settings)} -> "
              f"{', '.join(a['recipients']) or '(editors)'}")
    return 0


def _print_review(data: dict[str, Any], settings: Settings) -> None:
    """The sign-offs so far, the open stage and who holds it, what changed since."""
    for r in data["review"]:
        note = f" - {r['note']}" if r["note"] else ""
        print(f"signed:   {r['stage']} by {r['by']} at {_when(r['at'], settings)}{note}")
    if data["stage"]:
        holders = ", ".join(data["stage_signers"]) or "any editor"
        print(f"waiting:  {data['stage']} ({holders})")
    if data["changes_since_signoff"]:
        print("changed since the last sign-off:")
        for line in data["changes_since_signoff"].splitlines():
            print(f"  {line}")


def _print_report(report: dict[str, Any], settings: Settings) -> None:
    """The fields the unit reported, as an editor checks them against the article."""
    source = _where(report["source"], report["row"])
    fields = [
        ("time", f"{_when(report['start'], settings)} to {_when(report['end'], settings)}"),
        ("place", report["place"]), ("form", report["form"]),
        ("people", _people(report)), ("partners", "、".join(report.get("partners", []))),
        ("contact", report["contact"]),
        ("notes", report["notes"]),
        ("source", f"{source}, received {_when(report['received_at'], settings)}"),
    ]
    for label, value in fields:
        if value not in (None, ""):
            print(f"{label + ':':<9} {value}")
    for link in report["links"]:
        print(f"link:     {link}")
    for note in report["kept_fields"]:  # kept for the editors, never published
        print(f"note:     {note['label']}: {note['text']}  (not published)")
    for photo in report["photos"]:
        print(f"photo:    {photo['name']} ({photo['original']}, {photo['size']} bytes)")


def _print_findings(findings: list[dict[str, Any]], run: dict[str, Any]) -> None:
    if run["error"]:
        print(f"proofreading did not run: {text_of(run['error'], cli_language())}")
        return
    print(f"proofreading: {count_line(len(findings))}")
    for f in findings:
        where = "title" if f["start"] is None else f"{f['start']}-{f['end']}"
        print(f"  {f['kind']:<8} {where:<9} {f['text']!r}: {f['message']}")


def cmd_proofread(ctx: Context) -> int:
    """Proofread a draft's current text again (the lists may have changed) and print it."""
    from .proofread import proofread_draft

    settings = ctx.settings
    with ctx.store.session() as session:
        draft = review.get_draft(session, ctx.args.id)
        proofread_draft(session, settings, ctx.args.id,
                        read_markdown(session, settings, ctx.args.id), draft.title, ctx.now())
    with ctx.store.session() as session:
        data = views.detail(session, settings, ctx.args.id, ctx.now())
    if ctx.args.json:
        _out({"id": data["id"], "findings": data["findings"], "proofread": data["proofread"]})
    else:
        print(f"#{data['id']}  {data['title']}")
        _print_findings(data["findings"], data["proofread"])
    return 1 if data["proofread"]["error"] else 0


def _people(report: dict[str, Any]) -> str:
    text, count = str(report["participants_text"]), report["participants"]
    if count is None or text == str(count):
        return text
    return f"{text} (counted as {count} {report['participants_unit']})"


def _transition(action: str) -> Callable[[Context], int]:
    def command(ctx: Context) -> int:
        actor = getattr(ctx.args, "by", None) or os.environ.get("USER") or "editor"
        try:
            with ctx.store.session() as session:
                outcome = review.transition(
                    session, ctx.settings, ctx.args.id, action, actor=actor,
                    note=ctx.args.note or "", now=ctx.now(), remote="cli",
                    confirm_findings=getattr(ctx.args, "confirm_findings", False),
                    stage=getattr(ctx.args, "stage", None))
        except RaceLost as exc:
            return _race_answer(ctx.args.id, exc)
        signed = f" ({outcome.signed} signed by {actor})" if outcome.signed else ""
        waiting = f"; waiting for {outcome.next_stage}" if outcome.next_stage else ""
        print(f"draft {outcome.draft_id}: {outcome.from_status.value} -> "
              f"{outcome.to_status.value}{signed}{waiting}")
        return 0
    return command


def _race_answer(what: object, exc: RaceLost) -> int:
    """Someone else acted first. When the end state is what was asked for, say who did it
    and succeed; otherwise it is an error (the caller's action was not carried out)."""
    if not exc.already_done:
        raise exc
    print(f"{what}: {exc.text(cli_language())}")
    return 0


def cmd_migrate(ctx: Context) -> int:
    """Migrate (opening the store does it, under a lock) and say where the schema is."""
    from .store import HEAD

    url = ctx.store.engine.url.render_as_string(hide_password=True)
    print(f"database {url}: schema at revision {HEAD}")
    return 0


def cmd_edit(ctx: Context) -> int:
    settings = ctx.settings
    with ctx.store.session() as session:
        seen = review.get_draft(session, ctx.args.id).version  # the save is conditional on it
        original = read_markdown(session, settings, ctx.args.id)
    with tempfile.NamedTemporaryFile("w", suffix=".md", encoding="utf-8", delete=False) as tmp:
        tmp.write(original)
    try:
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        _run_editor(editor, tmp.name)
        edited = Path(tmp.name).read_text(encoding="utf-8")
    finally:
        Path(tmp.name).unlink(missing_ok=True)
    if edited == original:
        print(f"draft {ctx.args.id}: no changes")
        return 0
    actor = ctx.args.by or os.environ.get("USER") or "editor"
    with ctx.store.session() as session:
        problems = review.edit(session, settings, ctx.args.id, edited, actor=actor,
                               now=ctx.now(), remote="cli", expected_version=seen)
    print(f"draft {ctx.args.id}: saved and re-rendered")
    for problem in problems:
        print(f"problem: {problem}")
    return 1 if problems else 0


def _run_editor(editor: str, path: str) -> None:
    """Raises:
        PipelineError: the editor is not installed or failed; the draft is unchanged.
    """
    variable = "VISUAL" if os.environ.get("VISUAL") else "EDITOR"
    try:
        code = subprocess.call([*editor.split(), path])
    except OSError as exc:  # not installed, not on the PATH, not executable
        raise PipelineError.coded("cli.no_editor", editor=editor, variable=variable,
                                  reason=str(exc.strerror)) from None
    if code != 0:
        raise PipelineError.coded("cli.editor_failed", editor=editor)


def cmd_confirm_sent(ctx: Context) -> int:
    from .push import confirm_sent

    day = _day_argument(ctx.args.date)
    try:
        report = confirm_sent(ctx.store, ctx.settings, day, ctx.now())
    except RaceLost as exc:
        return _race_answer(day, exc)
    print(f"the push of {day} is recorded as sent ({len(report.articles)} article(s))")
    return 0


def cmd_release(ctx: Context) -> int:
    from .push import release_unsent

    day = _day_argument(ctx.args.date)
    actor = ctx.args.by or os.environ.get("USER") or "editor"
    try:
        count = release_unsent(ctx.store, ctx.settings, day, ctx.now(), actor=actor)
    except RaceLost as exc:
        return _race_answer(day, exc)
    print(f"the push of {day} is recorded as not sent; {count} story(ies) go out with the "
          "next push")
    return 0


def _day_argument(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PipelineError.coded("cli.bad_date", text=text) from None


def cmd_withdraw(ctx: Context) -> int:
    actor = ctx.args.by or os.environ.get("USER") or "editor"
    from .push import withdraw

    result = withdraw(ctx.store, ctx.settings, ctx.args.id, ctx.now(), actor=actor,
                      note=ctx.args.note)
    print(f"draft {ctx.args.id}: {result}; it is back in the queue")
    return 0


def cmd_wechat_check(ctx: Context) -> int:
    settings = ctx.settings
    if not settings.wechat.enabled:
        raise PipelineError.coded("cli.wechat_folder_mode")
    from .publish.wechat import check_account

    check_account(settings, ctx.store)
    print(f"WeChat account {settings.wechat.appid} at {settings.wechat.base_url}: "
          f"credentials and IP whitelist OK (mode {settings.wechat.mode})")
    from .reach.fetch import refusal

    refused = refusal(ctx.store, settings)
    if refused:  # an unverified account: said here once, not as a daily error
        print(f"analytics: {refused}")
    return 0


def cmd_units(ctx: Context) -> int:
    with ctx.store.session() as session:
        rows = views.units_tree(session, ctx.now())
    if ctx.args.json:
        _out(rows)
        return 0
    lang = cli_lang()
    head = (["单位", "级别", "邮箱", "报送", "待处理", "已发布", "超期"] if lang == ZH else
            ["unit", "level", "email", "submitted", "waiting", "published", "late"])
    body = [["  " * r["depth"] + r["name"], r["level_label"],
             r["email"] or pick(lang, "（无邮箱）", "(no email)"), str(r["submitted"]),
             str(r["waiting"]), str(r["published"]), str(r["late"])] for r in rows]
    for line in table(head, body, right=(3, 4, 5, 6)):
        print(line)
    return 0


def cmd_units_add(ctx: Context) -> int:
    level = parse_level(ctx.args.level)
    if level is None:
        raise PipelineError.coded("cli.bad_level", level=ctx.args.level)
    with ctx.store.session() as session:
        unit = add_unit(session, UnitSpec(ctx.args.name, level, ctx.args.parent,
                                          ctx.args.email), ctx.now())
    print(f"added unit {unit.name} ({unit.level})")
    return 0


def cmd_units_import(ctx: Context) -> int:
    with ctx.store.session() as session:
        result = import_units(session, Path(ctx.args.file), ctx.now())
    for name in result.added:
        print(f"added {name}")
    for error in result.rejected:
        field = f" {error.field}:" if error.field else ""
        print(f"rejected {_where(error.source, error.row)}:{field} "
              f"{error.text(cli_language())}", file=sys.stderr)
    print(f"{len(result.added)} added, {len(result.rejected)} rejected")
    return 1 if result.rejected else 0
