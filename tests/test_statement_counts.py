"""Work over a set of rows costs a constant number of SQL statements (plus inserts that grow
with the set), never a statement or two per row: claiming alerts one by one made a backlog
of 2,000 overdue stories take four slow runs (issue 15). Covered: the deadline sweep and its
alert emails, and the editors' push order.

Statements are counted with an SQLAlchemy event listener on every engine while the real
code runs, on SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from pipeline.models import Alert, Draft, OutboxMessage
from pipeline.notify import alerts
from pipeline.notify.alerts import deliver_alerts
from pipeline.push.order import set_push_order
from pipeline.sweep import sweep
from tests.conftest import Workspace

COLUMNS = ["填报单位", "活动类型", "标题", "活动日期", "活动时间", "活动地点", "活动方式",
           "参与人数", "活动内容", "宣传报道", "联系人"]
# 东方红社区 has no email: with no editors configured its overdue alerts have no address.
NOW = datetime.fromisoformat("2026-06-05T10:00+08:00")  # the 12 drafts overdue and escalated
UNITS = ["洋湖国际社区", "东方红社区", "麓谷街道", "物流行业分会"]


def ledger(path: Path, count: int, day: date, tag: str) -> Path:
    """A CSV ledger of ``count`` reports of activities on ``day``."""
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for i in range(count):
            unit = UNITS[i % len(UNITS)]
            writer.writerow([unit, "参观教育基地", f"{unit}组织参观禁毒教育基地（{tag}-{i}）",
                             f"{day:%Y/%m/%d}", "9:00-11:30", "XX新区禁毒教育基地", "集中参观",
                             "40人", f"{unit}组织干部群众40人参观禁毒教育基地（第{i}批）。",
                             "XX新区发布", "赵磊 0731-88000606"])
    return path


@contextmanager
def counted() -> Iterator[Counter[str]]:
    """Count the statements every engine sends, by first word (INSERT, SELECT, …)."""
    counts: Counter[str] = Counter()

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        counts[statement.split(None, 1)[0].upper()] += 1

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    try:
        yield counts
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)


def totals(ws: Workspace) -> tuple[int, int, int]:
    """Alerts, unsent alerts and outbox emails in the database."""
    store = ws.store()
    try:
        with store.session() as session:
            alerts = session.exec(select(Alert)).all()
            emails = session.exec(select(OutboxMessage)).all()
    finally:
        store.close()
    return len(alerts), sum(a.sent_at is None for a in alerts), len(emails)


def overdue_check(ws: Workspace, tmp_path: Path, count: int, day: date
                  ) -> tuple[Counter[str], int, int]:
    """Submit ``count`` reports of activities on ``day``, then run `check` four days later,
    when every one is overdue and escalated; returns its statements, new alerts and emails."""
    path = ledger(tmp_path / f"ledger-{count}.csv", count, day, f"{day:%m%d}")
    submitted = ws.run("submit", str(path), now=f"{day + timedelta(days=1)}T10:00+08:00")
    assert submitted.code == 0, submitted.err
    alerts, _, emails = totals(ws)
    with counted() as statements:
        checked = ws.run("check", "--json", now=f"{day + timedelta(days=4)}T10:00+08:00")
    assert checked.code == 0, checked.err
    overdue = checked.json()["overdue"]
    assert sum(f["new"] for f in overdue) == count  # earlier backlogs: recorded before
    after, unsent, emails_after = totals(ws)
    assert unsent == 0  # the whole backlog queued in this one run
    return statements, after - alerts, emails_after - emails


def test_a_sweep_costs_constant_statements_plus_inserts(any_workspace: Workspace,
                                                        tmp_path: Path) -> None:
    ws = any_workspace
    ws.configure("notify", editors=[])  # so some alerts have no address (marked, not sent)
    small = overdue_check(ws, tmp_path, 8, date(2026, 6, 1))
    # A second, larger backlog on the same database; the first one's drafts are still
    # waiting (read again, recorded before) and its alerts are sent.
    large = overdue_check(ws, tmp_path, 80, date(2026, 6, 11))
    for statements, new, emails in (small, large):
        assert statements["INSERT"] <= new + emails  # never more than one per row
    assert large[1] > 9 * small[1]   # the backlog really is ten times larger
    other = [{k: v for k, v in s.items() if k != "INSERT"} for s, _, _ in (small, large)]
    assert other[0] == other[1], "statements other than inserts grew with the backlog"


def test_two_runs_claim_a_backlog_of_many_batches_each_alert_once(
        any_workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = any_workspace
    monkeypatch.setattr(alerts, "CLAIM_BATCH", 3)  # a backlog of many batches
    path = ledger(tmp_path / "ledger.csv", 12, date(2026, 6, 1), "x")
    assert ws.run("submit", str(path), now="2026-06-02T10:00+08:00").code == 0
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        store = ws.store()
        try:
            with store.session() as session:
                barrier.wait()
                sweep(session, ws.settings, NOW)
            barrier.wait()
            deliver_alerts(store, ws.settings, NOW)
        except Exception as exc:  # noqa: BLE001 - reported by the main thread below
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    store = ws.store()
    try:
        with store.session() as session:
            recorded = session.exec(select(Alert)).all()
            emails = session.exec(select(OutboxMessage)).all()
    finally:
        store.close()
    assert len(recorded) == 24 and all(a.sent_at is not None for a in recorded)
    # Each alert went to each of its addresses in exactly one email.
    expected = Counter((address, a.id) for a in recorded for address in json.loads(a.recipients))
    queued = Counter((address, i) for m in emails for address in json.loads(m.recipients)
                     for i in json.loads(m.alert_ids))
    assert queued == Counter(set(expected)) == expected


def test_the_push_order_is_two_updates_for_any_number_of_stories(
        any_workspace: Workspace, tmp_path: Path) -> None:
    ws = any_workspace
    path = ledger(tmp_path / "ledger.csv", 24, date(2026, 6, 14), "order")
    submitted = ws.run("submit", "--json", str(path), now="2026-06-15T09:00+08:00")
    ids = [a["id"] for a in submitted.json()["accepted"]]
    for draft_id in ids:
        assert ws.run("approve", str(draft_id), now="2026-06-15T10:00+08:00").code == 0
    now = datetime.fromisoformat("2026-06-15T11:00+08:00")
    store = ws.store()
    try:
        counts = []
        for order in (ids[:3], ids[::-1], [*ids[4:2:-1], 999_999]):  # 999999: no such draft
            with counted() as statements, store.session() as session:
                ranked = set_push_order(session, order, now)
            counts.append(statements)
            assert ranked == [i for i in order if i in ids]
            with store.session() as session:
                ranks = dict(session.exec(select(Draft.id, Draft.push_rank)).all())
            assert ranks == {i: ranked.index(i) + 1 if i in ranked else None for i in ids}
    finally:
        store.close()
    assert counts[0] == counts[1] == counts[2] and counts[1]["UPDATE"] == 2


def test_a_batch_is_stored_with_a_few_inserts_per_group_and_rows_match_their_reports(
        any_workspace: Workspace, tmp_path: Path) -> None:
    """One multi-row INSERT per table and group, whatever the group's size: asking for the
    new ids in the rows' order made SQLAlchemy send one INSERT per row and table on SQLite,
    each journalled inside the group's savepoint (90 MB of temporary writes for 2,000
    reports). The ids are matched back by a unique column: each draft, its submission and
    its folder still belong to the same report."""
    ws = any_workspace
    first = ws.run("submit", str(ledger(tmp_path / "first.csv", 2, date(2026, 5, 31), "a")),
                   now="2026-05-31T18:00+08:00")   # the units are synced on first use
    assert first.code == 0, first.err
    counts = []
    for count, day in ((6, date(2026, 6, 1)), (60, date(2026, 6, 2))):
        path = ledger(tmp_path / f"batch-{count}.csv", count, day, f"b{count}")
        with counted() as statements:
            submitted = ws.run("submit", "--json", str(path), now=f"{day}T18:00+08:00")
        assert submitted.code == 0, submitted.err
        assert len(submitted.json()["accepted"]) == count
        counts.append(statements["INSERT"])
        for i, accepted in enumerate(submitted.json()["accepted"]):
            assert accepted["row"] == i + 2   # the ledger's rows, in order
            assert f"（第{i}批）" in ws.article(accepted["id"])
    assert counts[0] == counts[1] <= 6, counts
    store = ws.store()
    try:
        with store.session() as session:
            pairs = session.execute(sa.text(
                "SELECT d.title, s.title, s.source_row FROM draft d "
                "JOIN submission s ON s.id = d.submission_id")).all()
    finally:
        store.close()
    assert len(pairs) == 68
    assert all(draft == sub for draft, sub, _ in pairs)
    assert {row for _, title, row in pairs if "b60-" in title} == set(range(2, 62))
