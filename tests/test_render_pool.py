"""A large batch rendered by worker processes (``pipeline/render/pool.py``) stores exactly
what the submitting process alone stores: the same rows, findings and files, byte for
byte; a worker that dies costs time only; a broken template says what it says without
the pool; a parent killed with SIGKILL leaves no worker behind (test_intake_crash.py)."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.render.pool import PARALLEL_MIN, cpus
from pipeline.store import open_store

from .conftest import ROOT, Workspace, make_workspace
from .test_intake_crash import NOW, write_reports

pytestmark = pytest.mark.skipif(cpus() < 2, reason="render workers need two CPUs")
COUNT = PARALLEL_MIN + 30
# A body that proofreading flags (a phone number, a banned word) and that has a link
# and a list, so the findings and the HTML both have something to compare.
EXTRA = "\n\n- 咨询电话13812345678\n- 详见[报道](https://www.example.com/a)，吸毒者要关爱。"


def submit(ws: Workspace, paths: list[Path], *flags: str, **env: str
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *flags, "--config", str(ws.path / "config.toml"),
         "--now",
         NOW, "submit", *map(str, paths)], cwd=ROOT, text=True, capture_output=True,
        timeout=600, env={**os.environ, "DATABASE_URL": ws.database_url, **env})


def serial(ws: Workspace) -> None:
    config = ws.path / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("parallel_render = true", "parallel_render = false"),
                      encoding="utf-8")


def inbox(tmp_path: Path) -> list[Path]:
    paths = write_reports(tmp_path / "inbox", COUNT)
    for path in paths[::7]:  # some reports with findings and references
        report = json.loads(path.read_text(encoding="utf-8"))
        report["body"] += EXTRA
        path.write_text(json.dumps(report, ensure_ascii=False), encoding="utf-8")
    return paths


def contents(ws: Workspace) -> dict[str, object]:
    """Everything a batch stored, without the moments and the generated names."""
    store = open_store(ws.database_url)
    try:
        with store.engine.connect() as c:
            drafts = c.execute(sa.text(
                "SELECT id, title, author, digest, status, problems, article_file "
                "FROM draft ORDER BY id")).all()
            findings = c.execute(sa.text(
                "SELECT draft_id, kind, rule, text, offset_start, offset_end, suggestion, "
                "message FROM finding ORDER BY id")).all()
            sources = c.execute(sa.text(
                "SELECT id, source FROM submission ORDER BY id")).all()
    finally:
        store.close()
    files = {str(p.relative_to(ws.path / "drafts")): p.read_bytes()
             for p in sorted((ws.path / "drafts").rglob("article*")) if p.is_file()}
    return {"drafts": drafts, "findings": findings, "sources": sources, "files": files}


@pytest.mark.parametrize("early", [False, True], ids=["new-database", "early-send"])
def test_workers_store_exactly_what_one_process_stores(tmp_path: Path, early: bool) -> None:
    """On a database that exists and is current, the workers get the batch before the
    submitting process loads the store (a lean read of the unit names); on a new one,
    after it has migrated."""
    paths = inbox(tmp_path)
    alone = make_workspace(tmp_path / "alone", f"sqlite:///{tmp_path / 'alone.db'}")
    serial(alone)
    pooled = make_workspace(tmp_path / "pooled", f"sqlite:///{tmp_path / 'pooled.db'}")
    if early:
        assert pooled.run("units").code == 0  # creates and migrates the database
    one, many = submit(alone, paths), submit(pooled, paths, "-v")
    assert one.returncode == 0 and many.returncode == 0, (one.stderr, many.stderr)
    assert ("workers have the batch before the store" in many.stderr) == early
    assert one.stdout == many.stdout
    assert one.stdout.count("accepted ") == COUNT
    a, b = contents(alone), contents(pooled)
    assert len(a["files"]) == 2 * COUNT  # type: ignore[arg-type]
    assert a["findings"], "the reports were meant to give proofreading something to find"
    assert a == b


def test_a_long_ledger_goes_to_the_workers_before_the_store_loads(tmp_path: Path) -> None:
    """One CSV file of 230 rows: the workers start once it is read (a lean read of the
    unit names), and the drafts are those of one process."""
    rows = [json.loads(p.read_text(encoding="utf-8")) for p in inbox(tmp_path)]
    ledger = tmp_path / "台账.csv"
    with ledger.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(["单位", "活动类型", "标题", "活动时间", "活动地点", "活动方式", "参与人数",
                      "活动内容"])
        out.writerows([r["unit"], r["activity_type"], r["title"], r["time"], r["place"],
                       r["form"], r["participants"], r["body"]] for r in rows)
    alone = make_workspace(tmp_path / "alone", f"sqlite:///{tmp_path / 'alone.db'}")
    serial(alone)
    pooled = make_workspace(tmp_path / "pooled", f"sqlite:///{tmp_path / 'pooled.db'}")
    for ws in (alone, pooled):
        assert ws.run("units").code == 0  # a current database: the lean read applies
    one, many = submit(alone, [ledger]), submit(pooled, [ledger], "-v")
    assert one.returncode == 0 and many.returncode == 0, (one.stderr, many.stderr)
    assert "workers have the batch before the store" in many.stderr
    assert one.stdout == many.stdout and one.stdout.count("accepted ") == COUNT
    assert contents(alone) == contents(pooled)


def test_a_worker_that_dies_costs_time_only(tmp_path: Path, database_url: str) -> None:
    paths = inbox(tmp_path)
    alone = make_workspace(tmp_path / "alone", f"sqlite:///{tmp_path / 'alone.db'}")
    serial(alone)
    ws = make_workspace(tmp_path / "ws", database_url)
    # Each worker kills itself (SIGKILL) after its first answer: the rest of its share is
    # rendered by the submitting process.
    result = submit(ws, paths, PIPELINE_CRASH_AT="render_worker_answered")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("accepted ") == COUNT
    assert "Traceback" not in result.stderr
    assert "render worker stopped" in result.stderr  # the log says why it took longer
    assert submit(alone, paths).returncode == 0
    assert contents(ws) == contents(alone)


def test_a_broken_template_says_the_same_with_workers(tmp_path: Path) -> None:
    paths = inbox(tmp_path)
    outputs = []
    for name, parallel in (("alone", False), ("pooled", True)):
        ws = make_workspace(tmp_path / name, f"sqlite:///{tmp_path / name}.db")
        if not parallel:
            serial(ws)
        template = ws.path / "templates" / "lecture.md.j2"
        template.write_text("{{ report.title }\n", encoding="utf-8")  # unclosed tag
        result = submit(ws, paths)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert "lecture.md.j2" in result.stderr
        assert "render worker" not in result.stderr  # stopped by us: no news
        outputs.append([line for line in result.stderr.splitlines()
                        if not re.match(r"\d{4}-\d\d-\d\d ", line)])  # not the log's
        assert contents(ws)["drafts"] == []
    assert outputs[0] == outputs[1]


def test_answers_wait_for_room_and_skipped_ones_make_room(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """Two workers' threads answering 200 jobs while at most three answers of each may
    wait untaken; the taker skips every fifth job (a duplicate): nobody waits forever,
    every taken answer is the right one, and nothing is held at the end."""
    import threading

    from pipeline.render import pool

    monkeypatch.setattr(pool, "HELD", 3)
    results = pool.Results()
    owner = {i: (i // pool.CHUNK) % 2 for i in range(200)}  # chunks dealt round robin

    def answer(worker: int) -> None:
        for i in range(200):
            if owner[i] == worker:
                results.put(worker, i, ("article", i))  # type: ignore[arg-type]

    threads = [threading.Thread(target=answer, args=(w,)) for w in (0, 1)]
    for thread in threads:
        thread.start()
    taken = [results.take(i) for i in range(200) if i % 5]
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert [a[1] for a in taken if a] == [i for i in range(200) if i % 5]
    assert results.held == {0: 0, 1: 0} and not results.found


def test_no_worker_to_be_had_means_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    ws = make_workspace(tmp_path / "ws", f"sqlite:///{tmp_path / 'ws.db'}")
    paths = inbox(tmp_path)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    result = ws.run("submit", *map(str, paths), now=NOW)
    assert result.code == 0, result.err
    assert result.out.count("accepted ") == COUNT
    assert "render workers could not start" in caplog.text
