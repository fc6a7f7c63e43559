"""The daily digest: gathered from a week played through the real CLI, composed purely,
sent once per day to editors and leaders through a real SMTP server."""

# ruff: noqa: F811  (fixtures imported from tests.smtpd are parameters by design)

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from pipeline import cli
from pipeline.domain import DeadlineState, Level
from pipeline.models import OutboxMessage
from pipeline.notify.alerts import deliver_alerts
from pipeline.notify.commands import notify_tick
from pipeline.notify.digest import (
    DigestData,
    NewReports,
    Story,
    Waiting,
    compose_digest,
    digest_due,
)
from tests.conftest import Workspace
from tests.smtpd import (  # noqa: F401
    BASE_URL,
    EDITOR,
    LEADER,
    SmtpServer,
    configure,
    notify_cli,
    smtp_server,
)
from tests.test_flow import write_report

DIGEST_AT = "2026-06-18T08:30+08:00"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


REPORTS = {
    "A": ("麓谷街道", "film", "麓谷街道开展禁毒电影进社区活动", "2026-06-14 19:00"),
    "B": ("洋湖国际社区", "lecture", "洋湖国际社区举办禁毒知识讲座", "2026-06-15 09:00"),
    "C": ("志愿者分会", "volunteer", "志愿者分会走上街头宣传禁毒", "2026-06-13 08:30"),
    "D": ("白箬铺镇", "hardship_visit", "白箬铺镇走访慰问戒毒康复人员家庭", "2026-06-13 15:00"),
    "E": ("雷锋村", "household_meeting", "雷锋村召开禁毒屋场会", "2026-06-16 08:00"),
    "F": ("东方红社区", "lecture", "东方红社区开展禁毒讲座", "2026-06-15 14:00"),
    "G": ("金山桥社区", "lecture", "金山桥社区禁毒知识进课堂", "2026-06-17 09:00"),
    "H": ("麓谷街道", "lecture", "麓谷街道举办禁毒专题讲座", "2026-06-16 10:00"),
}
# (local time in June 2026, command, letter) in the order things happen.
STEPS = [
    ("15T10:00", "submit", "A"), ("15T10:00", "submit", "B"), ("15T10:00", "submit", "C"),
    ("15T11:00", "approve", "A"), ("15T11:00", "approve", "C"), ("15T20:00", "push", ""),
    ("16T10:00", "submit", "D"), ("16T10:00", "submit", "E"), ("16T10:00", "submit", "F"),
    ("16T11:00", "approve", "D"), ("16T11:00", "approve", "E"),
    ("16T11:00", "request-changes", "B"),
    ("17T10:00", "submit", "G"), ("17T10:00", "submit", "H"), ("17T20:00", "push", ""),
    ("18T08:00", "check", ""),
]


def play_week(ws: Workspace, tmp_path: Path) -> dict[str, int]:
    """Monday to Thursday morning of 2026-W25 through the CLI; returns draft ids by letter.

    Mon: A (麓谷街道 film) and C (志愿者分会) pushed on time; B (洋湖国际社区) waits.
    Tue: D (白箬铺镇, activity on the 13th) and E (雷锋村) approved; B sent back;
         F (东方红社区, no contact email) waits; the push is missed (downtime).
    Wed: G (金山桥社区) and H (麓谷街道) arrive; the push sends D (late) and E.
    Thu 08:00: the sweep and the alert emails.
    """
    inbox = tmp_path / "week"
    inbox.mkdir(exist_ok=True)
    ids: dict[str, int] = {}
    for when, command, letter in STEPS:
        now = f"2026-06-{when}+08:00"
        if command == "submit":
            unit, kind, title, start = REPORTS[letter]
            path = write_report(inbox, letter, unit=unit, kind=kind, title=title, start=start)
            result = ws.run("submit", "--json", str(path), now=now)
            ids[letter] = result.json()["accepted"][0]["id"]
        else:
            extra = ["--note", "请补充照片"] if command == "request-changes" else []
            result = ws.run(command, *([str(ids[letter])] if letter else []), *extra, now=now)
        assert result.code == 0, (command, letter, result.err)
    store = ws.store()
    try:
        deliver_alerts(store, ws.settings, at("2026-06-18T08:00+08:00"))
    finally:
        store.close()
    return ids


def test_digest_shows_the_day_and_is_sent_once(workspace: Workspace, tmp_path: Path,
                                               smtp_server: SmtpServer,
                                               notify_cli: None) -> None:
    configure(workspace, smtp_server)
    ids = play_week(workspace, tmp_path)
    preview = workspace.run("digest", "--date", "2026-06-18", now=DIGEST_AT)
    assert preview.code == 0 and "not sent (add --send" in preview.out
    assert preview.out.startswith("Subject: 【XX新区禁毒】每日简报 6月18日")
    text = preview.out
    # Yesterday's push: the late story marked, with its published path.
    assert "昨日已推送，共2条，其中超期发布1条" in text
    assert "白箬铺镇走访慰问戒毒康复人员家庭（白箬铺镇）【超期发布】" in text
    assert f"published/2026-06-17/01-{ids['D']}/article.html" in text
    # Today: nothing approved; the queue by state; overdue stories with units.
    assert "目前没有已审核待推送的稿件" in text
    assert "已超期：2条" in text and "即将到期：1条" in text and "按期：1条" in text
    assert "洋湖国际社区举办禁毒知识讲座（洋湖国际社区，退回修改中，已超期8小时）" in text
    assert f"{BASE_URL}/drafts/{ids['F']}" in text
    # Yesterday's reports by level, and the alert that reached no one.
    assert "街道/镇（1篇）：麓谷街道 1篇" in text and "社区/村（1篇）：金山桥社区 1篇" in text
    assert "东方红社区开展禁毒讲座（东方红社区）：单位未设置联系邮箱" in text
    assert smtp_server.to(LEADER) == []

    sent = workspace.run("digest", "--send", now=DIGEST_AT)
    assert sent.code == 0 and "queued for" in sent.out and "1 email(s) sent" in sent.out
    [mail] = smtp_server.to(LEADER)
    assert sorted(mail.rcpt_tos) == sorted([EDITOR, LEADER])
    assert mail.subject == "【XX新区禁毒】每日简报 6月18日：昨日推送2条，超期2条"
    assert "白箬铺镇走访慰问戒毒康复人员家庭" in mail.html and "超期发布" in mail.html
    assert "单位未设置联系邮箱" in mail.text and "<script" not in mail.html
    again = workspace.run("digest", "--send", now="2026-06-18T09:00+08:00")
    assert again.code == 0 and "already in the outbox (sent)" in again.out
    assert len(smtp_server.to(LEADER)) == 1
    # The unaddressed alert is reported once: the next day's digest no longer lists it.
    friday = workspace.run("digest", "--date", "2026-06-19", now="2026-06-19T08:30+08:00")
    assert "单位未设置联系邮箱" not in friday.out


def test_digest_due_sends_after_its_time_once(workspace: Workspace,
                                              smtp_server: SmtpServer) -> None:
    configure(workspace, smtp_server)
    store = workspace.store()
    try:
        settings = workspace.settings
        assert digest_due(store, settings, at("2026-06-18T08:29+08:00")) is False
        assert digest_due(store, settings, at("2026-06-18T08:31+08:00")) is True
        assert digest_due(store, settings, at("2026-06-18T12:00+08:00")) is False
        # After downtime the same day, the next tick still sends the day's digest.
        assert digest_due(store, settings, at("2026-06-19T15:00+08:00")) is True
        with store.session() as session:
            keys = [m.key for m in session.exec(select(OutboxMessage))]
    finally:
        store.close()
    assert keys == ["digest:2026-06-18", "digest:2026-06-19"]
    assert [m.subject.split(" ")[1] for m in smtp_server.messages] == [
        "6月18日：昨日推送0条，超期0条", "6月19日：昨日推送0条，超期0条"]


def test_a_broken_digest_template_is_named_and_nothing_is_queued(
        workspace: Workspace, smtp_server: SmtpServer, notify_cli: None) -> None:
    configure(workspace, smtp_server)
    template = workspace.path / "templates" / "email" / "digest.txt.j2"
    lines = template.read_text("utf-8").splitlines()
    lines[3] = "{{ yesterday | no_such_filter }}"
    template.write_text("\n".join(lines), "utf-8")
    result = workspace.run("digest", "--send", now=DIGEST_AT)
    assert result.code == 1 and "email/digest.txt.j2" in result.err and "line 4" in result.err
    store = workspace.store()
    try:
        with store.session() as session:
            assert session.exec(select(OutboxMessage)).all() == []
    finally:
        store.close()


def test_digest_date_must_parse(notify_cli: None, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["digest", "--date", "18.06.2026"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "'18.06.2026' is not a date; write it like 2026-06-18" in err


def test_compose_digest_is_pure_and_reports_what_does_not_fit(workspace: Workspace) -> None:
    deadline = at("2026-06-19T00:00+08:00")
    data = DigestData(
        day=date(2026, 6, 18), at=at(DIGEST_AT), yesterday_state="missed", pushed=(),
        today_done=False,
        planned=(Story(7, "第一条<script>", "麓谷街道", deadline, position=1),),
        left_over=(Story(9, "放不下的稿件", "雷锋村", at("2026-06-18T12:00+08:00"), late=True),),
        waiting=(Waiting(9, "放不下的稿件", "雷锋村", "approved", DeadlineState.DUE_SOON,
                         deadline, 15.5),),
        new_reports=(NewReports("雷锋村", Level.COMMUNITY, 2),))
    subject, text, html = compose_digest(data, workspace.settings, at(DIGEST_AT))
    assert subject.startswith("【XX新区禁毒】每日简报 6月18日")
    assert "昨日未推送（服务未运行），共0条" in text
    assert "本次推送放不下1条，将顺延" in text and "放不下的稿件（雷锋村）" in text
    assert "顺延后将超期" in text and "顺延后将超期" in html
    assert "第一条&lt;script&gt;" in html and "<script>" not in html   # autoescaped
    assert "社区/村（2篇）：雷锋村 2篇" in text
    assert compose_digest(data, workspace.settings, at(DIGEST_AT)) == (subject, text, html)


def test_notify_tick_runs_every_job_once(workspace: Workspace, smtp_server: SmtpServer) -> None:
    configure(workspace, smtp_server)
    store = workspace.store()
    try:
        for _ in range(2):   # a second tick (or a second process) sends nothing again
            notify_tick(store, workspace.settings, at("2026-06-22T09:30+08:00"))
    finally:
        store.close()
    subjects = sorted(m.subject for m in smtp_server.messages)
    assert len(subjects) == 2
    assert subjects[0].startswith("【XX新区禁毒】每周联合通报 2026-W25")
    assert subjects[1].startswith("【XX新区禁毒】每日简报 6月22日")
