"""Proofreading (校对): each kind of finding, the word lists as data, offsets, the
findings on drafts through the real CLI, and the confirmation at approval."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipeline.config import DEFAULT_ACTIVITY_TYPES
from pipeline.errors import ProofreadError
from pipeline.proofread import load_lexicon, proofread_text
from pipeline.proofread.lists import DATA
from tests.conftest import Workspace
from tests.test_flow import write_report
from tests.test_web import Desk, login, make_desk

MON = "2026-06-15T10:00+08:00"


@pytest.fixture(scope="module")
def lexicon():
    return load_lexicon(None)


def kinds(text: str, lexicon, title: str = "标题") -> list[tuple[str, str, str]]:
    return [(h.kind, h.text, h.suggestion) for h in proofread_text(text, title, lexicon, 32)]


# ---------------------------------------------------------------- the lists are data

def test_default_lists_cite_their_sources_and_hold_hundreds_of_entries() -> None:
    counts = {}
    for name in ("typos.txt", "banned.txt", "caution.txt", "allow.txt"):
        text = (DATA / name).read_text(encoding="utf-8")
        assert "Source" in text.split("\n\n")[0] or "Sources" in text.split("\n\n")[0], name
        counts[name] = sum(1 for line in text.splitlines()
                           if line.strip() and not line.lstrip().startswith("#"))
    assert counts["typos.txt"] >= 300
    assert counts["banned.txt"] + counts["caution.txt"] >= 200


@pytest.mark.parametrize("word", [
    "毒品", "吸毒", "贩毒", "制毒", "禁毒", "戒毒", "海洛因", "冰毒", "氯胺酮", "大麻", "芬太尼",
    "依托咪酯", "奶茶粉", "跳跳糖", "邮票", "上头电子烟", "摇头丸", "K粉", "吸毒人员",
    "强制隔离戒毒"])
def test_domain_words_are_never_findings_by_themselves(word: str, lexicon) -> None:
    text = f"工作人员向群众讲解{word}的危害，号召大家远离{word}。"
    assert kinds(text, lexicon) == []


# ---------------------------------------------------------------- each kind

def test_typo_banned_caution(lexicon) -> None:
    text = "工作人员按装宣传展板，亲自讲解，会议隆重召开。TMD不能用，USB可以用。"
    found = kinds(text, lexicon)
    assert ("typo", "按装", "安装") in found
    assert ("caution", "亲自", "") in found and ("caution", "隆重召开", "召开") in found
    assert ("banned", "TMD", "") in found
    assert not [f for f in found if f[1] in ("SB", "NB")]  # not inside USB


def test_a_word_inside_its_own_right_form_is_not_flagged(lexicon) -> None:
    assert kinds("送往强制隔离戒毒所。", lexicon) == []
    assert ("caution", "戒毒所", "强制隔离戒毒所") in kinds("送往戒毒所。", lexicon)


@pytest.mark.parametrize(("text", "rule"), [
    ("联系电话13800000000。", "mobile"), ("联系电话138 0000 0000。", "mobile"),
    ("座机0731-88886666。", "landline"), ("座机（0731）88886666。", "landline"),
    ("身份证号11010519491231002X。", "id_number"), ("车牌湘A12345。", "plate"),
    ("戒毒人员张三在社区接受帮扶。", "protected_name"),
    ("吸毒人员王小明表示悔改。", "protected_name"),
    ("李四（吸毒人员）参加活动。", "protected_name"),
])
def test_private_data(text: str, rule: str, lexicon) -> None:
    hits = [h for h in proofread_text(text, "标题", lexicon, 32) if h.kind == "privacy"]
    assert [h.rule for h in hits] == [rule]
    assert text[hits[0].start:hits[0].end] == hits[0].text


def test_protected_name_suggests_surname_and_mou(lexicon) -> None:
    [hit] = proofread_text("戒毒人员张三在社区接受帮扶。", "标题", lexicon, 32)
    assert (hit.text, hit.suggestion) == ("张三", "张某")


@pytest.mark.parametrize("text", [
    "身份证号110105194912310021。",          # wrong check digit: not an ID number
    "戒毒人员李某在社区接受帮扶。",            # already surname + 某
    "吸毒人员张贴宣传画。",                   # 张贴 is a verb, not a name
    "文章编号20260615123456789012。",        # a long number is not a phone number
])
def test_private_data_false_alarms_are_avoided(text: str, lexicon) -> None:
    assert [h for h in proofread_text(text, "标题", lexicon, 32) if h.kind == "privacy"] == []


def test_format(lexicon) -> None:
    text = "活动现场,群众踊跃参与!\n\n“拒绝毒品\n\n（完）》"
    found = kinds(text, lexicon, title="很" * 33)
    assert ("format", "很" * 33, "") in found                     # the title is too long
    assert ("format", ",", "，") in found and ("format", "!", "！") in found
    assert ("format", "“", "") in found and ("format", "》", "") in found


def test_links_image_paths_and_attribute_lists_are_not_prose(lexicon) -> None:
    text = ("![活动现场](photos/13800000000ab.jpg)\n{: .caption }\n\n"
            "- <https://news.example.cn/a/13800000000>\n")
    assert kinds(text, lexicon) == []


def test_offsets_point_at_the_characters_with_emoji_and_full_width_marks(lexicon) -> None:
    text = "🎉👨‍👩‍👧「活动」：（一）群众😀按装展板，🚫拒绝毒品！电话：13800000000。"
    hits = proofread_text(text, "标题", lexicon, 32)
    assert {h.text for h in hits} == {"按装", "13800000000"}
    for hit in hits:
        assert hit.start is not None and text[hit.start:hit.end] == hit.text


# ---------------------------------------------------------------- workspace lists

def test_glossary_and_workspace_words(tmp_path: Path) -> None:
    (tmp_path / "glossary.txt").write_text(
        "# official names\n岳麓禁毒委, 岳麓区禁毒委 -> 岳麓区禁毒委员会\n", encoding="utf-8")
    (tmp_path / "words.txt").write_text("[caution]\n辖区群众 -> 群众\n", encoding="utf-8")
    (tmp_path / "allow.txt").write_text("溜冰\n", encoding="utf-8")
    lexicon = load_lexicon(tmp_path)
    text = "岳麓禁毒委和岳麓区禁毒委员会组织辖区群众溜冰。"
    assert kinds(text, lexicon) == [("name", "岳麓禁毒委", "岳麓区禁毒委员会"),
                                    ("caution", "辖区群众", "群众")]


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("glossary.txt", "\n岳麓禁毒委\n", "glossary.txt line 2: '岳麓禁毒委' is not 'variant"),
    ("words.txt", "按装 -> 安装\n", "words.txt line 1: '按装 -> 安装' comes before any section"),
    ("words.txt", "[typo]\n按装\n", "words.txt line 2: '按装' has no right form"),
    ("words.txt", "[slang]\n", "words.txt line 1: unknown section [slang]"),
    ("words.txt", "[banned]\n毒品\n", "words.txt line 2: '毒品' is also on the allow-list"),
])
def test_a_bad_list_names_its_file_and_line(tmp_path: Path, name: str, content: str,
                                            expected: str) -> None:
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(ProofreadError) as caught:
        load_lexicon(tmp_path)
    assert str(tmp_path / expected.split(" line ")[0]) in str(caught.value)
    assert expected.split(":", 1)[0].split(" ", 1)[1] in str(caught.value)
    assert expected.split(": ", 1)[1] in str(caught.value)


# ---------------------------------------------------------------- default templates

NEUTRAL = {"unit": "麓谷街道", "title": "麓谷街道开展禁毒宣传活动", "place": "麓谷街道文化广场",
           "form": "线下活动", "body": "活动现场发放宣传资料。", "participants": "约260人"}


@pytest.mark.parametrize("kind", sorted(DEFAULT_ACTIVITY_TYPES))
def test_default_templates_rendered_with_neutral_data_have_no_findings(
        workspace: Workspace, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({**NEUTRAL, "activity_type": kind, "time": "2026-06-14 09:00",
                                "links": ["https://news.example.cn/a/1", "湖南日报"]},
                               ensure_ascii=False), encoding="utf-8")
    [accepted] = workspace.run("submit", "--json", str(path), now=MON).json()["accepted"]
    assert (accepted["findings"], accepted["proofread_error"]) == (0, "")


# ---------------------------------------------------------------- on drafts, through the CLI

def submit(ws: Workspace, tmp_path: Path, body: str) -> int:
    path = write_report(tmp_path, "p", unit="雷锋街道", kind="lecture", title="雷锋街道禁毒讲座",
                        start="2026-06-15 09:00", body=body)
    result = ws.run("submit", str(path), now=MON)
    assert result.code == 0, result.err
    return int(result.out.split("#", 1)[1].split()[0])


def test_findings_recorded_at_intake_shown_and_confirmed_at_approval(
        any_workspace: Workspace, tmp_path: Path) -> None:
    ws = any_workspace
    path = write_report(tmp_path, "p", unit="雷锋街道", kind="lecture", title="雷锋街道禁毒讲座",
                        start="2026-06-15 09:00",
                        body="工作人员按装展板😀，联系电话13912345678。")
    submitted = ws.run("submit", str(path), now=MON)
    assert "(2 proofreading findings)" in submitted.out
    draft_id = int(submitted.out.split("#", 1)[1].split()[0])
    shown = ws.run("show", "--json", str(draft_id), now=MON).json()
    markdown = Path(shown["files"]["markdown"]).read_text(encoding="utf-8")
    found = {f["kind"]: f for f in shown["findings"]}
    assert set(found) == {"typo", "privacy"}
    for f in found.values():
        assert set(f) >= {"kind", "text", "start", "end", "suggestion", "message"}
        assert markdown[f["start"]:f["end"]] == f["text"]
    assert shown["proofread"]["error"] == ""
    refused = ws.run("approve", str(draft_id), now=MON)
    assert refused.code == 1 and "privacy '13912345678'" in refused.err
    assert "--confirm-findings" in refused.err
    assert ws.run("approve", str(draft_id), "--confirm-findings", now=MON).code == 0
    history = ws.run("show", "--json", str(draft_id), now=MON).json()["history"]
    assert any(e["action"] == "confirm_findings" and "13912345678" in e["note"]
               for e in history)


def test_apply_and_dismiss_are_recorded_and_survive_edits(workspace: Workspace,
                                                          tmp_path: Path) -> None:
    from pipeline import review
    from pipeline.drafts import read_markdown
    from pipeline.proofread import apply_finding, dismiss_finding, open_findings
    from pipeline.review import history

    draft_id = submit(workspace, tmp_path, "工作人员按装展板，领导亲自讲解。")
    settings, store = workspace.settings, workspace.store()
    from datetime import datetime
    now = datetime.fromisoformat(MON)
    with store.session() as session:
        found = {f.text: f.id for f in open_findings(session, draft_id)}
        assert set(found) == {"按装", "亲自"}
        apply_finding(session, settings, draft_id, found["按装"], actor="王编辑", now=now)
        dismiss_finding(session, draft_id, found["亲自"], "引语原文", actor="王编辑", now=now)
    assert "工作人员安装展板" in workspace.article(draft_id)
    with store.session() as session:
        assert open_findings(session, draft_id) == []
        edited = read_markdown(session, settings, draft_id) + "\n补充一句。\n"
        review.edit(session, settings, draft_id, edited, actor="王编辑", now=now)
        assert open_findings(session, draft_id) == []     # the dismissal holds after an edit
        events = [(e.action, e.note) for e in history(session, draft_id)]
    store.close()
    assert ("edit", "proofreading: '按装' -> '安装'") in events
    assert ("dismiss_finding", "caution '亲自': 引语原文") in events


def test_proofread_command_and_a_broken_list(workspace: Workspace, tmp_path: Path) -> None:
    draft_id = submit(workspace, tmp_path, "工作人员按装展板。")
    result = workspace.run("proofread", "--json", str(draft_id), now=MON)
    assert result.code == 0 and [f["text"] for f in result.json()["findings"]] == ["按装"]
    (workspace.path / "proofread").mkdir()
    (workspace.path / "proofread" / "glossary.txt").write_text("坏行\n", encoding="utf-8")
    broken = workspace.run("proofread", str(draft_id), now=MON)
    assert broken.code == 1
    assert "proofreading did not run" in broken.out and "glossary.txt line 1" in broken.out
    path = write_report(tmp_path, "q", unit="雷锋街道", kind="lecture", title="另一场讲座",
                        start="2026-06-15 10:00")
    submitted = workspace.run("submit", str(path), now=MON)
    assert submitted.code == 0 and "proofreading did not run" in submitted.out


# ---------------------------------------------------------------- the desk

@pytest.fixture
def desk(workspace: Workspace) -> Iterator[Desk]:
    store, app = make_desk(workspace)
    with TestClient(app) as client:
        assert login(client).status_code == 303
        yield Desk(workspace, store, app, client)
    store.close()


def test_desk_highlights_applies_dismisses_and_confirms_each(desk: Desk) -> None:
    inbox = desk.ws.path / "inbox"
    inbox.mkdir(exist_ok=True)
    path = write_report(inbox, "f", unit="麓谷街道", kind="lecture", title="麓谷街道禁毒讲座",
                        start="2026-06-14 19:00",
                        body="工作人员按装展板，领导亲自讲解，咨询电话13912345678。")
    draft_id = int(desk.ws.run("submit", "--json", str(path), now=MON).json()["accepted"][0]["id"])
    page = desk.client.get(f"/drafts/{draft_id}").text
    marks = dict(re.findall(r'<mark class="finding finding-\w+" title="[^"]*" id="mark-(\d+)">'
                            r"([^<]*)</mark>", page))
    ids = {text: int(fid) for fid, text in marks.items()}
    assert set(ids) == {"按装", "亲自", "13912345678"}
    assert "错别字：“按装”，建议改为“安装”" in page and "个人信息：“13912345678”" in page
    assert 'id="confirm-findings"' in page          # the privacy finding must be confirmed

    url = f"/drafts/{draft_id}/findings"
    assert desk.post(f"{url}/{ids['按装']}/apply", {}, f"/drafts/{draft_id}").status_code == 303
    assert desk.post(f"{url}/{ids['亲自']}/dismiss", {"reason": " "},
                     f"/drafts/{draft_id}").status_code == 422
    assert desk.post(f"{url}/{ids['亲自']}/dismiss", {"reason": "引用原话"},
                     f"/drafts/{draft_id}").status_code == 303
    page = desk.client.get(f"/drafts/{draft_id}").text
    assert "工作人员安装展板" in page and "忽略校对提示" in page and "引用原话" in page

    refused = desk.post(f"/drafts/{draft_id}/action", {"action": "approve"},
                        f"/drafts/{draft_id}")
    assert refused.status_code == 409 and "逐条勾选确认" in refused.text
    assert desk.draft(draft_id).status == "drafted"
    [privacy] = re.findall(r'name="confirm" value="(\d+)"', refused.text)
    done = desk.client.post(f"/drafts/{draft_id}/action", follow_redirects=False, data={
        "csrf_token": desk.csrf(f"/drafts/{draft_id}"), "action": "approve",
        "confirm": privacy})
    assert done.status_code == 303 and desk.draft(draft_id).status == "approved"


def test_the_private_data_and_half_width_patterns_match_what_their_plain_forms_match() -> None:
    """The patterns start with the characters they need (check.py says why); on random
    text they find exactly the spans of the plainly written forms, which look behind
    first."""
    import random

    from pipeline.proofread import check

    cjk = "\u4e00-\u9fff"
    plain = {
        "_MOBILE": re.compile(r"(?<![\d])1[3-9]\d(?:\d{8}|[ -]\d{4}[ -]\d{4})(?!\d)"),
        "_LANDLINE": re.compile(
            r"(?<!\d)(?:\(0\d{2,3}\)|（0\d{2,3}）|0\d{2,3}[-－])\d{7,8}(?!\d)"),
        "_ID_NUMBER": re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])"),
        "_HALF_WIDTH": re.compile(
            rf"(?<=[{cjk}])[,;:?!](?=[{cjk}“‘（]|$)"
            rf"|(?<=[{cjk}])\((?=[^)\n]*[{cjk}])|(?<=[{cjk}])\)(?=[{cjk}，。]|$)", re.M)}
    pieces = [*"0011113589Xx -－()（）,;:?!禁毒“‘，。\nab", "13912345678", "0731-", "(0731)",
              "（0731）", "43010219900307123", "1390000"]
    rng = random.Random(626)
    for _ in range(4000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 40)))
        for name, reference in plain.items():
            quick = getattr(check, name)
            assert [m.span() for m in quick.finditer(text)] == [
                m.span() for m in reference.finditer(text)], (name, text)
