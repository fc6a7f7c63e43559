"""Serving a draft's own files (the article HTML that will be sent, its photos)
and published bulletins, read-only, behind a strict name pattern and a
Content-Security-Policy that forbids scripts inside the preview."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.responses import FileResponse, Response
from sqlmodel import Session

from ..config import Settings
from ..drafts import ARTICLE_HTML, draft_dir, read_article
from ..errors import PipelineError
from .auth import AuthError

_DRAFT_FILE = re.compile(rf"{re.escape(ARTICLE_HTML)}|photos/[A-Za-z0-9_-]{{1,64}}\.(?:jpg|png)")
_BULLETIN = re.compile(r"[A-Za-z0-9_-]{1,40}")
# The article is ours but came from a reporter's text: show it, never run anything in it.
PREVIEW_CSP = ("default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
               "sandbox allow-same-origin")
_TYPES = {".html": "text/html; charset=utf-8", ".jpg": "image/jpeg", ".png": "image/png"}
_HEADERS = {"Content-Security-Policy": PREVIEW_CSP, "Cache-Control": "no-store"}


def _send(path: Path) -> Response:
    if not path.is_file():
        raise AuthError(404, "文件不存在。")
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=_HEADERS)


def draft_file(session: Session, settings: Settings, draft_id: int, name: str) -> Response:
    """``article.html`` (the HTML the draft's row names now) or ``photos/<generated
    name>`` of one draft.

    Raises:
        AuthError: 404 for any other name or a missing file.
    """
    if not _DRAFT_FILE.fullmatch(name):
        raise AuthError(404, "文件不存在。")
    if name != ARTICLE_HTML:
        return _send(settings.paths.drafts / draft_dir(draft_id) / name)
    try:  # read now: a later edit may remove this version's file before it is sent
        html = read_article(session, settings, draft_id, html=True)
    except PipelineError:
        raise AuthError(404, "文件不存在。") from None
    return Response(html, media_type=_TYPES[".html"], headers=_HEADERS)


def bulletins_folder(settings: Settings) -> Path:
    return settings.paths.published / "bulletins"


def bulletin_names(settings: Settings) -> list[str]:
    folder = bulletins_folder(settings)
    if not folder.is_dir():
        return []
    return sorted((p.stem for p in folder.glob("*.html") if _BULLETIN.fullmatch(p.stem)),
                  reverse=True)


def bulletin_file(settings: Settings, week: str) -> Response:
    """One weekly bulletin as written by the notify stage.

    Raises:
        AuthError: 404 for a bad name or a missing file.
    """
    if not _BULLETIN.fullmatch(week):
        raise AuthError(404, "通报不存在。")
    return _send(bulletins_folder(settings) / f"{week}.html")
