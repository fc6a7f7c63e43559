"""The day's WeChat articles, built from the drafts in push order.

Each article's photos are uploaded and its HTML rewritten to the returned URLs; the
cover is the editor's choice, else the first photo, else the account's default
cover. A story whose content breaks a WeChat limit once its image URLs are in is
taken out of the push and handed back to the editors, before any WeChat call.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from .. import lifecycle
from ..alerts import record_alert
from ..config import Settings
from ..drafts import draft_files
from ..messages import dump
from ..models import Draft, Publication
from ..store import Store
from .media import MediaUploader, rewrite_images


class ArticleBuilder:
    """Builds the articles of one push (uploading through the cached uploader)."""

    def __init__(self, store: Store, settings: Settings, uploader: MediaUploader,
                 now: datetime) -> None:
        self.store = store
        self.settings = settings
        self.uploader = uploader
        self.now = now

    def build(self, push_id: int) -> list[dict[str, Any]]:
        """The draft's articles in push order, images uploaded; a story that breaks a
        WeChat limit after its images were rewritten is taken out of the push."""
        with self.store.session() as session:
            rows = session.exec(select(Publication, Draft)
                                .join(Draft, col(Draft.id) == Publication.draft_id)
                                .where(Publication.push_id == push_id,
                                       Publication.state == "queued")
                                .order_by(col(Publication.position))).all()
        from ..render import check_limits

        articles = []
        for pub, draft in rows:
            article = self._article(draft)
            problems = check_limits(article["title"], article["author"], article["digest"],
                                    article["content"], self.settings.limits)
            if problems:
                self._withdraw(pub, draft, problems)
                continue
            articles.append(article)
        return articles

    def _article(self, draft: Draft) -> dict[str, Any]:
        assert draft.id is not None
        _, html_path = draft_files(self.settings, draft)
        content = rewrite_images(html_path.read_text(encoding="utf-8"), html_path.parent,
                                 self.uploader.body_image)
        cover = (html_path.parent / draft.cover) if draft.cover else (
            self.settings.paths.templates / self.settings.wechat.default_cover)
        return {"_draft_id": draft.id, "article_type": "news", "title": draft.title,
                "author": draft.author, "digest": draft.digest, "content": content,
                "thumb_media_id": self.uploader.cover(cover), "need_open_comment": 0,
                "only_fans_can_comment": 0}

    def _withdraw(self, pub: Publication, draft: Draft, problems: list[str]) -> None:
        """Take a story out of the push and back to the editors, before any call."""
        with self.store.session() as session:
            reason = "; ".join(problems)
            lifecycle.move(session, lifecycle.PUBLICATION, pub, "cancel", actor="push",
                           now=self.now, note=reason, values={"error": reason})
            lifecycle.move(session, lifecycle.DRAFT, draft, "take_out", actor="push",
                           now=self.now, note=reason, values={
                               "problems": json.dumps(dump(problems), ensure_ascii=False),
                               "review_stage": 0, "review_round": draft.review_round + 1})
            record_alert(session, f"withdrawn:{draft.id}:{draft.version}", "publish_failed",
                         self.now, draft_id=draft.id, recipients=self.settings.notify.editors,
                         detail=f"Draft {draft.id} was taken out of the push: "
                         + "; ".join(problems))
