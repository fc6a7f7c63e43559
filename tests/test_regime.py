"""The daily regime (issue 10): an empty push does not take the day, the editors are warned
once before it, a story approved afterwards still goes out that day, and a day that ends
without a push is a break (断更) on the calendar, in the digest and in the records."""

# ruff: noqa: F811  (fixtures imported from tests.smtpd are parameters by design)

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from sqlmodel import select

from pipeline import schedule
from pipeline.clock import Clock
from pipeline.models import Alert, Draft, Push, StateEvent
from pipeline.push.regime import day_records
from tests.conftest import Workspace
from tests.smtpd import (  # noqa: F401
    EDITOR,
    SmtpServer,
    configure,
    notify_cli,
    smtp_server,
)
from tests.test_flow import write_report


def _at(text: str) -> datetime:
    return datetime.fromisoformat(f"2026-06-{text}+08:00")


def _tick(ws: Workspace, when: str) -> None:
    store = ws.store()
    try:
        schedule.tick(store, ws.settings, Clock(_at(when)))
    finally:
        store.close()


def _submit(ws: Workspace, inbox: Path, name: str, unit: str, start: str, when: str) -> int:
    path = write_report(inbox, name, unit=unit, kind="lecture", title=f"{unit}举办禁毒讲座{name}",
                        start=start)
    result = ws.run("submit", "--json", str(path), now=f"2026-06-{when}+08:00")
    assert result.code == 0, result.err
    return int(result.json()["accepted"][0]["id"])


def _push_state(ws: Workspace, day: date) -> str | None:
    store = ws.store()
    try:
        with store.session() as session:
            row = session.exec(select(Push).where(Push.local_date == day)).first()
            return row.state if row else None
    finally:
        store.close()


def _empty_warnings(server: SmtpServer) -> list[str]:
    return [m.text for m in server.messages if "推送暂无可发稿件" in m.text]


def test_a_week_with_an_empty_day(workspace: Workspace, tmp_path: Path,
                                  smtp_server: SmtpServer, notify_cli: None) -> None:
    ws = workspace
    configure(ws, smtp_server)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    # Monday: a story approved in time goes out at push time.
    a = _submit(ws, inbox, "a", "麓谷街道", "2026-06-14 19:00", "15T10:00")
    assert ws.run("approve", str(a), "--by", "王编辑", now="2026-06-15T11:00+08:00").code == 0
    _tick(ws, "15T20:00")
    assert _push_state(ws, date(2026, 6, 15)) == "done"
    # Tuesday: a report waits for review. Two hours before push time the editors are told
    # once, with the stage and the title; the next tick does not tell them again.
    b = _submit(ws, inbox, "b", "雷锋街道", "2026-06-16 08:00", "16T10:00")
    _tick(ws, "16T17:30")
    assert _empty_warnings(smtp_server) == []          # not yet inside the two hours
    _tick(ws, "16T18:00")
    _tick(ws, "16T18:30")
    warnings = _empty_warnings(smtp_server)
    assert len(warnings) == 1
    assert "待审核（任一编辑）1篇：《雷锋街道举办禁毒讲座b》" in warnings[0]
    assert all(m.rcpt_tos == [EDITOR] for m in smtp_server.messages
               if "推送暂无可发稿件" in m.text)
    # Push time finds nothing: the day stays open.
    _tick(ws, "16T20:00")
    assert _push_state(ws, date(2026, 6, 16)) == "empty"
    assert ws.run("approve", str(b), "--by", "王编辑", now="2026-06-16T21:00+08:00").code == 0
    _tick(ws, "16T21:05")                               # late_push is off: the tick waits
    assert _push_state(ws, date(2026, 6, 16)) == "empty"
    dry = ws.run("push", "--dry-run", now="2026-06-16T21:10+08:00")
    assert dry.code == 0 and "would publish" in dry.out
    pushed = ws.run("push", "--json", now="2026-06-16T21:10+08:00")
    assert pushed.code == 0, pushed.err
    assert [x["id"] for x in pushed.json()["articles"]] == [b]
    assert _push_state(ws, date(2026, 6, 16)) == "done"
    # Wednesday: nothing at all; push time leaves the day empty, Thursday records a break.
    _tick(ws, "17T18:10")
    assert "目前也没有待审稿件，今日将断更" in _empty_warnings(smtp_server)[-1]
    _tick(ws, "17T20:00")
    assert _push_state(ws, date(2026, 6, 17)) == "empty"
    _tick(ws, "18T00:05")
    assert _push_state(ws, date(2026, 6, 17)) == "missed"
    store = ws.store()
    try:
        with store.session() as session:
            records = day_records(session, ws.settings, date(2026, 6, 15), date(2026, 6, 18),
                                  _at("18T08:00"))
            lapse = session.exec(select(StateEvent).where(StateEvent.machine == "push",
                                                          StateEvent.action == "lapse")).all()
            alerts = session.exec(select(Alert).where(Alert.kind == "push_empty")).all()
            published = session.exec(select(Draft).where(Draft.id == b)).one()
    finally:
        store.close()
    assert [(r.day.day, r.pushed, r.is_break) for r in records] == [
        (15, True, False), (16, True, False), (17, False, True), (18, False, False)]
    assert len(lapse) == 1 and "断更" in lapse[0].note
    assert [a.key for a in alerts] == ["push_empty:2026-06-16", "push_empty:2026-06-17"]
    assert published.status == "published" and not published.late
    digest = ws.run("digest", "--date", "2026-06-18", now="2026-06-18T08:30+08:00")
    assert digest.code == 0 and "昨日未推送（断更）" in digest.out


def test_late_push_sends_at_the_next_tick(workspace: Workspace, tmp_path: Path) -> None:
    ws = workspace
    ws.configure("schedule", late_push=True)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    b = _submit(ws, inbox, "b", "雷锋街道", "2026-06-16 08:00", "16T10:00")
    _tick(ws, "16T20:00")
    assert _push_state(ws, date(2026, 6, 16)) == "empty"
    assert ws.run("approve", str(b), "--by", "王编辑", now="2026-06-16T21:00+08:00").code == 0
    _tick(ws, "16T21:05")
    assert _push_state(ws, date(2026, 6, 16)) == "done"
    assert (ws.path / "published" / "2026-06-16" / "manifest.json").exists()
