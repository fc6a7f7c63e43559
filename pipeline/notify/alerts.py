"""Alert emails: unsent ``Alert`` rows become one grouped email per person per run.

A transactional outbox: claiming the alerts (``sent_at`` set by a conditional
update) and enqueueing their emails happen in the caller's one transaction,
so an alert is queued exactly once — across sweeps, restarts and processes —
and a template error rolls both back, leaving the alert for the next run.
Alerts with no address are marked with a note and left to the daily digest.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ..config import Settings
from ..deadlines import deadline_text, duration_text
from ..errors import NotifyError
from ..messages import from_column
from ..models import Alert, Draft, DraftEvent, Submission, Unit
from ..review import Holders, holders
from ..store import Store
from .outbox import deliver, enqueue
from .reports import AlertReport as AlertReport  # (at home in reports.py)
from .reports import QueueResult as QueueResult

log = logging.getLogger(__name__)

# Kind -> (label, what the reader should do). Unknown kinds (new channels) render generically.
KINDS: dict[str, tuple[str, str]] = {
    "overdue_escalated": ("超期未发（上级督办）",
                          "下级单位稿件已超期一天以上仍未发布，请督促处理。"),
    "overdue": ("已超期", "稿件已过推送期限仍未发布，请尽快处理。"),
    "due_soon": ("即将到期", "请在下次推送前完成审核，以免超期。"),
    "changes_requested": ("退回修改", "编辑已退回稿件，请按意见修改后重新报送。"),
    "rejected": ("未采用", "稿件未被采用，原因见编辑意见。"),
    "published_late": ("超期发布", "稿件已发布，但晚于推送期限。"),
    "push_missed": ("当日未推送", "推送时间程序未运行，当日没有推送，请检查服务。"),
    "push_empty": ("今日推送暂无稿件", "今日推送前还没有可推送的稿件，请尽快审核，以免断更。"),
    "publish_failed": ("发布失败", "稿件发布失败，请查看原因后处理。"),
    "needs_human": ("需要人工处理", "发布结果无法自动确认，请人工核查。"),
    "publish_deferred": ("发布推迟", "发布已推迟，稍后将自动重试。"),
}
# Alerts addressed to a unit's contact: (kind -> whose contact: the draft's unit or its parent).
UNIT_KINDS = {"overdue": "unit", "changes_requested": "unit", "rejected": "unit",
              "overdue_escalated": "parent"}
STATUS_LABELS = {"drafted": "待审核", "changes_requested": "退回修改中", "approved": "已审核待推送",
                 "publishing": "推送中", "published": "已发布", "rejected": "未采用",
                 "failed": "发布失败"}
NO_ADDRESS = "单位未设置联系邮箱"
NO_EDITORS = "未配置收件人（notify.editors）"
CLAIM_BATCH = 1000  # alerts per claiming statement; a run claims every batch


@dataclass(frozen=True)
class AlertItem:
    """One alert as a recipient reads it (all text already in Chinese)."""

    id: int
    kind: str
    label: str
    advice: str
    title: str
    unit: str
    status: str
    deadline: str
    hours: str
    link: str
    note: str            # the editor's note (changes requested, rejected)
    detail: str          # for kinds without a draft: the recorded detail
    contact: str = ""    # the report's contact person, for the editors; never published


def deliver_alerts(store: Store, settings: Settings, now: datetime) -> AlertReport:
    """Queue new alerts (grouped per person) and deliver the outbox. Never raises
    NotifyError: a template error is reported and the alerts wait for the next run."""
    report = AlertReport()
    try:
        with store.session() as session:
            report.queue = queue_alerts(session, settings, now)
    except NotifyError as exc:
        report.error = str(exc)
        log.error("alert emails not queued: %s", exc)
    report.delivery = deliver(store, settings, now)
    return report


def queue_alerts(session: Session, settings: Settings, now: datetime) -> QueueResult:
    """Claim every unsent alert and enqueue one email per recipient address.

    A few statements per batch of alerts (claim, drafts, notes) and one insert per
    email, whatever the backlog: no query runs once per alert.

    Raises:
        NotifyError: when an email template fails (the caller's transaction rolls back).
    """
    result = QueueResult()
    units: dict[int | None, Unit] | None = None
    items: dict[int, AlertItem] = {}
    groups: dict[str, tuple[str, list[int]]] = {}
    unaddressed: dict[str, list[int]] = {}
    stages = holders(session, settings)
    for batch in _claim(session, now):
        units = units if units is not None else {u.id: u for u in session.exec(select(Unit))}
        drafts, notes = _drafts(session, batch), _notes(session, batch)
        contacts = _contacts(session, drafts)
        for alert in batch:
            items[alert.id or 0] = _item(settings, alert, drafts, units, notes, now, stages,
                                         contacts)
            addresses = json.loads(alert.recipients)
            for address in addresses:
                groups.setdefault(address.lower(), (address, []))[1].append(alert.id or 0)
            if not addresses:
                reason = _mark_unaddressed(alert, drafts, units)
                unaddressed.setdefault(reason, []).append(alert.id or 0)
    _log_unaddressed(unaddressed)
    result.unaddressed = sorted(i for ids in unaddressed.values() for i in ids)
    for address, ids in groups.values():
        result.queued.append(_enqueue_group(session, settings, address,
                                            [items[i] for i in ids], now))
    result.alerts = len(items) - len(result.unaddressed)
    return result


def _claim(session: Session, now: datetime) -> Iterator[list[Alert]]:
    """Every unsent alert, claimed a batch at a time so two runs never share one.

    Each batch is one conditional UPDATE … WHERE id IN (the next unsent ids) AND
    sent_at IS NULL … RETURNING: on PostgreSQL a second process blocks on the rows
    this one claimed, re-checks ``sent_at IS NULL`` once we commit, and skips them;
    on SQLite the transaction holds the write lock (BEGIN IMMEDIATE) from the start.
    """
    next_ids = (select(Alert.id).where(col(Alert.sent_at).is_(None))
                .order_by(col(Alert.id)).limit(CLAIM_BATCH))
    claim = (sa.update(Alert)
             .where(col(Alert.id).in_(next_ids), col(Alert.sent_at).is_(None))
             .values(sent_at=now).returning(Alert)
             # The session holds no Alert before the claim, so there is nothing to
             # synchronise; the default would re-evaluate the WHERE against every loaded
             # object, which made claiming one at a time quadratic (issue 15).
             .execution_options(synchronize_session=False))
    while True:
        batch = sorted(session.execute(claim).scalars(), key=lambda a: a.id or 0)
        if batch:
            yield batch
        if len(batch) < CLAIM_BATCH:  # the backlog is drained (or another run has the rest)
            return


def _drafts(session: Session, alerts: Sequence[Alert]) -> dict[int, Draft]:
    ids = {a.draft_id for a in alerts if a.draft_id is not None}
    if not ids:
        return {}
    return {d.id or 0: d for d in session.exec(select(Draft).where(col(Draft.id).in_(ids)))}


# Alert kind -> the review action whose note the email quotes.
NOTE_ACTIONS = {"changes_requested": "request_changes", "rejected": "reject"}


def _notes(session: Session, alerts: Sequence[Alert]) -> dict[int, str]:
    """Alert id -> the editor's note of the action that raised it (changes requested,
    rejected): the latest such event of its draft at or before the alert, in one query."""
    wanted = [a for a in alerts if a.kind in NOTE_ACTIONS and a.draft_id is not None]
    if not wanted:
        return {}
    events = session.exec(select(DraftEvent).where(
        col(DraftEvent.draft_id).in_({a.draft_id for a in wanted}),
        col(DraftEvent.action).in_(set(NOTE_ACTIONS.values())))
        .order_by(col(DraftEvent.at), col(DraftEvent.id))).all()
    history: dict[tuple[int, str], list[DraftEvent]] = {}
    for event in events:
        history.setdefault((event.draft_id, event.action), []).append(event)
    notes = {}
    for alert in wanted:
        earlier = [e for e in history.get((alert.draft_id or 0, NOTE_ACTIONS[alert.kind]), [])
                   if e.at <= alert.created_at]
        notes[alert.id or 0] = (earlier[-1].note if earlier
                                else alert.detail.partition("': ")[2])
    return notes


def target_unit(alert: Alert, drafts: dict[int, Draft], units: dict[int | None, Unit]
                ) -> Unit | None:
    """The unit whose contact this alert is meant for (None: editors only)."""
    whose = UNIT_KINDS.get(alert.kind)
    draft = drafts.get(alert.draft_id or 0)
    if whose is None or draft is None:
        return None
    unit = units.get(draft.unit_id)
    if whose == "parent" and unit is not None:
        unit = units.get(unit.parent_id)
    return unit


def _mark_unaddressed(alert: Alert, drafts: dict[int, Draft],
                      units: dict[int | None, Unit]) -> str:
    """Note on the alert why it was not sent; returns the reason."""
    unit = target_unit(alert, drafts, units)
    reason = f"{NO_ADDRESS}（{unit.name}）" if unit is not None else NO_EDITORS
    # The session flushes these changed rows as one executemany UPDATE at commit.
    alert.detail = f"{alert.detail}\n未发送：{reason}".strip()
    return reason


def _log_unaddressed(unaddressed: dict[str, list[int]]) -> None:
    # One line per reason: a backlog of thousands must not flood the log.
    for reason, ids in unaddressed.items():
        shown = ", ".join(map(str, ids[:10])) + (", …" if len(ids) > 10 else "")
        log.warning("%d alert(s) have no recipient address: %s (alert %s)", len(ids), reason,
                    shown)


def _item(settings: Settings, alert: Alert, drafts: dict[int, Draft],
          units: dict[int | None, Unit], notes: dict[int, str], now: datetime,
          stages: Sequence[Holders], contacts: dict[int, str]) -> AlertItem:
    label, advice = KINDS.get(alert.kind, (f"其他提醒（{alert.kind}）", "请查看详情。"))
    draft = drafts.get(alert.draft_id or 0)
    if draft is None:
        return AlertItem(id=alert.id or 0, kind=alert.kind, label=label, advice=advice,
                         title=_no_draft_title(alert), unit="", status="", deadline="",
                         hours="", link="", note="",
                         detail=from_column(alert.detail))
    unit = units.get(draft.unit_id)
    if alert.kind == "due_soon":
        advice = _due_soon_advice(draft, settings, now)
    return AlertItem(
        id=alert.id or 0, kind=alert.kind, label=label, advice=advice, title=draft.title,
        unit=unit.name if unit else "",
        status=_status(draft, stages),
        deadline=_deadline(draft, settings, now),
        hours=_hours(draft, now), link=f"{settings.notify.base_url}/drafts/{draft.id}",
        note=notes.get(alert.id or 0, ""), contact=contacts.get(draft.id or 0, ""),
        # Known kinds are fully described in Chinese; the recorded detail is for new kinds.
        detail="" if alert.kind in KINDS else from_column(alert.detail))


def _status(draft: Draft, stages: Sequence[Holders]) -> str:
    """The draft's status; in review, the stage it waits at and who holds it."""
    if draft.status == "drafted" and stages:
        held = stages[min(draft.review_stage, len(stages) - 1)]
        return f"待{held.stage}（{'、'.join(held.names) or '任一编辑'}）"
    return STATUS_LABELS.get(str(draft.status), str(draft.status))


def _contacts(session: Session, drafts: dict[int, Draft]) -> dict[int, str]:
    """Each draft's contact (for the editors' email only), in one query per batch."""
    if not drafts:
        return {}
    rows = session.exec(select(Draft.id, Submission.contact)
                        .join(Submission, col(Submission.id) == Draft.submission_id)
                        .where(col(Draft.id).in_(list(drafts)))).all()
    return {int(i or 0): c for i, c in rows}


def _due_soon_advice(draft: Draft, settings: Settings, now: datetime) -> str:
    """The truth about the next push: in time, or already too late for it."""
    from ..deadlines import next_push_after

    push = next_push_after(now, settings)
    if push < draft.deadline:
        return (f"下次推送（{push.astimezone(settings.tz):%m月%d日%H:%M}）前完成审核即可按时发布。")
    return (f"下次推送（{push.astimezone(settings.tz):%m月%d日%H:%M}）已在截止时间之后，"
            "等到那时发布就会超期：请尽快完成审核，并在推送页点“立即推送”"
            f"（{settings.notify.base_url.rstrip('/')}/push）。")


def _no_draft_title(alert: Alert) -> str:
    if alert.kind == "push_missed":
        return f"{alert.key.partition(':')[2]} 未推送"
    if alert.kind == "push_empty":
        return f"{alert.key.partition(':')[2]} 推送暂无可发稿件"
    return KINDS.get(alert.kind, (alert.kind, ""))[0]


def _deadline(draft: Draft, settings: Settings, now: datetime) -> str:
    if draft.published_at is not None:
        return draft.deadline.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")
    return deadline_text(draft.deadline, now, settings.tz)


def _hours(draft: Draft, now: datetime) -> str:
    """The time left, for a deadline that is not past yet (past: the deadline says it)."""
    if draft.published_at is not None or now >= draft.deadline:
        return ""
    return "还剩" + duration_text(now, draft.deadline)


def _enqueue_group(session: Session, settings: Settings, address: str,
                   items: list[AlertItem], now: datetime) -> str:
    order = list(KINDS)
    items.sort(key=lambda i: (order.index(i.kind) if i.kind in order else len(order), i.id))
    ids = [i.id for i in items]
    subject = compose_alert_subject(settings, items)
    context = {"account": settings.account.name, "subject": subject, "items": items,
               "count": len(items), "now": now.astimezone(settings.tz).strftime(
                   "%Y-%m-%d %H:%M"), "base_url": settings.notify.base_url}
    from .templates import render_html, render_template  # Jinja: only when there is mail

    folder = settings.paths.templates
    text = render_template(folder, "alert.txt.j2", context)
    html = render_html(folder, "alert.html.j2", context)
    # Each alert is claimed once, so the ids make a key no other run can produce.
    digest = hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()[:16]
    key = f"alerts:{digest}:{address}"[:300]
    enqueue(session, key, "alert", [address], subject, text, html, now, alert_ids=ids)
    return key


def compose_alert_subject(settings: Settings, items: Sequence[AlertItem]) -> str:
    what = "稿件提醒" if all(i.link for i in items) else "提醒"
    return f"【{settings.account.name}】{len(items)}条{what}"
