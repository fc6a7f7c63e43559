"""每日动态: yesterday's push as a round-up article for the account itself.

With ``notify.digest_article = true`` the digest tick also writes the round-up
(``templates/daily_roundup.md.j2``) and puts it in the editors' queue, authored by
the district unit, through the same WeChat rules as any draft. An editor approves
it like any other story; it is made once per day.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlmodel import Session, col, select

from ..config import Settings
from ..domain import ROUNDUP as ROUNDUP  # (declared with the domain types)
from ..domain import Level
from ..drafts import DraftMaker
from ..models import Draft, Publication, Push, Unit
from ..store import Store

LABEL = "每日动态"


def roundup_due(store: Store, settings: Settings, now: datetime) -> int | None:
    """Write yesterday's round-up once its digest time has come; the new draft's id,
    or None (switched off, not due, nothing went out yesterday, or already written).

    Raises:
        RenderError: the round-up template is missing or broken (file and line named).
    """
    today = now.astimezone(settings.tz).date()
    if not settings.notify.digest_article or now < datetime.combine(
            today, settings.notify.digest_time, settings.tz):
        return None
    day = today - timedelta(days=1)
    with store.session() as session:
        stories = _stories(session, settings, day)
        district = session.exec(select(Unit).where(Unit.level == Level.DISTRICT)
                                .order_by(col(Unit.id))).first()
        if not stories or district is None:
            return None
        maker = DraftMaker(settings)
        markdown = _markdown(maker, settings, day, stories)
        accepted = maker.store_article(
            session, district, title=f"{LABEL}｜{day.month}月{day.day}日", markdown=markdown,
            activity_type=ROUNDUP, key=f"roundup|{settings.account.key}|{day}",
            at=datetime.combine(day, time(12), settings.tz), now=now, actor="digest")
    return accepted.id if accepted else None


def _stories(session: Session, settings: Settings, day: object) -> list[dict[str, str]]:
    rows = session.exec(
        select(Draft.title, Unit.name)
        .join(Publication, col(Publication.draft_id) == Draft.id)
        .join(Push, col(Push.id) == Publication.push_id)
        .join(Unit, col(Unit.id) == Draft.unit_id)
        .where(Push.account == settings.account.key, Push.local_date == day,
               Publication.state == "published", Draft.activity_type != ROUNDUP)
        .order_by(col(Publication.position))).all()
    return [{"title": title, "unit": unit} for title, unit in rows]


def _markdown(maker: DraftMaker, settings: Settings, day: object,
              stories: list[dict[str, str]]) -> str:
    from ..render.templates import render_template

    return render_template(maker.env, "daily_roundup.md.j2",
                           {"day": day, "stories": stories, "account": settings.account.name})
