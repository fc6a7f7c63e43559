"""Recording a push that went out: the folder copy, the manifest, the stories marked
published (on time or late). Safe to repeat: a resumed push writes the same files."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, tzinfo

from sqlmodel import Session, col, select

from .. import faults, lifecycle
from ..alerts import record_alert
from ..config import Settings
from ..messages import Coded
from ..models import Draft, Publication, Push, Unit, WeChatJob
from ..publish.folder import FolderPublisher
from ..store import Store
from .plan import DONE, FAILED, MISSED, RUNNING, Candidate, PackedArticle, PushReport, plan

log = logging.getLogger(__name__)


def existing_report(session: Session, settings: Settings, row: Push, now: datetime) -> PushReport:
    """Report on a push that exists already (done, failed, or running to be resumed)."""
    rows = session.exec(
        select(Publication, Draft, Unit.name)
        .join(Draft, Draft.id == Publication.draft_id)  # type: ignore[arg-type]
        .join(Unit, Unit.id == Draft.unit_id)  # type: ignore[arg-type]
        .where(Publication.push_id == row.id).order_by(col(Publication.position))).all()
    articles = [PackedArticle(Candidate(d.id or 0, d.title, name, d.activity_type, d.deadline,
                                        d.push_rank), p.position, p.late)
                for p, d, name in rows]
    _, left = plan(session, settings, now)
    message: str = {
        str(DONE): Coded("push.day_taken", date=str(row.local_date)),
        str(FAILED): Coded("push.failed_today", reason=row.note),
        str(MISSED): Coded("push.missed_day", date=str(row.local_date), reason=row.note)}.get(
        row.state, Coded("push.resuming"))
    # A failed or missed day is closed too: one push a day; a person decides about the rest.
    return PushReport(row.local_date, already_done=row.state in (DONE, FAILED, MISSED),
                      articles=articles, left_over=left, manifest=row.manifest_path,
                      message=message)


def publish_folder(store: Store, settings: Settings, now: datetime, day: date,
                   report: PushReport, job: WeChatJob | None = None) -> None:
    publisher = FolderPublisher(settings)
    with store.session() as session:
        # Lock the day's row: a second process resuming the same push waits here and
        # then finds it done (SQLite's BEGIN IMMEDIATE already serialises writers).
        row = session.exec(select(Push).where(
            Push.account == settings.account.key, Push.local_date == day,
            Push.slot == 1).with_for_update()).first()
        assert row is not None and row.id is not None
        if row.state != RUNNING:
            report.already_done = row.state == DONE
            report.manifest = row.manifest_path
            return
        pubs = list(session.exec(select(Publication).where(Publication.push_id == row.id,
                                                           Publication.state != "cancelled")
                                 .order_by(col(Publication.position))))
        urls = json.loads(job.urls) if job is not None else []
        for index, pub in enumerate(pubs):
            draft = session.get(Draft, pub.draft_id)
            assert draft is not None
            pub.url = urls[index] if index < len(urls) and urls[index] else pub.url
            pub.output_path = publisher.write_article(day, pub.position, draft,
                                                      _meta(draft, pub, now, job, settings.tz))
            faults.crash_point("after_article_written")
            mark_published(session, settings, draft, pub, now)
        report.articles = [a for a in report.articles
                           if a.candidate.id in {p.draft_id for p in pubs}]
        manifest = publisher.write_manifest(day, _manifest(row, report, now, job, settings.tz))
        lifecycle.move(session, lifecycle.PUSH, row, "finish", actor="push", now=now,
                       values={"manifest_path": manifest, "finished_at": now,
                               "channel": job.mode if job is not None else publisher.channel})
        report.manifest = row.manifest_path


def mark_published(session: Session, settings: Settings, draft: Draft, pub: Publication,
                   now: datetime) -> None:
    if pub.state == "published":
        return  # resumed push: this one is out already
    late = now > draft.deadline
    stamp = {"published_at": now, "late": late}
    lifecycle.move(session, lifecycle.PUBLICATION, pub, "publish", actor="push", now=now,
                   values=stamp)
    lifecycle.move(session, lifecycle.DRAFT, draft, "publish", actor="push", now=now,
                   values=stamp, note=f"position {pub.position}" + (", late" if late else ""))
    if late:
        record_alert(session, f"published_late:{draft.id}", "published_late", now,
                     draft_id=draft.id, recipients=settings.notify.editors,
                     detail=f"Draft {draft.id} '{draft.title}' was published after its deadline "
                            f"{draft.deadline.isoformat()}.")


def _meta(draft: Draft, pub: Publication, now: datetime, job: WeChatJob | None,
          tz: tzinfo) -> dict[str, object]:
    # Times in the account's zone (manifests are read by people); no contact, no notes.
    return {"id": draft.id, "title": draft.title, "author": draft.author,
            "digest": draft.digest, "activity_type": draft.activity_type,
            "position": pub.position, "deadline": draft.deadline.astimezone(tz).isoformat(),
            "published_at": now.astimezone(tz).isoformat(), "late": now > draft.deadline,
            "url": pub.url,
            "wechat": _wechat_json(job)}


def _wechat_json(job: WeChatJob | None) -> dict[str, object] | None:
    if job is None:
        return None
    return {"mode": job.mode, "media_id": job.media_id, "publish_id": job.publish_id,
            "msg_id": job.msg_id, "article_id": job.article_id, "urls": json.loads(job.urls)}


def _manifest(row: Push, report: PushReport, now: datetime, job: WeChatJob | None,
              tz: tzinfo) -> dict[str, object]:
    return {
        "date": row.local_date.isoformat(), "account": row.account, "push_id": row.id,
        "channel": job.mode if job is not None else "folder",
        "published_at": now.astimezone(tz).isoformat(),
        "wechat": _wechat_json(job),
        "articles": [_article_json(a, tz) for a in report.articles],
        "left_over": [_article_json(a, tz) for a in report.left_over],
        "missed_days": [d.isoformat() for d in report.missed_days],
    }


def _article_json(item: PackedArticle, tz: tzinfo) -> dict[str, object]:
    c = item.candidate
    return {"id": c.id, "position": item.position, "title": c.title, "unit": c.unit,
            "activity_type": c.activity_type, "deadline": c.deadline.astimezone(tz).isoformat(),
            "late": item.late}
