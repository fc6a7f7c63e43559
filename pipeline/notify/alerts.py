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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ..config import Settings
from ..deadlines import hours_left
from ..errors import NotifyError
from ..models import Alert, Draft, DraftEvent, Unit
from ..store import Store
from .outbox import DeliveryReport, deliver, enqueue
from .templates import render_html, render_template

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


@dataclass
class QueueResult:
    queued: list[str] = field(default_factory=list)       # outbox keys, one per person
    alerts: int = 0                                        # alerts handed to the outbox
    unaddressed: list[int] = field(default_factory=list)   # alert ids that had no address


@dataclass
class AlertReport:
    queue: QueueResult = field(default_factory=QueueResult)
    delivery: DeliveryReport = field(default_factory=DeliveryReport)
    error: str = ""      # a template error: nothing was queued this run

    def summary(self) -> str:
        text = (f"{self.queue.alerts} alert(s) in {len(self.queue.queued)} email(s) queued; "
                f"{self.delivery.summary()}")
        if self.queue.unaddressed:
            text += f"; {len(self.queue.unaddressed)} alert(s) had no address"
        return text + (f"; error: {self.error}" if self.error else "")


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
    """Claim unsent alerts and enqueue one email per recipient address.

    Raises:
        NotifyError: when an email template fails (the caller's transaction rolls back).
    """
    result = QueueResult()
    claimed = _claim(session, now)
    if not claimed:
        return result
    units = {u.id: u for u in session.exec(select(Unit))}
    drafts = _drafts(session, claimed)
    items = {a.id: _item(session, settings, a, drafts, units, now) for a in claimed}
    groups: dict[str, tuple[str, list[Alert]]] = {}
    for alert in claimed:
        addresses = json.loads(alert.recipients)
        if not addresses:
            _mark_unaddressed(alert, drafts, units)
            result.unaddressed.append(alert.id or 0)
        for address in addresses:
            groups.setdefault(address.lower(), (address, []))[1].append(alert)
    for address, alerts in groups.values():
        result.queued.append(_enqueue_group(session, settings, address,
                                            [items[a.id] for a in alerts], now))
    result.alerts = len(claimed) - len(result.unaddressed)
    return result


def _claim(session: Session, now: datetime) -> list[Alert]:
    """Unsent alerts, each taken by one conditional update so two runs never share one."""
    alerts = list(session.exec(select(Alert).where(col(Alert.sent_at).is_(None))
                               .order_by(col(Alert.id)).limit(1000)))
    mine = []
    for alert in alerts:
        taken = session.execute(sa.update(Alert).where(col(Alert.id) == alert.id,
                                                       col(Alert.sent_at).is_(None))
                                .values(sent_at=now))
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            session.refresh(alert)
            mine.append(alert)
    return mine


def _drafts(session: Session, alerts: Sequence[Alert]) -> dict[int, Draft]:
    ids = {a.draft_id for a in alerts if a.draft_id is not None}
    if not ids:
        return {}
    return {d.id or 0: d for d in session.exec(select(Draft).where(col(Draft.id).in_(ids)))}


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
                      units: dict[int | None, Unit]) -> None:
    unit = target_unit(alert, drafts, units)
    reason = f"{NO_ADDRESS}（{unit.name}）" if unit is not None else NO_EDITORS
    alert.detail = f"{alert.detail}\n未发送：{reason}".strip()
    log.warning("alert %s (%s) has no recipient address: %s", alert.id, alert.kind, reason)


def _item(session: Session, settings: Settings, alert: Alert, drafts: dict[int, Draft],
          units: dict[int | None, Unit], now: datetime) -> AlertItem:
    label, advice = KINDS.get(alert.kind, (f"其他提醒（{alert.kind}）", "请查看详情。"))
    draft = drafts.get(alert.draft_id or 0)
    if draft is None:
        return AlertItem(id=alert.id or 0, kind=alert.kind, label=label, advice=advice,
                         title=_no_draft_title(alert), unit="", status="", deadline="",
                         hours="", link="", note="", detail=alert.detail)
    unit = units.get(draft.unit_id)
    if alert.kind == "due_soon":
        advice = _due_soon_advice(draft, settings, now)
    return AlertItem(
        id=alert.id or 0, kind=alert.kind, label=label, advice=advice, title=draft.title,
        unit=unit.name if unit else "",
        status=STATUS_LABELS.get(str(draft.status), str(draft.status)),
        deadline=draft.deadline.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M"),
        hours=_hours(draft, now), link=f"{settings.notify.base_url}/drafts/{draft.id}",
        note=_note(session, alert),
        # Known kinds are fully described in Chinese; the recorded detail is for new kinds.
        detail="" if alert.kind in KINDS else alert.detail)


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
    return KINDS.get(alert.kind, (alert.kind, ""))[0]


def _hours(draft: Draft, now: datetime) -> str:
    if draft.published_at is not None:
        return ""
    left = hours_left(draft.deadline, now)
    return f"剩余 {left:.1f} 小时" if left > 0 else f"已超期 {-left:.1f} 小时"


def _note(session: Session, alert: Alert) -> str:
    """The editor's note of the action that raised a changes_requested/rejected alert."""
    action = {"changes_requested": "request_changes", "rejected": "reject"}.get(alert.kind)
    if action is None or alert.draft_id is None:
        return ""
    event = session.exec(select(DraftEvent).where(
        DraftEvent.draft_id == alert.draft_id, DraftEvent.action == action,
        col(DraftEvent.at) <= alert.created_at)
        .order_by(col(DraftEvent.at).desc(), col(DraftEvent.id).desc())).first()
    return event.note if event else alert.detail.partition("': ")[2]


def _enqueue_group(session: Session, settings: Settings, address: str,
                   items: list[AlertItem], now: datetime) -> str:
    order = list(KINDS)
    items.sort(key=lambda i: (order.index(i.kind) if i.kind in order else len(order), i.id))
    ids = [i.id for i in items]
    subject = compose_alert_subject(settings, items)
    context = {"account": settings.account.name, "subject": subject, "items": items,
               "count": len(items), "now": now.astimezone(settings.tz).strftime(
                   "%Y-%m-%d %H:%M"), "base_url": settings.notify.base_url}
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
