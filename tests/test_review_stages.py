"""三审: a three-stage campaign day through the real CLI, a race of two signers, and the
history of every draft as a connected chain of moves."""

from __future__ import annotations

import io
import json
import stat
import threading
from pathlib import Path

import pytest
from sqlmodel import select

from pipeline import review
from pipeline.errors import ReviewError
from pipeline.models import Draft, SignOff
from tests.conftest import Workspace, check_histories, make_workspace
from tests.test_flow import write_report

MON = "2026-06-15T09:00+08:00"


@pytest.fixture
def staged(tmp_path: Path, database_url: str) -> Workspace:
    """The bundled district office: 初审 王编辑/李编辑, 复审 张主任, 终审 刘书记."""
    return make_workspace(tmp_path / "ws", database_url, staged=True)


def submit(ws: Workspace, tmp_path: Path, *names: str) -> list[int]:
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    files = [str(write_report(inbox, name, unit="麓谷街道", kind="lecture",
                              title=f"麓谷街道禁毒讲座{name}", start="2026-06-14 09:00"))
             for name in names]
    out = ws.run("submit", "--json", *files, now=MON).json()
    return [a["id"] for a in out["accepted"]]


def add_user(ws: Workspace, name: str, *args: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password-1\n"))
    result = ws.run("user", "add", name, *args)
    assert result.code == 0, result.err


def approve(ws: Workspace, draft_id: int, by: str) -> tuple[int, str, str]:
    result = ws.run("approve", str(draft_id), "--by", by, now=MON)
    return result.code, result.out, result.err


def edit_with(ws: Workspace, draft_id: int, by: str, script: str, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> None:
    """``pipeline edit`` with $EDITOR a shell script doing ``script`` to the file."""
    editor = tmp_path / "editor.sh"
    editor.write_text(f"#!/bin/sh\n{script}\n", encoding="utf-8")
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("EDITOR", str(editor))
    assert ws.run("edit", str(draft_id), "--by", by, now=MON).code == 0


def shown(ws: Workspace, draft_id: int) -> dict[str, object]:
    return ws.run("show", "--json", str(draft_id), now=MON).json()  # type: ignore[no-any-return]


def test_a_three_stage_campaign_day(staged: Workspace, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    ws = staged
    add_user(ws, "李编辑", "--stage", "复审", "--email", "li@xxxq.example.cn",
             monkeypatch=monkeypatch)
    a, b = submit(ws, tmp_path, "a", "b")
    assert shown(ws, a)["stage"] == "初审" and shown(ws, a)["review"] == []

    # Only the stage's signers sign it; the sentence names the stage and who may.
    code, _, err = approve(ws, a, "张主任")
    assert code == 1 and "waits for 初审" in err and "王编辑" in err

    code, out, _ = approve(ws, a, "李编辑")
    assert code == 0 and "初审 signed by 李编辑" in out and "waiting for 复审" in out
    # 李编辑 may sign 复审 too (given by 'user add --stage'), but not of a draft whose 初审
    # she signed: one person, one stage.
    code, _, err = approve(ws, a, "李编辑")
    assert code == 1 and "already signed 初审" in err and "复审 needs someone else" in err

    # An edit between stages is recorded, and the next signer sees what changed.
    edit_with(ws, a, "王编辑", "sed -i 's/气氛热烈/气氛十分热烈/' \"$1\"", tmp_path, monkeypatch)
    data = shown(ws, a)
    assert "+活动现场气氛十分热烈" in str(data["changes_since_signoff"])
    assert "-活动现场气氛热烈" in str(data["changes_since_signoff"])
    edit = [h for h in data["history"] if h["action"] == "edit"][-1]  # type: ignore[index]
    assert "after 初审 signed by 李编辑" in edit["note"]
    text = ws.run("show", str(a), now=MON).out
    assert "signed:   初审 by 李编辑" in text and "waiting:  复审 (张主任, 李编辑)" in text

    assert approve(ws, a, "张主任")[0] == 0
    # 终审 waits for the leader; the queue filtered for him shows it, for 王编辑 it does not.
    mine = ws.run("queue", "--json", "--for", "刘书记", now=MON).json()
    assert [r["id"] for r in mine] == [a]
    assert ws.run("queue", "--json", "--for", "王编辑", now=MON).json() == [
        r for r in ws.run("queue", "--json", now=MON).json() if r["id"] == b]

    # A send-back at 终审 returns it to the unit; its resubmission starts at 初审 again.
    back = ws.run("request-changes", str(a), "--by", "刘书记", "--note", "请核实参与人数",
                  now=MON)
    assert back.code == 0 and "changes_requested" in back.out
    with ws.store().session() as session:
        review.transition(session, ws.settings, a, "resubmit", actor="reporter:麓谷街道",
                          note="已核实", now=_at(MON))
    data = shown(ws, a)
    assert data["stage"] == "初审" and data["review"] == [] and data["status"] == "drafted"

    # B passes all three stages by three people and is approved.
    for who in ("王编辑", "张主任", "刘书记"):
        assert approve(ws, b, who)[0] == 0
    data = shown(ws, b)
    assert data["status"] == "approved" and data["stage"] is None
    assert [(r["stage"], r["by"]) for r in data["review"]] == [  # type: ignore[union-attr]
        ("初审", "王编辑"), ("复审", "张主任"), ("终审", "刘书记")]

    # The push takes only the draft that passed every stage.
    pushed = ws.run("push", "--json", now="2026-06-15T20:00+08:00").json()
    assert [x["id"] for x in pushed["articles"]] == [b]
    record = shown(ws, b)
    assert [h["action"] for h in record["history"]] == [  # type: ignore[union-attr]
        "submitted", "sign", "sign", "approve", "claim", "publish"]
    assert len(record["review"]) == 3  # type: ignore[arg-type]
    assert_history_complete(ws)


def _at(text: str):  # type: ignore[no-untyped-def]
    from datetime import datetime

    return datetime.fromisoformat(text)


def test_edit_resets_sends_the_draft_back_to_the_first_stage(staged: Workspace,
                                                             tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    ws = staged
    ws.configure("review", edit_resets=True)
    (a,) = submit(ws, tmp_path, "a")
    assert approve(ws, a, "王编辑")[0] == 0
    edit_with(ws, a, "李编辑", "echo '补充一句。' >> \"$1\"", tmp_path, monkeypatch)
    data = shown(ws, a)
    assert data["stage"] == "初审" and data["review"] == []
    assert data["history"][-1]["action"] == "edit_reset"  # type: ignore[index]
    # The first signature is kept in the record; the new round needs a new 初审.
    assert approve(ws, a, "李编辑")[0] == 0 and shown(ws, a)["stage"] == "复审"


def test_one_stage_is_one_approval(workspace: Workspace, tmp_path: Path) -> None:
    (a,) = submit(workspace, tmp_path, "a")
    assert shown(workspace, a)["stage"] == "审核"
    assert approve(workspace, a, "anyone")[0] == 0
    assert shown(workspace, a)["status"] == "approved"


def test_two_signers_racing_on_one_stage(staged: Workspace, tmp_path: Path) -> None:
    """王编辑 and 李编辑 may both sign 初审; they press at the same moment. One wins; the
    other gets a sentence (who signed it; on SQLite, where the second comes after the
    first, naming no stage, that 复审 is not theirs); one sign-off is recorded and the
    stage moves once."""
    ws = staged
    ids = submit(ws, tmp_path, "a", "b", "c")
    for draft_id in ids:
        barrier = threading.Barrier(2)
        outcomes: list[str] = []
        winners: list[str] = []

        def sign(who: str, draft_id: int = draft_id, barrier: threading.Barrier = barrier,
                 outcomes: list[str] = outcomes, winners: list[str] = winners) -> None:
            store = ws.store()
            try:
                with store.session() as session:
                    barrier.wait()
                    review.transition(session, ws.settings, draft_id, "approve", actor=who,
                                      note="", now=_at(MON))
                outcomes.append("won")
                winners.append(who)
            except ReviewError as exc:
                outcomes.append(exc.text("zh_CN"))
            finally:
                store.close()

        threads = [threading.Thread(target=sign, args=(who,)) for who in ("王编辑", "李编辑")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert len(outcomes) == 2 and outcomes.count("won") == 1, outcomes
        loser = next(o for o in outcomes if o != "won")
        assert (f"{winners[0]} 已在刚才" in loser and "签署了稿件" in loser) or (
            "只有 张主任 可以签审" in loser), outcomes
        with ws.store().session() as session:
            signs = session.exec(select(SignOff).where(SignOff.draft_id == draft_id)).all()
            draft = session.get(Draft, draft_id)
            assert len(signs) == 1 and draft is not None and draft.review_stage == 1
            assert draft.version == 2


def assert_history_complete(ws: Workspace) -> None:
    """Every draft's history is a connected chain from 'submitted' to its state now."""
    with ws.store().session() as session:
        check_histories(session)


def test_history_json_shape(staged: Workspace, tmp_path: Path) -> None:
    (a,) = submit(staged, tmp_path, "a")
    approve(staged, a, "王编辑")
    data = shown(staged, a)
    line = json.loads(json.dumps(data["review"]))[0]
    assert set(line) == {"stage", "by", "at", "note"} and line["by"] == "王编辑"
    assert data["history"][-1]["remote"] == "cli"  # type: ignore[index]


def test_the_digest_and_the_late_alerts_name_the_stage_and_who_holds_it(
        staged: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = staged
    add_user(ws, "张主任", "--stage", "复审", "--email", "zhang@xxxq.example.cn",
             monkeypatch=monkeypatch)
    a, b, c = submit(ws, tmp_path, "a", "b", "c")
    assert approve(ws, a, "王编辑")[0] == 0 and approve(ws, b, "李编辑")[0] == 0
    digest = ws.run("digest", "--date", "2026-06-16", now="2026-06-16T08:30+08:00").out
    assert "各审核阶段（三审）待签审" in digest
    assert "初审（王编辑、李编辑）：1条" in digest
    assert "复审（张主任）：2条" in digest and "终审（刘书记）：0条" in digest
    # Past the deadline (14 June + 2 days), the sweep flags each story to the holders of
    # the stage it waits at, by name and address.
    assert ws.run("check", now="2026-06-17T09:00+08:00").code == 0
    with ws.store().session() as session:
        from pipeline.models import Alert

        alerts = {(x.kind, x.draft_id): x for x in session.exec(select(Alert))}
    held = alerts[("overdue", a)]
    assert "zhang@xxxq.example.cn" in held.recipients
    assert "waiting for 复审 by 张主任" in held.detail
    assert "zhang@xxxq.example.cn" not in alerts[("overdue", c)].recipients
    assert "waiting for 初审 by 王编辑, 李编辑" in alerts[("overdue", c)].detail
    outbox = ws.run("mail", "outbox", now="2026-06-17T09:00+08:00").out
    assert "zhang@xxxq.example.cn" in outbox


def test_the_desk_filters_waiting_for_me_and_shows_what_changed(
        staged: Workspace, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from pipeline.clock import Clock
    from pipeline.web.auth import add_user as add_editor
    from tests.test_web import PASSWORD, login, make_desk

    ws = staged
    a, b = submit(ws, tmp_path, "a", "b")
    assert approve(ws, a, "王编辑")[0] == 0
    store, app = make_desk(ws, Clock(_at(MON)))
    with store.session() as session:
        add_editor(session, "张主任", PASSWORD, _at(MON))
    with store.session() as session:
        review.edit(session, ws.settings, a, review_markdown(ws, a) + "\n补充一句。\n",
                    actor="王编辑", now=_at(MON))
    with TestClient(app) as client:
        assert login(client, "张主任").status_code == 303
        mine = client.get("/?scope=mine").text
        assert f'href="/drafts/{a}"' in mine and f'href="/drafts/{b}"' not in mine
        assert "待复审" in mine
        page = client.get(f"/drafts/{a}").text
        assert "签署复审" in page and "上次签审后的修改" in page and "+补充一句。" in page
        assert "初审</b> 王编辑" in page
        record = client.get(f"/drafts/{a}/record").text
        assert "初审" in record and "王编辑" in record and "终审" in record
    store.close()


def review_markdown(ws: Workspace, draft_id: int) -> str:
    return ws.article(draft_id)
