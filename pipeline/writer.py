"""The one guarded writer for an output folder (``drafts/`` or ``published/``).

Every path is resolved inside the folder or refused, so neither a report's
text nor a file name it carries can make us write anywhere else. Files are
written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .errors import PipelineError


class GuardedWriter:
    """Writes files only below ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._root = str(self.root)
        self._prefix = self._root.rstrip(os.sep) + os.sep

    def path(self, relative: str | Path) -> Path:
        """Resolve ``relative`` inside the root, refusing anything that escapes it.

        Raises:
            PipelineError: when the path would leave the folder.
        """
        # A lexical check (no file system calls): absolute paths and ".." that climb out
        # are refused; the names we write are generated, never taken from a report.
        # On strings: Path.parents costs more than the rest of a small write.
        target = os.path.normpath(os.path.join(self._root, relative))
        if target != self._root and not target.startswith(self._prefix):
            raise PipelineError.coded("files.outside", path=str(relative), root=str(self.root))
        return Path(target)

    def write_text(self, relative: str | Path, text: str) -> Path:
        return self.write_bytes(relative, text.encode("utf-8"))

    def write_bytes(self, relative: str | Path, data: bytes) -> Path:
        """Write atomically (a temporary file renamed into place).

        Raises:
            PipelineError: ``files.folder_unwritable`` naming the folder.
        """
        target = self.path(relative)
        try:
            return self._write(target, data)
        except OSError as exc:  # permissions, a full or read-only disk, a file in the way
            raise self.unwritable(target.parent, exc) from exc

    def unwritable(self, folder: Path, exc: OSError) -> PipelineError:
        return PipelineError.coded("files.folder_unwritable", folder=str(folder),
                                   reason=exc.strerror or type(exc).__name__)

    def _write(self, target: Path, data: bytes) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def create_folder(self, relative: str | Path, files: dict[str, bytes]) -> Path:
        """A new folder with these files, written in place: for a folder no reader can
        see yet (a draft whose row is not committed).

        Raises:
            FileExistsError: the folder exists already.
        """
        folder = self.path(relative)
        names = [self.path(f"{relative}/{name}") for name in files]  # every name checked
        try:
            os.mkdir(folder)
        except FileNotFoundError:  # the drafts folder itself is missing
            folder.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(folder)
        made = {folder}
        for target, data in zip(names, files.values(), strict=True):
            if target.parent not in made:  # photos/
                target.parent.mkdir(parents=True, exist_ok=True)
                made.add(target.parent)
            with open(target, "xb") as handle:
                handle.write(data)
        return folder

    def copy_file(self, source: Path, relative: str | Path) -> Path:
        with source.open("rb") as handle:
            return self.write_bytes(relative, handle.read())

    def remove_tree(self, relative: str | Path) -> None:
        target = self.path(relative)
        if target != self.root:
            shutil.rmtree(target, ignore_errors=True)
