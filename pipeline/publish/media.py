"""Images for WeChat: body photos via uploadimg, the cover as permanent material.

Photos over WeChat's 1 MB body-image limit are scaled down and recompressed with
Pillow first. Every upload is cached by content hash (per account), so a photo is
never uploaded twice, also across retries and restarts.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from ..errors import PublishError
from ..models import WeChatMedia

if TYPE_CHECKING:
    from ..wechat.client import WeChatClient

BODY_LIMIT = 1_000_000          # uploadimg: jpg/png under 1 MB
_IMG_SRC = re.compile(r'(<img\b[^>]*?\bsrc=")(photos/[^"]+)(")')


def fit_under(data: bytes, limit: int) -> bytes:
    """The image as JPEG under ``limit`` bytes (unchanged when it already fits)."""
    if len(data) < limit:
        return data
    from PIL import Image  # only oversized photos need Pillow

    with Image.open(io.BytesIO(data)) as image:
        picture = image.convert("RGB")
    quality, scale = 85, 1.0
    while True:
        size = (max(1, int(picture.width * scale)), max(1, int(picture.height * scale)))
        out = io.BytesIO()
        picture.resize(size).save(out, "JPEG", quality=quality, optimize=True)
        if out.tell() < limit or size == (1, 1):
            return out.getvalue()
        quality, scale = max(50, quality - 10), scale * 0.8


class MediaUploader:
    """Uploads through ``client``, remembering every result in the database."""

    def __init__(self, client: WeChatClient, appid: str,
                 session_factory: Callable[[], Session], now: datetime) -> None:
        self.client = client
        self.appid = appid
        self.session_factory = session_factory
        self.now = now

    def _cached(self, digest: str, kind: str) -> WeChatMedia | None:
        with self.session_factory() as session:
            return session.exec(select(WeChatMedia).where(
                WeChatMedia.appid == self.appid, WeChatMedia.sha256 == digest,
                WeChatMedia.kind == kind)).first()

    def _remember(self, digest: str, kind: str, url: str, media_id: str | None) -> None:
        with self.session_factory() as session:
            session.add(WeChatMedia(appid=self.appid, sha256=digest, kind=kind, url=url,
                                    media_id=media_id, created_at=self.now))
            try:
                session.commit()
            except IntegrityError:
                # Another process uploaded the same photo at the same moment; both copies
                # work, the first one recorded is the one reused from now on.
                session.rollback()

    def body_image(self, path: Path) -> str:
        """The mmbiz URL of a body photo (uploaded once per content)."""
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        cached = self._cached(digest, "body")
        if cached is not None:
            return cached.url
        url = self.client.upload_image(fit_under(data, BODY_LIMIT), path.name)
        self._remember(digest, "body", url, None)
        return url

    def cover(self, path: Path) -> str:
        """The permanent media_id of a cover image (uploaded once per content)."""
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        cached = self._cached(digest, "cover")
        if cached is not None and cached.media_id:
            return cached.media_id
        media_id, url = self.client.add_material(fit_under(data, 10_000_000), path.name)
        self._remember(digest, "cover", url or "", media_id)
        return media_id


def rewrite_images(html: str, folder: Path, upload: Callable[[Path], str]) -> str:
    """Replace each ``photos/...`` image source with its uploaded URL.

    Raises:
        PublishError: when a referenced photo is missing from the draft's folder.
    """
    def replace(match: re.Match[str]) -> str:
        path = (folder / match[2]).resolve()
        if folder.resolve() not in path.parents or not path.is_file():
            raise PublishError.coded("publish.photo_missing", photo=match[2], folder=str(folder))
        return match[1] + upload(path) + match[3]

    return _IMG_SRC.sub(replace, html)
