"""The folder channel: ``published/<date>/`` keeps a copy of everything that went out.

Writing is idempotent (same paths, same bytes), so a push resumed after a crash
simply writes the same files again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from ..config import Settings
from ..drafts import ARTICLE_HTML, ARTICLE_MD, draft_files
from ..models import Draft
from ..writer import GuardedWriter

MANIFEST = "manifest.json"


class FolderPublisher:
    """Copies drafts and writes the day's manifest under ``published/``."""

    channel = "folder"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.writer = GuardedWriter(settings.paths.published)

    def article_dir(self, day: date, position: int, draft_id: int) -> str:
        return f"{day.isoformat()}/{position:02d}-{draft_id}"

    def write_article(self, day: date, position: int, draft: Draft,
                      meta: Mapping[str, Any]) -> str:
        """Copy the files the draft's row names into the day's folder (there under the
        fixed names ``article.md``/``article.html``); returns the folder, relative."""
        folder = self.article_dir(day, position, draft.id or 0)
        md_path, html_path = draft_files(self.settings, draft)
        self.writer.copy_file(html_path, f"{folder}/{ARTICLE_HTML}")
        self.writer.copy_file(md_path, f"{folder}/{ARTICLE_MD}")
        self._copy_photos(md_path.parent / "photos", f"{folder}/photos")
        self.writer.write_text(f"{folder}/meta.json", _dump(meta))
        return folder

    def _copy_photos(self, source: Path, target: str) -> None:
        if not source.is_dir():
            return
        for photo in sorted(source.iterdir()):
            if photo.is_file() and not photo.name.startswith("."):
                self.writer.copy_file(photo, f"{target}/{photo.name}")

    def write_manifest(self, day: date, manifest: Mapping[str, Any]) -> str:
        relative = f"{day.isoformat()}/{MANIFEST}"
        self.writer.write_text(relative, _dump(manifest))
        return relative


def _dump(data: Mapping[str, Any] | Sequence[Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n"
