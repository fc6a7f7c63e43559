"""Issue 11, one error vocabulary: each family of refusals is a code whose Chinese text
reaches the desk, the phone form and the API (with the code), while the CLI follows LANG.
A page or an API body in Chinese never carries the English sentence."""

# ruff: noqa: F811  (fixtures imported from tests.smtpd are parameters by design)

from __future__ import annotations

import ast
import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Workspace, make_workspace
from tests.fakewechat import FakeWeChat
from tests.smtpd import EDITOR, SmtpServer, configure, smtp_server  # noqa: F401
from tests.test_flow import write_report
from tests.test_notify import deliver
from tests.test_web import NOW, PASSWORD, Desk, form_data, login, make_desk, report_post
from tests.test_wechat_publish import PUSH, approve, wechat_workspace

# Three English words in a row: a sentence of the English catalogue leaking into Chinese.
ENGLISH = re.compile(r"[A-Za-z]{2,} [A-Za-z]{2,} [A-Za-z]{2,}")


def chinese_only(text: str) -> str:
    assert not ENGLISH.search(text), text
    return text


def _desk(ws: Workspace) -> Iterator[Desk]:
    store, app = make_desk(ws)
    with TestClient(app) as client:
        assert login(client).status_code == 303
        yield Desk(ws, store, app, client)
    store.close()


@pytest.fixture
def staged_desk(tmp_path: Path, database_url: str) -> Iterator[Desk]:
    """The bundled three stages (初审 王编辑/李编辑, …); the desk's "editor" signs none."""
    yield from _desk(make_workspace(tmp_path / "ws", database_url, staged=True))


@pytest.fixture
def one_stage_desk(workspace: Workspace) -> Iterator[Desk]:
    yield from _desk(workspace)


def test_a_wrong_signer_is_refused_in_chinese_on_the_desk_the_api_and_in_english_on_the_cli(
        staged_desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    desk = staged_desk
    draft_id = desk.submit("s")
    page = desk.post(f"/drafts/{draft_id}/action", {"action": "approve"})
    assert page.status_code == 409
    sentence = f"稿件 {draft_id} 正在等待初审，只有 王编辑、李编辑 可以签审，editor 不能。"
    assert sentence in page.text and "may not" not in page.text

    with TestClient(desk.app) as api:
        logged = api.post("/api/login", json={"name": "editor", "password": PASSWORD}).json()
        refused = api.post(f"/api/drafts/{draft_id}/actions", json={"action": "approve"},
                           headers={"X-CSRF-Token": logged["csrf_token"]})
    body = refused.json()
    assert refused.status_code == 409 and body["code"] == "review.not_signer"
    assert body["message"] == body["error"] == sentence

    monkeypatch.setenv("LANG", "en_US.UTF-8")
    english = desk.ws.run("approve", str(draft_id), "--by", "editor")
    assert english.code == 1
    assert "waits for 初审, which only 王编辑, 李编辑 may sign; editor may not" in english.err
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    chinese = desk.ws.run("approve", str(draft_id), "--by", "editor")
    assert chinese.code == 1 and sentence in chinese.err and "may not" not in chinese.err


def test_review_refusals_in_chinese_with_their_codes(one_stage_desk: Desk) -> None:
    """A missing note, an illegal move, a missing draft and a finding that is not there:
    the API says each in Chinese with its code and status."""
    with TestClient(one_stage_desk.app) as anon:
        _refusals(one_stage_desk, anon)


def _refusals(desk: Desk, anon: TestClient) -> None:
    draft_id = desk.submit("r")
    logged = anon.post("/api/login", json={"name": "editor", "password": PASSWORD}).json()
    headers = {"X-CSRF-Token": logged["csrf_token"]}

    def act(path: str, body: dict[str, object]) -> tuple[int, str, str]:
        answer = anon.post(path, json=body, headers=headers)
        data = answer.json()
        assert data["message"] == data["error"]
        return answer.status_code, data["code"], chinese_only(data["message"])

    assert act(f"/api/drafts/{draft_id}/actions", {"action": "reject"}) == (
        422, "review.note_required", "不予采用时必须填写意见，告诉报送单位改什么或为什么。")
    assert anon.post(f"/api/drafts/{draft_id}/actions", json={"action": "approve"},
                     headers=headers).status_code == 200
    status, code, text = act(f"/api/drafts/{draft_id}/actions", {"action": "approve"})
    assert (status, code) == (409, "draft.illegal_move")
    assert text == (f"稿件 {draft_id} 当前状态为「已通过，待推送」，不能通过"
                    "（只有「待审核」的稿件可以）。")
    assert act("/api/drafts/998/actions", {"action": "approve"})[:2] == (404, "draft.not_found")
    assert act(f"/api/drafts/{draft_id}/findings/77/dismiss", {"reason": "无"}) == (
        404, "finding.not_found", f"稿件 {draft_id} 没有编号为 77 的校对提示。")


def test_intake_rejections_on_the_phone_form_are_chinese_sentences(
        one_stage_desk: Desk) -> None:
    """Every rule of the form speaks Chinese from its code: nothing falls back to English."""
    desk = one_stage_desk
    with TestClient(desk.app) as phone:
        token = desk.link()
        answer = report_post(phone, token, form_data(
            title="很" * 40, place="", participants="很" * 101, start="2026-07-01T09:00",
            end="", links="javascript:alert(1)\nhttps://exa mple.cn/x",
            body="讲座\x07现场"),
            files=[("photos", ("a.png", b"\x89PNG\r\n\x1a\n" + b"0" * 40, "image/png"))])
    assert answer.status_code == 422
    errors = {k: html.unescape(v) for k, v in
              re.findall(r'id="err-(\w+)" role="alert">([^<]*)<', answer.text)}
    assert set(errors) >= {"title", "place", "participants", "start", "links", "body", "photos"}
    for text in errors.values():
        chinese_only(text)
    assert errors["title"].startswith("标题有 40 个字，最多 32 个字")
    assert errors["place"] == "此项为必填项，请填写"
    assert "在将来" in errors["start"] and errors["photos"] == "图片已损坏，请重新导出后上传"
    assert "控制字符" in errors["body"] and "「javascript:」" in errors["links"]


def test_wechat_problems_are_chinese_on_the_api_the_page_and_in_the_refusal(
        one_stage_desk: Desk) -> None:
    """A problem is stored as its code: after the database it is still said in Chinese."""
    desk = one_stage_desk
    draft_id = desk.submit("w")
    with TestClient(desk.app) as api:
        logged = api.post("/api/login", json={"name": "editor", "password": PASSWORD}).json()
        headers = {"X-CSRF-Token": logged["csrf_token"]}
        edited = api.post(f"/api/drafts/{draft_id}/markdown",
                          json={"markdown": "x" * 21000}, headers=headers).json()
        [problem] = edited["result"]["problems"]
        assert chinese_only(problem).startswith("正文（含排版代码）有 ")
        refused = api.post(f"/api/drafts/{draft_id}/actions", json={"action": "approve"},
                           headers=headers).json()
        shown = api.get(f"/api/drafts/{draft_id}").json()["draft"]
    assert refused["code"] == "review.problems" and problem in chinese_only(refused["message"])
    assert shown["problems"] == [problem]
    page = html.unescape(desk.client.get(f"/drafts/{draft_id}").text)
    assert problem in page and "WeChat requires" not in page


def test_a_missed_push_is_told_in_chinese_by_email_and_by_lang_on_the_cli(
        workspace: Workspace, tmp_path: Path, smtp_server: SmtpServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The cited case: "详情：No push went out on 2026-06-16…" inside a Chinese email."""
    ws = workspace
    configure(ws, smtp_server)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name, day in (("m", "2026-06-14"), ("t", "2026-06-15")):
        path = write_report(inbox, name, unit="麓谷街道", kind="lecture",
                            title=f"麓谷街道禁毒讲座{name}", start=f"{day} 09:00")
        [accepted] = ws.run("submit", "--json", str(path), now=f"{day}T20:00+08:00"
                            ).json()["accepted"]
        assert ws.run("approve", str(accepted["id"]), now=f"{day}T20:00+08:00").code == 0
        if name == "m":
            assert ws.run("push", now="2026-06-15T20:00+08:00").code == 0
    wednesday = "2026-06-17T20:00+08:00"
    assert ws.run("push", "--json", now=wednesday).json()["missed_days"] == ["2026-06-16"]
    deliver(ws, wednesday)
    [mail] = [m for m in smtp_server.to(EDITOR) if "2026-06-16" in m.text]
    assert "详情：2026-06-16 没有推送：推送时间调度程序未运行。" in mail.text
    assert "No push" not in mail.text and "No push" not in mail.html

    monkeypatch.setenv("LANG", "en_US.UTF-8")
    again = ws.run("push", now=wednesday)
    assert "the push for 2026-06-17 is already done; nothing was published twice" in again.out
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    again = ws.run("push", now=wednesday)
    assert "2026-06-17 已经推送过，每天只推送一次" in again.out and "already" not in again.out


def _bad_files(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    files = {"xls": folder / "台账.xls", "json": folder / "坏.json",
             "columns": folder / "缺列.csv", "gb": folder / "乱码.csv",
             "entry": folder / "列表.json"}
    files["xls"].write_bytes(b"\xd0\xcf\x11\xe0")
    files["json"].write_text('{"title": "a",}', encoding="utf-8")
    files["columns"].write_text("单位,标题\n麓谷街道,讲座\n", encoding="utf-8")
    files["gb"].write_bytes(b"\xfa\xfb not a ledger")  # neither UTF-8 nor a GB18030 ledger
    files["entry"].write_text('[5]', encoding="utf-8")
    return files


def test_file_level_intake_problems_follow_lang_on_the_cli(
        workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _bad_files(tmp_path / "in")
    paths = [str(p) for p in files.values()]
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    zh = workspace.run("submit", *paths)
    assert zh.code != 0
    text = zh.out + zh.err
    for sentence in ("无法读取旧版 Excel .xls 文件", "文件不是有效的 JSON：第 1 行第 15 列有误",
                     "台账缺少必填项 活动类型、活动地点、活动方式、活动内容、活动时间 的列",
                     "（也无法按 GB18030 编码的台账读取）", "第 1 项不是一份报告"):
        assert sentence in text, (sentence, text)
    for line in text.splitlines():
        if line.startswith("rejected"):
            chinese_only(line.split(":", 1)[1].split("(", 1)[0])

    monkeypatch.setenv("LANG", "C")
    en = workspace.run("submit", *paths)
    text = en.out + en.err
    for sentence in ("old Excel .xls files cannot be read",
                     "the file is not valid JSON: line 1, column 15",
                     "no column for the required field(s) 活动类型, 活动地点, 活动方式, 活动内容, "
                     "活动时间",
                     "(it does not read as a GB18030 ledger either)",
                     "entry 1 is the number 5, not a report"):
        assert sentence in text, (sentence, text)


def test_why_a_story_waits_is_a_code_in_the_cli_json_and_chinese_on_the_desk_page(
        one_stage_desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    desk = one_stage_desk
    ids = [desk.submit(f"s{i}") for i in range(10)]
    for draft_id in ids:
        assert desk.ws.run("approve", str(draft_id), now=NOW.isoformat()).code == 0
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    plan = desk.ws.run("push", "--dry-run", "--json", now=NOW.isoformat()).json()
    assert len(plan["left_over"]) == 2
    for item in plan["left_over"]:
        assert item["reason_code"].startswith("push.left_")
        assert "本次推送已满（8篇）" in item["reason"]
    page = desk.client.get("/push")
    assert page.status_code == 200
    assert page.text.count("本次推送已满（8篇）") >= 2 and "the push is full" not in page.text


def test_a_wechat_refusal_reaches_editors_in_chinese_and_the_cli_by_lang(
        workspace: Workspace, tmp_path: Path, smtp_server: SmtpServer, wechat_api: FakeWeChat,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """48001 (the account may not publish): the alert email, the draft's history and the
    queue say WeChat's refusal in Chinese; the CLI says it in English under LANG=C."""
    monkeypatch.setenv("WECHAT_APPSECRET", "test-secret")
    ws = wechat_workspace(workspace, wechat_api, "freepublish")
    configure(ws, smtp_server)
    [draft_id] = approve(ws, tmp_path, 1)
    wechat_api.inject("freepublish/submit", "errcode", code=48001)
    assert ws.run("push", "--json", now=PUSH).json()["wechat_state"] == "failed"
    deliver(ws, PUSH)
    refusal = "本公众号无权调用 freepublish/submit（48001）；发布和群发需要已认证的公众号。"
    [mail] = [m for m in smtp_server.to(EDITOR) if "48001" in m.text]
    assert refusal in mail.text and "微信返回：" in mail.text
    chinese_only(mail.text.replace("freepublish/submit", "").split("微信返回：")[0])
    shown = ws.run("show", "--json", str(draft_id), now=PUSH).json()
    assert any(refusal in (e["note"] or "") for e in shown["history"])

    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    queue = ws.run("queue", now=PUSH)
    assert f"发布失败：{refusal}" in queue.out, queue.out
    monkeypatch.setenv("LANG", "C")
    queue = ws.run("queue", now=PUSH)
    assert "publishing failed: The account is not allowed to use freepublish/submit" in queue.out


def _error_classes() -> set[str]:
    from pipeline import errors

    return {name for name, value in vars(errors).items()
            if isinstance(value, type) and issubclass(value, errors.PipelineError)}


def _is_sentence(node: ast.expr) -> bool:
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True
    if isinstance(node, ast.List):
        return any(_is_sentence(e) for e in node.elts)
    return isinstance(node, ast.BinOp) and (_is_sentence(node.left) or _is_sentence(node.right))


def test_no_error_a_person_sees_is_an_english_sentence_outside_the_vocabulary() -> None:
    """Every PipelineError is raised with a code (``.coded``); a sentence written in place
    would reach a Chinese page or email in English."""
    root = Path(__file__).parent.parent / "pipeline"
    classes = _error_classes()
    written = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in classes and node.args):
                continue
            if _is_sentence(node.args[0]):
                written.append(f"{relative}:{node.lineno} {node.func.id}")
    assert written == [], "\n".join(written)
