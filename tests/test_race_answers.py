"""The loser of a sign-off or a release race is told the truth: who did what first, and
whether the draft or push already stands where the loser wanted (``already_done``);
the winner's history line and audit row are the only ones.

Two real concurrent attempts (threads, each with its own connection) on SQLite and
PostgreSQL, many trials, one winner each; then the same answers through the desk, the
API and the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import col, select

from pipeline import lifecycle, review
from pipeline.clock import Clock
from pipeline.errors import PipelineError, RaceLost
from pipeline.models import AuditLog, Draft, DraftEvent, Publication, SignOff, StateEvent
from pipeline.push import release_unsent
from pipeline.push.channel import day_job
from pipeline.web.app import create_app
from pipeline.web.auth import add_user
from tests.conftest import Workspace, make_workspace, together
from tests.fakewechat import FakeWeChat
from tests.test_flow import write_report

MORNING = "2026-06-15T10:00+08:00"
NOW = datetime.fromisoformat(MORNING)
SIGN_TRIALS = 12
RELEASE_TRIALS = 6
PASSWORD = "a-long-password"


def race(*calls: Callable[[], Any]) -> list[Any]:
    """The calls at the same moment: each one's result, or the loser's PipelineError."""
    return together(*calls, keep=(PipelineError,))


def submit(ws: Workspace, tmp_path: Path, count: int, day: str = "2026-06-15") -> list[int]:
    folder = tmp_path / f"reports-{day}"
    folder.mkdir(exist_ok=True)
    paths = [str(write_report(folder, f"r{n}", unit="麓谷街道", kind="lecture",
                              title=f"麓谷街道禁毒讲座第{n + 1}场", start=f"{day} 09:00"))
             for n in range(count)]
    accepted = ws.run("submit", "--json", *paths, now=f"{day}T10:00+08:00").json()["accepted"]
    assert len(accepted) == count
    return [int(a["id"]) for a in accepted]


# ----------------------------------------------------------------------- sign-off

def test_two_signers_at_once_one_signs_the_other_is_told_who(database_url: str,
                                                             tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", database_url, staged=True)  # 初审: 王编辑, 李编辑
    settings, store = ws.settings, ws.store()
    ids = submit(ws, tmp_path, SIGN_TRIALS)
    postgres = database_url.startswith("postgres")

    def sign(draft_id: int, actor: str, stage: str | None) -> review.Outcome:
        with store.session() as session:
            return review.transition(session, settings, draft_id, "approve", actor=actor,
                                     note="", now=NOW, stage=stage)
    try:
        for trial, draft_id in enumerate(ids):
            # The desk and the API name the stage shown; on PostgreSQL every other trial
            # names none (the CLI's default), and the loser then loses the row update.
            stage = None if postgres and trial % 2 else "初审"
            results = race(
                lambda d=draft_id, s=stage: sign(d, "王编辑", s),  # type: ignore[misc]
                lambda d=draft_id, s=stage: sign(d, "李编辑", s))  # type: ignore[misc]
            won = [r for r in results if isinstance(r, review.Outcome)]
            lost = [r for r in results if isinstance(r, RaceLost)]
            assert len(won) == 1 and len(lost) == 1, results
            winner = "王编辑" if isinstance(results[0], review.Outcome) else "李编辑"
            answer = lost[0]
            assert answer.code == "review.signed_meanwhile" and answer.already_done
            assert answer.params["by"] == winner and answer.params["stage"] == "初审"
            assert f"{winner} 已在刚才" in answer.text("zh_CN") and "初审" in answer.text()
            assert f"{winner} signed 初审 of draft {draft_id}" in answer.text("en")
            with store.session() as session:
                draft = session.get(Draft, draft_id)
                assert draft is not None and draft.review_stage == 1
                assert [s.by for s in session.exec(select(SignOff).where(
                    SignOff.draft_id == draft_id))] == [winner]
                assert [e.actor for e in session.exec(select(DraftEvent).where(
                    DraftEvent.draft_id == draft_id, DraftEvent.action == "sign"))] == [winner]
    finally:
        store.close()


def test_a_signer_who_lost_to_a_send_back_is_told_what_happened(database_url: str,
                                                                tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", database_url, staged=True)
    settings, store = ws.settings, ws.store()
    ids = submit(ws, tmp_path, 6)

    def act(draft_id: int, actor: str, action: str) -> review.Outcome:
        with store.session() as session:
            return review.transition(session, settings, draft_id, action, actor=actor,
                                     note="请补充照片" if action != "approve" else "",
                                     now=NOW, stage="初审" if action == "approve" else None)
    try:
        for draft_id in ids:
            results = race(lambda d=draft_id: act(d, "王编辑", "approve"),  # type: ignore[misc]
                               lambda d=draft_id: act(d, "李编辑", "request_changes"))  # type: ignore[misc]
            assert sum(isinstance(r, review.Outcome) for r in results) == 1, results
            with store.session() as session:
                draft = session.get(Draft, draft_id)
                assert draft is not None
                moves = session.exec(select(DraftEvent).where(
                    DraftEvent.draft_id == draft_id, DraftEvent.action != "submitted")).all()
            assert len(moves) == 1  # one history line: the winner's
            (answer,) = [r for r in results if not isinstance(r, review.Outcome)]
            if moves[0].action == "sign" and not isinstance(answer, RaceLost):
                # SQLite: the send-back came second and found the draft at 复审, which
                # 李编辑 may not send back (a refusal that says so, not a race)
                assert answer.code == "review.not_signer" and "复审" in answer.text()
                continue
            assert isinstance(answer, RaceLost), answer
            assert answer.code == "review.moved_meanwhile" and not answer.already_done
            assert answer.params["by"] == moves[0].actor
            assert answer.params["action"] == moves[0].action
            assert answer.params["state"] == draft.status
            if moves[0].action == "request_changes":
                assert "李编辑 已在刚才" in answer.text("zh_CN") and "退回修改" in answer.text()
    finally:
        store.close()


def test_the_desk_the_api_and_the_cli_tell_the_second_signer(workspace: Workspace,
                                                             tmp_path: Path) -> None:
    """The answers' shape, with the second signer coming a moment later (on SQLite
    exactly what a race comes to: writers take turns)."""
    ws = workspace
    ids = submit(ws, tmp_path, 3)
    store = ws.store()
    with store.session() as session:
        for name in ("王编辑", "李编辑"):
            add_user(session, name, PASSWORD, Clock().now())
    client = TestClient(create_app(ws.settings, store, Clock(), secret="s" * 40))

    def login(name: str) -> str:
        answer = client.post("/api/login", json={"name": name, "password": PASSWORD})
        assert answer.status_code == 200
        return str(answer.json()["csrf_token"])

    try:
        # API: the second signature of the same stage is ok, already done, no audit row.
        first = client.post(f"/api/drafts/{ids[0]}/actions", headers={"X-CSRF-Token": login(
            "王编辑")}, json={"action": "approve", "stage": "审核"})
        assert first.status_code == 200 and first.json()["already_done"] is False
        second = client.post(f"/api/drafts/{ids[0]}/actions", headers={
            "X-CSRF-Token": login("李编辑")}, json={"action": "approve", "stage": "审核"})
        assert second.status_code == 200, second.text
        body = second.json()
        assert body["already_done"] is True and body["code"] == "review.signed_meanwhile"
        assert "王编辑 已在刚才" in body["message"] and "审核" in body["message"]
        # ... and a signer who lost to a send-back gets a 409 saying so.
        token = login("王编辑")
        client.post(f"/api/drafts/{ids[1]}/actions", headers={"X-CSRF-Token": token},
                    json={"action": "request_changes", "note": "请补充照片"})
        late = client.post(f"/api/drafts/{ids[1]}/actions", headers={
            "X-CSRF-Token": login("李编辑")}, json={"action": "approve", "stage": "审核"})
        assert late.status_code == 409 and late.json()["code"] == "review.moved_meanwhile"
        assert late.json()["already_done"] is False and "退回修改" in late.json()["error"]

        # The desk: a flash with who signed, back on the draft's page.
        page = client.get(f"/drafts/{ids[2]}").text
        assert 'name="stage" value="审核"' in page
        csrf = login("王编辑")
        assert client.post(f"/drafts/{ids[2]}/action", data={
            "csrf_token": csrf, "action": "approve", "stage": "审核"},
            follow_redirects=False).status_code == 303
        csrf = login("李编辑")
        answer = client.post(f"/drafts/{ids[2]}/action", data={
            "csrf_token": csrf, "action": "approve", "stage": "审核"})
        assert answer.status_code == 200 and "王编辑 已在刚才" in answer.text
        assert "无需再签" in answer.text
        with store.session() as session:
            audits = session.exec(select(AuditLog).where(AuditLog.action == "approve")).all()
            assert sorted(a.target for a in audits) == [f"draft:{ids[0]}", f"draft:{ids[2]}"]
    finally:
        store.close()

    # The CLI: the same stage named again is answered with who signed it, exit 0.
    again = ws.run("approve", str(ids[0]), "--by", "张三", "--stage", "审核", now=MORNING)
    assert again.code == 0 and "王编辑 signed 审核" in again.out, again.err
    refused = ws.run("approve", str(ids[1]), "--by", "张三", "--stage", "审核", now=MORNING)
    assert refused.code == 1 and "sent back for changes by 王编辑" in refused.err


# ----------------------------------------------------------------------- release

def needs_a_person(ws: Workspace, fake: FakeWeChat, tmp_path: Path, day: date) -> int:
    """A push of ``day`` whose outcome WeChat could not tell: it waits for a person."""
    (draft_id,) = submit(ws, tmp_path, 1, day.isoformat())
    assert ws.run("approve", str(draft_id), now=f"{day}T10:00+08:00").code == 0
    fake.inject("freepublish/submit", "drop_before", times=3)
    ws.run("push", now=f"{day}T20:00+08:00")
    store = ws.store()
    try:
        with store.session() as session:
            found = day_job(session, ws.settings, day)
            assert found is not None
            if found[1].state != "needs_human":  # the reconciler would get there later
                lifecycle.move(session, lifecycle.WECHAT_JOB, found[1], "needs_human",
                               actor="test", now=NOW)
    finally:
        store.close()
    return draft_id


def test_two_editors_releasing_a_push_at_once_one_releases(
        database_url: str, tmp_path: Path, wechat_api: FakeWeChat,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WECHAT_APPSECRET", "test-secret")
    ws = make_workspace(tmp_path / "ws", database_url)
    ws.configure("wechat", mode="freepublish", appid="wxTESTAPPID",
                 base_url=wechat_api.base_url, read_timeout=2.0)
    settings, store = ws.settings, ws.store()

    def release(day: date, actor: str) -> int:
        return release_unsent(store, settings, day, NOW, actor=actor)
    try:
        for trial in range(RELEASE_TRIALS):
            day = date(2026, 6, 15 + trial)
            draft_id = needs_a_person(ws, wechat_api, tmp_path, day)
            results = race(lambda d=day: release(d, "王编辑"),  # type: ignore[misc]
                               lambda d=day: release(d, "李编辑"))  # type: ignore[misc]
            assert sorted(type(r).__name__ for r in results) == ["RaceLost", "int"], results
            winner = "王编辑" if isinstance(results[0], int) else "李编辑"
            (answer,) = [r for r in results if isinstance(r, RaceLost)]
            assert answer.code == "push.released_meanwhile" and answer.already_done
            assert answer.params == {"by": winner, "date": str(day), "count": 1,
                                     "at": "10:00"}
            assert f"{winner} 已在刚才（10:00）将 {day} 的推送记为未发出" in answer.text("zh_CN")
            assert "1 篇稿件已放回队列" in answer.text("zh_CN")
            with store.session() as session:
                found = day_job(session, settings, day)
                assert found is not None and found[1].state == "cancelled"
                releases = session.exec(select(StateEvent).where(
                    StateEvent.row_id == found[1].id, StateEvent.action == "release",
                    StateEvent.machine == "wechat_job")).all()
                assert [e.actor for e in releases] == [winner]
                draft = session.get(Draft, draft_id)
                assert draft is not None and draft.status == "approved"
                assert session.exec(select(sa.func.count()).select_from(DraftEvent).where(
                    DraftEvent.draft_id == draft_id,
                    DraftEvent.action == "hand_back")).one() == 1
                assert session.exec(select(Publication.state).where(
                    col(Publication.draft_id) == draft_id,
                    Publication.push_id == found[0].id)).all() == ["cancelled"]
            # the published story goes on with the next day's push; take it out of the way
            with store.session() as session:
                draft = session.get(Draft, draft_id)
                assert draft is not None
                review.transition(session, settings, draft_id, "reject", actor="王编辑",
                                  note="试验结束", now=NOW)
    finally:
        store.close()

    # The CLI: a second release is told who released it, exit 0; confirming is refused
    # with the same truth.
    day = date(2026, 6, 15 + RELEASE_TRIALS)
    needs_a_person(ws, wechat_api, tmp_path, day)
    assert ws.run("release", str(day), "--by", "王编辑", now=MORNING).code == 0
    again = ws.run("release", str(day), "--by", "李编辑", now=MORNING)
    assert again.code == 0 and f"王编辑 recorded the push of {day} as not sent" in again.out
    confirm = ws.run("confirm-sent", str(day), now=MORNING)
    assert confirm.code == 1 and "王编辑 recorded the push" in confirm.err
