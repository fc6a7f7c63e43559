"""The guarded writer: nothing is written outside its folder, files appear whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import PipelineError
from pipeline.writer import GuardedWriter


@pytest.mark.parametrize("bad", ["../x.html", "/etc/passwd", "a/../../x", "a/../../../tmp/x"])
def test_paths_outside_the_folder_are_refused(tmp_path: Path, bad: str) -> None:
    writer = GuardedWriter(tmp_path / "drafts")
    with pytest.raises(PipelineError, match="outside"):
        writer.write_text(bad, "x")
    assert not (tmp_path / "x.html").exists()


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path: Path) -> None:
    writer = GuardedWriter(tmp_path)
    writer.write_text("1/article.md", "第一版")
    writer.write_text("1/article.md", "第二版")
    source = tmp_path / "photo.jpg"
    source.write_bytes(b"\xff\xd8\xff" + b"0" * 100)
    writer.copy_file(source, "1/photos/a.jpg")
    assert (tmp_path / "1" / "article.md").read_text("utf-8") == "第二版"
    assert sorted(p.name for p in (tmp_path / "1").rglob("*")) == ["a.jpg", "article.md",
                                                                     "photos"]
    writer.remove_tree("1")
    assert not (tmp_path / "1").exists()
