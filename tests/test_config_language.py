"""Issue 11, one error vocabulary for the people who set the desk up: a bad config.toml, a
bad unit list, a broken word list, a broken template and an SMTP server that will not talk
are each a code whose Chinese sentence names the file or key, the value and the rule; the
CLI says them in Chinese under a Chinese LANG and in English otherwise."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import jinja2
import pytest
from fastapi.testclient import TestClient

from pipeline.cli import main
from pipeline.config import SmtpSettings, load_settings
from pipeline.errors import ConfigError, NotifyError, ProofreadError, RenderError
from pipeline.notify import templates as email_templates
from pipeline.notify.mail import SmtpMailer
from pipeline.proofread import load_lexicon
from pipeline.render.templates import render_template
from pipeline.units import import_units, sync_units
from tests.conftest import Workspace
from tests.test_web import NOW, Desk, login, make_desk

# Three English words in a row: a sentence of the English catalogue leaking into Chinese.
ENGLISH = re.compile(r"[A-Za-z]{2,} [A-Za-z]{2,} [A-Za-z]{2,}")
HAN = re.compile(r"[\u4e00-\u9fff]")


def chinese_only(text: str) -> str:
    assert not ENGLISH.search(text), text
    return text


def lang(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", value)


def test_a_bad_config_is_told_key_by_key_in_the_language_of_lang(
        workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = workspace
    ws.configure("schedule", push_time="25:00")
    ws.configure("deadline", counting="weekdays")
    ws.configure("notify", editors=["not-an-address"])
    ws.configure("smtp", password="hunter2")
    ws.configure("account", colour="red")
    path = ws.path / "config.toml"

    lang(monkeypatch, "zh_CN.UTF-8")
    chinese = ws.run("queue")
    assert chinese.code == 1
    chinese_only(chinese.err)
    assert f"错误: {path} 有 5 处问题：" in chinese.err
    for line in ('schedule.push_time：应填写 24 小时制的时刻，如 "20:00"，现在填的是 \'25:00\'。',
                 'deadline.counting：只能是 "calendar" 或 "workdays"，现在填的是 \'weekdays\'。',
                 "notify.editors[0]：'not-an-address' 不是有效的邮箱地址。",
                 "smtp.password：密码不能写在 config.toml 里",
                 "account.colour：没有这个设置项"):
        assert f"\n  {line}" in chinese.err, line
    assert "hunter2" not in chinese.err  # a secret in the file is named, never repeated

    lang(monkeypatch, "C")
    english = ws.run("queue")
    assert english.code == 1 and not HAN.search(english.err)
    assert f"error: {path} has 5 problem(s):" in english.err
    assert "schedule.push_time: expected a 24-hour time like \"20:00\", got '25:00'" in english.err
    assert "account.colour: unknown key" in english.err


def test_value_kinds_ranges_and_the_unit_tree_have_their_chinese_words(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[account]\nname = "XX新区发布"\n[limits]\ntitle_chars = "32"\n'
                    '[database]\npool_size = 0\n'
                    '[[units]]\nname = "麓谷街道"\nlevel = "street"\n'
                    '[[units]]\nname = "白鹤社区"\nlevel = "community"\nparent = "XX新区"\n'
                    '[[units]]\nname = "XX新区"\nlevel = "district"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    text = chinese_only(caught.value.text("zh_CN"))
    assert text.startswith(f"{path} 有 4 处问题：")
    assert "limits.title_chars：应填写整数，现在填的是 '32'。" in text
    assert "database.pool_size：必须在 1 到 100 之间，现在填的是 0。" in text
    assert "units：单位 '麓谷街道'：“街道/镇”单位必须填写上级单位（“区”）。" in text
    assert ("units：单位 '白鹤社区'：“社区/村”单位的上级必须是“街道/镇”，"
            "但 'XX新区' 是“区”。") in text
    # the English sentences are the problems themselves (str), as before
    assert "limits.title_chars: expected a whole number, got '32'" in caught.value.problems
    assert "units: unit '白鹤社区': the parent of a community unit must be a street, but " \
           "'XX新区' is a district" in caught.value.problems


def test_a_file_that_is_not_toml_or_not_there_is_told_in_chinese(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[account]\nname = "XX新区发布\n', encoding="utf-8")
    lang(monkeypatch, "zh_CN.UTF-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert chinese_only(caught.value.text("zh_CN")) == (
        f"{path} 有 1 处问题：\n  config.toml 第 2 行第 15 列不符合 TOML 格式"
        "（这一行是 'name = \"XX新区发布'）；请检查：文字要用英文双引号括起来，"
        "[节名] 的方括号要成对，每项设置写成“名称 = 值”。")
    assert "config.toml is not valid TOML at line 2, column 15" in str(caught.value)
    path.write_bytes(b'[account]\nname = "\xff"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "config.toml 不是 UTF-8 编码（第 18 个字节处出错）" in caught.value.text("zh_CN")

    missing = tmp_path / "elsewhere" / "config.toml"
    assert main(["--config", str(missing), "queue"]) == 1
    assert chinese_only(capsys.readouterr().err).startswith(
        f"错误: {missing} 有 1 处问题：\n  找不到这个文件；"
        f"运行 pipeline init {missing.parent} 可以新建")


def test_a_bad_unit_list_and_a_bad_unit_are_told_in_chinese(
        workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = workspace
    headless = tmp_path / "单位.csv"
    headless.write_text("单位名字,类别\n咸嘉湖社区,社区\n", encoding="utf-8")
    latin = tmp_path / "旧台账.csv"
    latin.write_bytes("名称,级别\n咸嘉湖社区,社区\n".encode("gbk"))

    lang(monkeypatch, "zh_CN.UTF-8")
    refused = ws.run("units", "import", str(headless))
    assert refused.code == 1
    assert chinese_only(refused.err) == ("错误: 单位.csv：第一行必须是列名，至少要有“名称”和“级别”"
                                         "两列；现在第一行是 '单位名字, 类别'。\n")
    garbled = ws.run("units", "import", str(latin))
    assert garbled.code == 1 and "旧台账.csv 不是 UTF-8 编码的文字" in chinese_only(garbled.err)
    assert "另存为“CSV UTF-8”或 .xlsx 文件" in garbled.err
    orphan = ws.run("units", "add", "孤儿社区", "--level", "社区", "--parent", "不存在街道")
    assert orphan.code == 1
    assert chinese_only(orphan.err) == ("错误: 无法添加 '孤儿社区'：上级 '不存在街道' "
                                        "不是已有的单位。\n")

    lang(monkeypatch, "C")
    english = ws.run("units", "import", str(headless))
    assert "the first row must name the columns 名称 (name) and 级别 (level)" in english.err
    assert ws.run("units", "add", "孤儿社区", "--level", "社区", "--parent", "不存在街道").err == (
        "error: Cannot add '孤儿社区': the parent '不存在街道' is not a known unit.\n")


def test_rows_of_a_unit_list_keep_their_codes(workspace: Workspace, tmp_path: Path) -> None:
    """Each refused row says its rule in Chinese (the printing is the command's)."""
    ledger = tmp_path / "units.csv"
    ledger.write_text("名称,级别,上级\n,社区,麓谷街道\n坪塘村,乡村,白箬铺镇\n望城社区,社区,无名街道\n",
                      encoding="utf-8")
    store = workspace.store()
    try:
        with store.session() as session:
            sync_units(session, workspace.settings.units, NOW)
        with store.session() as session:
            result = import_units(session, ledger, NOW)
    finally:
        store.close()
    assert [(r.row, r.field, r.text("zh_CN")) for r in result.rejected] == [
        (2, "名称", "这一行没有填写单位名称"),
        (3, "级别", "级别 '乡村' 无法识别；请填写 区、街道、镇、行业分会、社区 或 村。"),
        (4, "名称", "无法添加 '望城社区'：上级 '无名街道' 不是已有的单位。")]
    assert str(result.rejected[2]) == ("units.csv, row 4: 名称: Cannot add '望城社区': the parent "
                                       "'无名街道' is not a known unit.")


def test_a_broken_word_list_is_named_in_chinese_on_the_draft_page(
        workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = workspace
    words = ws.path / "proofread" / "words.txt"
    words.parent.mkdir(exist_ok=True)
    words.write_text("[typo]\n既使 -> 即使\n[slang]\n", encoding="utf-8")
    with pytest.raises(ProofreadError) as caught:
        load_lexicon(words.parent)
    sentence = (f"{words} 第 3 行：没有 [slang] 这一类；请用 [typo]（错别字）、[banned]（禁用词）"
                "或 [caution]（慎用词）。")
    assert caught.value.text("zh_CN") == sentence
    assert str(caught.value) == (f"{words} line 3: unknown section [slang]; use [typo], "
                                 "[banned] or [caution]")

    store, app = make_desk(ws)
    try:
        with TestClient(app) as client:
            assert login(client).status_code == 303
            draft_id = Desk(ws, store, app, client).submit("w")
            page = client.get(f"/drafts/{draft_id}").text
    finally:
        store.close()
    shown = re.search(r'id="proofread-error">([^<]*)<', page)
    assert shown is not None
    assert shown[1] == f"校对未运行：{sentence}"
    lang(monkeypatch, "C")
    rerun = ws.run("proofread", str(draft_id))
    assert rerun.code == 1 and "unknown section [slang]" in rerun.out


def test_template_and_smtp_failures_have_chinese_sentences(tmp_path: Path) -> None:
    (tmp_path / "lecture.md.j2").write_text("# {{ title }}\n{{ 1 / 0 }}\n", encoding="utf-8")
    (tmp_path / "film.md.j2").write_text("# {{ title }\n", encoding="utf-8")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(tmp_path)))
    with pytest.raises(RenderError) as failed:
        render_template(env, "lecture.md.j2", {"title": "x"})
    assert failed.value.text("zh_CN") == ("模板 lecture.md.j2 第 2 行出错（division by zero）；"
                                          "请修改模板。")
    with pytest.raises(RenderError) as broken:
        render_template(env, "film.md.j2", {})
    assert broken.value.text("zh_CN").startswith("模板 film.md.j2 第 1 行写法有误（")
    with pytest.raises(RenderError) as missing:
        render_template(env, "quiz.md.j2", {})
    assert missing.value.text("zh_CN") == (f"模板 quiz.md.j2 不在 {tmp_path} 中；请从 "
                                           "pipeline/skeleton/templates 复制一份回来。")

    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "digest.txt.j2").write_text("{% for x in %}\n", encoding="utf-8")
    with pytest.raises(NotifyError) as mail_template:
        email_templates.render_template(tmp_path, "digest.txt.j2", {})
    assert chinese_only(mail_template.value.text("zh_CN").split("（")[0]) == (
        "邮件模板 email/digest.txt.j2 第 1 行写法有误")

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(NotifyError) as refused, SmtpMailer(
            SmtpSettings(host="127.0.0.1", port=port, timeout=10)) as mailer:
        mailer.check()
    assert refused.value.text("zh_CN") == (f"邮件服务器 127.0.0.1:{port} 拒绝连接；请检查 "
                                           "smtp.host 和 smtp.port，以及服务器是否在运行。")
    assert str(refused.value) == f"SMTP server 127.0.0.1:{port} refused the connection."
