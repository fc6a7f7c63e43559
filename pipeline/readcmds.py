"""``pipeline queue``, ``pipeline check`` and ``pipeline push``, the commands editors run
most: they answer from ``reads`` (the push: from its planner) through the lean start
(``lean.py``: the DB-API alone) when that applies, and through the store otherwise; one
printing for both. ``push`` takes the lean start only for ``--dry-run``, which writes
nothing.

Imported without SQLAlchemy or SQLModel (``commands.py`` loads them at import), so that
a whole process answers in a fraction of a second (issue 13, bench/bench_intake.py).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import lean, reads
from .config import Settings
from .deadlines import deadline_text
from .domain import push_taken
from .messages import cli_language, text_of
from .notify.reports import AlertReport, DeliveryReport
from .reads import Flagged, Reader, SessionReader, SweepResult
from .textfmt import ZH, cli_lang, lateness, pick, state_word, status_word, table

if TYPE_CHECKING:
    from .cli import Context
    from .push import PackedArticle, PushReport


def _out(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _deadline(moment: datetime | str, ctx: Context) -> str:
    """A deadline as people say it (6月17日24时前, 已超期2天3小时): one wording everywhere."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return deadline_text(moment, ctx.now(), ctx.settings.tz)


def cmd_queue(ctx: Context) -> int:
    settings, now, args = ctx.settings, ctx.now(), ctx.args
    # JSON gets every row unless a page is asked for, and then says where the next starts.
    paged = args.limit is not None and args.limit > 0
    limit = args.limit if args.limit is not None else (0 if args.json else 200)

    def read(reader: Reader) -> tuple[list[dict[str, Any]], int]:
        return reads.queue(reader, settings, now, include_all=args.all, limit=limit,
                           signer=args.signer, offset=args.offset)
    found = lean.attempt(settings, read)
    if found is None:  # the normal path: the store (migrated, units synced), a session
        with ctx.store.session() as session:
            found = read(SessionReader(session))
    rows, total = found
    if args.json:
        following = args.offset + len(rows)
        _out({"items": rows, "total": total, "limit": limit, "offset": args.offset,
              "next": following if following < total else None} if paged else rows)
        return 0
    lang = cli_lang()
    if not rows:
        print(pick(lang, "待审队列是空的", "the queue is empty"))
        return 0
    head = (["编号", "期限", "状态", "单位", "标题"] if lang == ZH
            else ["id", "deadline", "status", "unit", "title"])
    staged = len(settings.review.stages) > 1
    lines = table(head, [[f"#{r['id']}", _standing(r, lang),
                          _status_with_stage(r, lang, staged),
                          r["unit"], r["title"]] for r in rows])
    print(lines[0])
    for r, line in zip(rows, lines[1:], strict=True):
        print(line)
        if r.get("attention"):
            print(f"        ! {text_of(r['attention'], cli_language())}")
    if total > len(rows):
        print(pick(lang, f"……另有 {total - len(rows) - args.offset} 篇（--limit 0 列出全部）",
                   f"... and {total - len(rows) - args.offset} more (use --limit 0 to list all)"))
    return 0


def _status_with_stage(row: dict[str, Any], lang: str, staged: bool) -> str:
    """In staged review, the stage it waits at ("待复审"); otherwise the status word."""
    if staged and row.get("stage"):
        return pick(lang, f"待{row['stage']}", f"waiting for {row['stage']}")
    return status_word(row["status"], lang)


def _standing(row: dict[str, Any], lang: str) -> str:
    """"已超期21天10小时" when overdue (the words say it), else "即将到期，还剩5小时"."""
    late = lateness(row["hours_left"], lang)
    if row["deadline_state"] == "overdue":
        return late
    return f"{state_word(row['deadline_state'], lang)}{pick(lang, '，', ', ')}{late}"


def cmd_check(ctx: Context) -> int:
    settings = ctx.settings
    found = lean.attempt(settings, lambda reader: _settled(reader, settings, ctx.now()))
    if found is None:  # the normal path: the sweep records, the alert emails are queued
        from .notify.alerts import deliver_alerts
        from .sweep import sweep

        with ctx.store.session() as session:
            result = sweep(session, settings, ctx.now())
        delivery = deliver_alerts(ctx.store, settings, ctx.now())
    else:
        result, delivery = found

    def item(f: Flagged) -> dict[str, Any]:
        return {"id": f.id, "title": f.title, "unit": f.unit, "status": f.status,
                "deadline": reads.iso(f.deadline, settings), "hours_left": f.hours_left,
                "notify": list(f.notify), "new": f.new}
    if ctx.args.json:
        _out({"due_soon": [item(f) for f in result.due_soon],
              "overdue": [item(f) for f in result.overdue],
              "escalated": [item(f) for f in result.escalated],
              "alerts": delivery.summary(), "alert_error": delivery.error})
        return 1 if delivery.error else 0
    for label, flags in (("due soon", result.due_soon), ("overdue", result.overdue),
                         ("escalated", result.escalated)):
        for f in flags:
            who = ", ".join(f.notify) or "editors"
            mark = "" if f.new else " (already recorded)"
            print(f"{label:<10} #{f.id}  {_deadline(f.deadline, ctx)}  {f.unit}  {f.title}  "
                  f"-> {who}{mark}")
    print(f"{len(result.due_soon)} due soon, {len(result.overdue)} overdue, "
          f"{len(result.escalated)} escalated")
    print(f"alerts: {delivery.summary()}")
    if delivery.error:
        print(f"error: {delivery.error}", file=sys.stderr)
    return 1 if delivery.error else 0




def _settled(reader: Reader, settings: Settings, now: datetime
             ) -> tuple[SweepResult, AlertReport] | None:
    """What ``check`` answers when it has nothing to write: every alert the sweep wants is
    recorded, none waits to be emailed, no email is due (None: there is something)."""
    wanted, known = reads.sweep_reads(reader, settings, now)
    if any(w.key not in known for w in wanted) or reads.work_after_sweep(reader, settings,
                                                                           now):
        return None
    held = 0 if settings.smtp.host else reads.pending_emails(reader)
    return reads.flagged(wanted, set(), now), AlertReport(delivery=DeliveryReport(held=held))


# --- the push ------------------------------------------------------------------------

def cmd_push(ctx: Context) -> int:
    from .push.plan import PushReport, local_date, plan_from, push_state

    settings, now = ctx.settings, ctx.now()
    report = None
    if ctx.args.dry_run:  # reads only: the lean start when it applies
        day = local_date(now, settings)

        def read(reader: Reader) -> PushReport:
            chosen, left = plan_from(reader, settings, now)
            done = push_taken(push_state(reader, settings, day))
            return PushReport(day, already_done=done, dry_run=True, articles=chosen,
                              left_over=left)
        report = lean.attempt(settings, read)
    if report is None:  # the normal path: the store (migrated, units synced)
        from .push import run_push

        report = run_push(ctx.store, settings, now, dry_run=ctx.args.dry_run)
    if ctx.args.json:
        _out(_push_json(report, settings))
        return 0
    _print_push(report, settings, now)
    return 0


def _push_json(report: PushReport, settings: Settings) -> dict[str, Any]:
    language = cli_language()

    def item(a: PackedArticle) -> dict[str, Any]:
        c = a.candidate
        return {"id": c.id, "title": c.title, "unit": c.unit, "late": a.late,
                "position": a.position, "deadline": reads.iso(c.deadline, settings),
                **({"reason": text_of(a.reason, language),
                    "reason_code": getattr(a.reason, "code", "")} if a.reason else {})}
    return {"date": report.day.isoformat(),
            "already_done": report.already_done or report.done_elsewhere,
            "wechat_state": report.wechat_state,
            "dry_run": report.dry_run, "articles": [item(a) for a in report.articles],
            "left_over": [item(a) for a in report.left_over],
            "missed_days": [d.isoformat() for d in report.missed_days],
            "manifest": report.manifest, "message": report.message}


def _print_push(report: PushReport, settings: Settings, now: datetime) -> None:
    # One write for the whole answer: a campaign's dry run is 20,000 lines.
    lines = [f"missed: no push went out on {day} (recorded)" for day in report.missed_days]
    language = cli_language()
    if report.already_done:
        lines.append(text_of(report.message, language))
    head = "would publish" if report.dry_run else (
        "published" if report.manifest else "in this push")
    if report.articles and not report.already_done:
        for a in report.articles:
            late = "  LATE" if a.late else ""
            lines.append(f"{head} {a.position}. #{a.candidate.id}  {a.candidate.unit}  "
                         f"{a.candidate.title}{late}")
        if report.message:
            lines.append(text_of(report.message, language))
    elif not report.already_done:
        lines.append(text_of(report.message, language) if report.message
                     else f"nothing to publish for {report.day}")
    for a in report.left_over:
        warn = " - will be LATE" if a.late else ""
        lines.append(f"does not fit: #{a.candidate.id}  {a.candidate.title}  deadline "
                     f"{deadline_text(a.candidate.deadline, now, settings.tz)}{warn}")
        if a.reason:
            lines.append(f"    why: {text_of(a.reason, language)}")
    if report.manifest:
        lines.append(f"manifest: {settings.paths.published / report.manifest}")
    sys.stdout.write("".join(f"{line}\n" for line in lines))
