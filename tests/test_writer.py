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


def test_a_new_folder_is_written_in_place_and_never_over_an_existing_one(tmp_path: Path
                                                                          ) -> None:
    writer = GuardedWriter(tmp_path / "drafts")
    writer.create_folder("7", {"article.md": "正文".encode(), "photos/a.jpg": b"\xff\xd8"})
    assert (tmp_path / "drafts" / "7" / "article.md").read_text("utf-8") == "正文"
    assert (tmp_path / "drafts" / "7" / "photos" / "a.jpg").read_bytes() == b"\xff\xd8"
    with pytest.raises(FileExistsError):
        writer.create_folder("7", {"article.md": b"other"})
    assert (tmp_path / "drafts" / "7" / "article.md").read_text("utf-8") == "正文"


@pytest.mark.parametrize("bad", ["../x", "7/../../x"])
def test_a_new_folder_outside_the_root_or_with_an_escaping_file_is_refused(tmp_path: Path,
                                                                           bad: str) -> None:
    writer = GuardedWriter(tmp_path / "drafts")
    with pytest.raises(PipelineError, match="outside"):
        writer.create_folder(bad, {"a.md": b"x"})
    with pytest.raises(PipelineError, match="outside"):
        writer.create_folder("8", {"../../y.md": b"x"})
    assert not (tmp_path / "x").exists() and not (tmp_path / "y.md").exists()
    assert not (tmp_path / "drafts" / "8").exists()
