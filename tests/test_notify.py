"""Alert emails against a real SMTP server on loopback: grouping, once-only delivery across
restarts and processes, retries after downtime, permanent failures, escalation a day
later, TLS and login, template errors. Time is played by passing ``now`` values."""

# ruff: noqa: F811  (fixtures imported from tests.smtpd are parameters by design)

from __future__ import annotations

import filecmp
import json
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from pipeline import cli
from pipeline.config import SmtpSettings
from pipeline.errors import NotifyError
from pipeline.models import Alert, OutboxMessage
from pipeline.notify import outbox
from pipeline.notify.alerts import deliver_alerts
from pipeline.notify.mail import SmtpMailer, SmtpSessionError, build_message
from pipeline.store import Store
from tests.conftest import Workspace
from tests.smtpd import (  # noqa: F401
    BASE_URL,
    EDITOR,
    PASSWORD_ENV,
    USERNAME,
    SmtpServer,
    configure,
    notify_cli,
    smtp_server,
)
from tests.test_flow import write_report

ROOT = Path(__file__).resolve().parent.parent
SENDER = "XX新区禁毒办 <noreply@xxxq.example.cn>"
YANGHU = "yanghu@xxxq.example.cn"             # 洋湖国际社区, under 黄金园街道
HUANGJINYUAN = "huangjinyuan@xxxq.example.cn"
DONGFANGHONG = "dongfanghong@xxxq.example.cn"  # 东方红街道; its 东方红社区 has no email
MON, TUE, WED, THU = (f"2026-06-{d}T{h}+08:00" for d, h in
                      ((15, "10:00"), (16, "10:00"), (17, "09:00"), (18, "09:00")))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def smtp_settings(server: SmtpServer, **kw: object) -> SmtpSettings:
    values: dict[str, object] = {"host": server.host, "port": server.port,
                                 "security": server.security, "sender": SENDER,
                                 "timeout": 5.0}
    if server.login:
        values |= {"username": USERNAME, "password_env": PASSWORD_ENV}
    return SmtpSettings(**(values | kw))  # type: ignore[arg-type]


def message(to: list[str], subject: str = "【XX新区禁毒】3条稿件提醒") -> object:
    return build_message(sender=SENDER, recipients=to, subject=subject, text="正文：请尽快处理。",
                         html="<p>正文：<b>请尽快处理</b>。</p>", now=at(TUE), key="k1")


@contextmanager
def opened(ws: Workspace) -> Iterator[Store]:
    store = ws.store()   # a new Store each time: a "restart" of the process
    try:
        yield store
    finally:
        store.close()


def deliver(ws: Workspace, now: str) -> object:
    with opened(ws) as store:
        return deliver_alerts(store, ws.settings, at(now))


def submit_three(ws: Workspace, tmp_path: Path) -> list[int]:
    """Two stories from 洋湖国际社区 and one from 东方红社区 (no email); deadline Wed 00:00."""
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    files = [
        write_report(inbox, "a", unit="洋湖国际社区", kind="lecture",
                     title="洋湖国际社区举办禁毒知识讲座", start="2026-06-14 09:00"),
        write_report(inbox, "b", unit="洋湖国际社区", kind="hardship_visit",
                     title="洋湖国际社区走访慰问困难家庭", start="2026-06-14 15:00"),
        write_report(inbox, "c", unit="东方红社区", kind="household_meeting",
                     title="东方红社区召开禁毒屋场会", start="2026-06-14 10:00"),
    ]
    result = ws.run("submit", "--json", *map(str, files), now=MON)
    assert result.code == 0, result.err
    return [x["id"] for x in result.json()["accepted"]]


# --- the SMTP edge ---------------------------------------------------------------------------

def test_message_is_utf8_text_and_html_with_encoded_chinese_subject(
        smtp_server: SmtpServer) -> None:
    with SmtpMailer(smtp_settings(smtp_server)) as mailer:
        assert mailer.send(message(["a@xxxq.example.cn"])) == {}  # type: ignore[arg-type]
        mailer.send(message(["b@xxxq.example.cn"], "第二封"))   # type: ignore[arg-type]
    first, second = smtp_server.messages
    assert first.rcpt_tos == ["a@xxxq.example.cn"] and second.subject == "第二封"
    assert first.subject == "【XX新区禁毒】3条稿件提醒"
    assert b"=?utf-8?" in first.raw.lower()          # RFC 2047, not raw 8-bit headers
    assert first.text.strip() == "正文：请尽快处理。"
    assert "<b>请尽快处理</b>" in first.html
    assert first.message["Message-ID"] == message(["x@y.cn"])["Message-ID"]  # type: ignore[index]
    assert first.message["Date"].datetime == at(TUE)
    assert "XX新区禁毒办" in str(first.message["From"])


@pytest.mark.parametrize("smtp_server", ["starttls", "tls"], indirect=True)
def test_tls_and_login(smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with SmtpMailer(smtp_settings(smtp_server)) as mailer:
        mailer.send(message([EDITOR]))  # type: ignore[arg-type]
    assert smtp_server.messages[0].rcpt_tos == [EDITOR]
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    with pytest.raises(SmtpSessionError, match=r"login failed.*535"), \
            SmtpMailer(smtp_settings(smtp_server)) as mailer:
        mailer.send(message([EDITOR]))  # type: ignore[arg-type]
    monkeypatch.delenv("SSL_CERT_FILE")      # our test CA is no longer trusted
    with pytest.raises(SmtpSessionError, match=r"certificate .* not trusted"), \
            SmtpMailer(smtp_settings(smtp_server)) as mailer:
        mailer.check()


def test_session_problems_are_named(smtp_server: SmtpServer) -> None:
    with pytest.raises(SmtpSessionError, match="does not offer STARTTLS"):
        SmtpMailer(smtp_settings(smtp_server, security="starttls")).check()
    with pytest.raises(SmtpSessionError, match=r"PIPELINE_NOPE.* not set"):
        SmtpMailer(smtp_settings(smtp_server, username="u", password_env="PIPELINE_NOPE"),
                   environ={}).check()
    smtp_server.stop()
    with pytest.raises(SmtpSessionError, match="refused the connection") as caught:
        SmtpMailer(smtp_settings(smtp_server)).check()
    assert caught.value.permanent is False


def test_replies_are_classified(smtp_server: SmtpServer) -> None:
    mailer = SmtpMailer(smtp_settings(smtp_server))
    smtp_server.mode = "4xx"
    with pytest.raises(NotifyError, match="451") as caught:
        mailer.send(message([EDITOR]))  # type: ignore[arg-type]
    assert caught.value.permanent is False
    smtp_server.mode = "5xx"
    with pytest.raises(NotifyError, match="554") as caught:
        mailer.send(message([EDITOR]))  # type: ignore[arg-type]
    assert caught.value.permanent is True
    smtp_server.mode = "ok"
    smtp_server.refuse[YANGHU] = "550 5.1.1 Mailbox unavailable"
    with pytest.raises(NotifyError, match="550") as caught:
        mailer.send(message([YANGHU]))  # type: ignore[arg-type]
    assert caught.value.permanent is True
    refused = mailer.send(message([YANGHU, EDITOR]))  # type: ignore[arg-type]
    assert list(refused) == [YANGHU] and smtp_server.messages[-1].rcpt_tos == [EDITOR]
    with pytest.raises(NotifyError, match="not-an-address") as caught:
        mailer.send(message(["not-an-address"]))  # type: ignore[arg-type]
    assert caught.value.permanent is True
    mailer.close()


# --- the outbox ------------------------------------------------------------------------------

def test_backoff_doubles_to_an_hour_with_bounded_jitter() -> None:
    rng = random.Random(7)
    minutes = [outbox.backoff(n, rng).total_seconds() / 60 for n in range(1, 10)]
    bases = [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert all(b <= m <= b * 1.2 for m, b in zip(minutes, bases, strict=True))


def test_outbox_sends_once_and_retries_after_downtime(workspace: Workspace,
                                                      smtp_server: SmtpServer) -> None:
    configure(workspace, smtp_server)
    settings, t0 = workspace.settings, at(TUE)
    smtp_server.stop()
    with opened(workspace) as store:
        with store.session() as session:
            assert outbox.enqueue(session, "k", "test", [EDITOR], "主题", "正文", "", t0)
            assert not outbox.enqueue(session, "k", "test", [EDITOR], "主题", "正文", "", t0)
        down = outbox.deliver(store, settings, t0)
        assert down.retrying == ["k"] and "refused the connection" in down.errors[0]
        with store.session() as session:
            row = outbox.find(session, "k")
        assert row is not None and row.state == "pending" and row.attempts == 1
        assert t0 + timedelta(minutes=1) <= row.next_attempt_at <= t0 + timedelta(minutes=1.2)
        smtp_server.start()                      # the server is back, on the same port
        assert outbox.deliver(store, settings, t0 + timedelta(seconds=30)).sent == []
    with opened(workspace) as store:             # a restart changes nothing
        assert outbox.deliver(store, settings, t0 + timedelta(minutes=2)).sent == ["k"]
        assert outbox.deliver(store, settings, t0 + timedelta(minutes=90)).sent == []
    assert [m.rcpt_tos for m in smtp_server.messages] == [[EDITOR]]


def test_outbox_records_a_permanent_failure_and_lists_it(
        workspace: Workspace, smtp_server: SmtpServer, notify_cli: None) -> None:
    configure(workspace, smtp_server)
    smtp_server.refuse[YANGHU] = "550 5.1.1 Mailbox unavailable"
    with opened(workspace) as store:
        with store.session() as session:
            outbox.enqueue(session, "bad", "alert", [YANGHU], "主题", "正文", "", at(TUE))
        report = outbox.deliver(store, workspace.settings, at(TUE))
        assert report.failed == ["bad"]
        assert outbox.deliver(store, workspace.settings, at(THU)).failed == []  # not retried
    listed = workspace.run("mail", "outbox", now=THU)
    assert listed.code == 0 and "failed" in listed.out and "550 5.1.1" in listed.out


def test_a_refused_alert_shows_its_failure(workspace: Workspace, tmp_path: Path,
                                           smtp_server: SmtpServer) -> None:
    configure(workspace, smtp_server)
    lecture, _, _ = submit_three(workspace, tmp_path)
    workspace.run("request-changes", str(lecture), "--note", "请补充照片", now=TUE)
    smtp_server.refuse[YANGHU] = "550 5.1.1 Mailbox unavailable"
    report = deliver(workspace, TUE)
    assert report.delivery.failed and "550 5.1.1" in report.delivery.errors[0]  # type: ignore[attr-defined]
    with opened(workspace) as store, store.session() as session:
        alert = session.exec(select(Alert).where(Alert.kind == "changes_requested")).one()
        [mail] = outbox.messages_for_alert(session, alert.id or 0)
    assert mail.state == "failed" and mail.recipients == json.dumps([YANGHU])
    assert "550 5.1.1 Mailbox unavailable" in mail.last_error
    assert smtp_server.messages == []


def test_outbox_gives_up_after_a_day(workspace: Workspace, smtp_server: SmtpServer) -> None:
    configure(workspace, smtp_server)
    smtp_server.mode = "4xx"
    with opened(workspace) as store:
        with store.session() as session:
            outbox.enqueue(session, "k", "test", [EDITOR], "主题", "正文", "", at(TUE))
        assert outbox.deliver(store, workspace.settings, at(TUE)).retrying == ["k"]
        late = outbox.deliver(store, workspace.settings, at(TUE) + timedelta(hours=25))
        assert late.failed == ["k"]
        with store.session() as session:
            row = outbox.find(session, "k")
    assert row is not None and "gave up after 2 attempt(s)" in row.last_error


def test_a_send_interrupted_by_a_crash_goes_out_after_the_lease(
        workspace: Workspace, smtp_server: SmtpServer) -> None:
    configure(workspace, smtp_server)
    t0 = at(TUE)
    with opened(workspace) as store:
        with store.session() as session:
            outbox.enqueue(session, "k", "test", [EDITOR], "主题", "正文", "", t0)
        # The process claims the row and dies before it can send or record anything.
        assert outbox._claim(store, t0, timedelta(minutes=10)) is not None
        assert outbox.deliver(store, workspace.settings, t0 + timedelta(minutes=5)).sent == []
        assert outbox.deliver(store, workspace.settings,
                              t0 + timedelta(minutes=11)).sent == ["k"]
    assert len(smtp_server.messages) == 1


def test_two_senders_share_the_outbox_each_message_once(any_workspace: Workspace,
                                                        smtp_server: SmtpServer) -> None:
    configure(any_workspace, smtp_server)
    keys = [f"k{i}" for i in range(12)]
    with opened(any_workspace) as store, store.session() as session:
        for key in keys:
            outbox.enqueue(session, key, "test", [EDITOR], f"主题{key}", "正文", "", at(TUE))
    barrier = threading.Barrier(2)
    reports: list[outbox.DeliveryReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with opened(any_workspace) as store:
                barrier.wait()
                reports.append(outbox.deliver(store, any_workspace.settings, at(TUE)))
        except Exception as exc:  # noqa: BLE001 - reported by the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(k for r in reports for k in r.sent) == sorted(keys)
    assert sorted(m.subject for m in smtp_server.messages) == sorted(f"主题{k}" for k in keys)


def test_without_an_smtp_host_messages_are_kept(workspace: Workspace) -> None:
    configure(workspace, None)
    with opened(workspace) as store:
        with store.session() as session:
            outbox.enqueue(session, "k", "test", [EDITOR], "主题", "正文", "", at(TUE))
        report = outbox.deliver(store, workspace.settings, at(TUE))
        with store.session() as session:
            row = outbox.find(session, "k")
    assert report.held == 1 and "smtp.host is not set" in report.summary()
    assert row is not None and row.state == "pending" and row.attempts == 0


# --- alerts end to end -----------------------------------------------------------------------

def test_alerts_grouped_sent_once_and_escalated(any_workspace: Workspace, tmp_path: Path,
                                                smtp_server: SmtpServer) -> None:
    ws = any_workspace
    configure(ws, smtp_server)
    lecture, visit, meeting = submit_three(ws, tmp_path)

    # Tuesday: three stories due soon -> ONE email to the editor listing all three.
    assert ws.run("check", now=TUE).code == 0
    deliver(ws, TUE)
    [mail] = smtp_server.to(EDITOR)
    assert mail.rcpt_tos == [EDITOR] and mail.subject == "【XX新区禁毒】3条稿件提醒"
    for draft_id in (lecture, visit, meeting):
        assert f"{BASE_URL}/drafts/{draft_id}" in mail.text
        assert f'href="{BASE_URL}/drafts/{draft_id}"' in mail.html
    assert "洋湖国际社区举办禁毒知识讲座" in mail.html and "即将到期" in mail.text
    assert "推送期限：今天24时前（还剩14小时）" in mail.text and "<style" not in mail.html

    # Sent back with a note: the community's contact is told, with the editor's note.
    note = "请补充活动照片，并注明参与人数。"
    for draft_id in (lecture, meeting):
        assert ws.run("request-changes", str(draft_id), "--note", note,
                      now="2026-06-16T11:00+08:00").code == 0
    report = deliver(ws, "2026-06-16T11:00+08:00")
    [back] = smtp_server.to(YANGHU)
    assert back.subject == "【XX新区禁毒】1条稿件提醒" and note in back.text and note in back.html
    assert "退回修改" in back.text
    # 东方红社区 has no contact address: the alert is marked, nothing crashes.
    assert len(report.queue.unaddressed) == 1  # type: ignore[attr-defined]
    with opened(ws) as store, store.session() as session:
        marked = session.exec(select(Alert).where(Alert.draft_id == meeting,
                                                  Alert.kind == "changes_requested")).one()
    assert marked.sent_at is not None and "单位未设置联系邮箱" in marked.detail

    # A restart (new Store on the same database) sends nothing again.
    deliver(ws, "2026-06-16T11:05+08:00")
    assert len(smtp_server.messages) == 2

    # Wednesday: overdue -> editors and the unit; Thursday: escalated to the parents.
    ws.run("check", now=WED)
    deliver(ws, WED)
    assert [m.subject for m in smtp_server.to(EDITOR)][-1] == "【XX新区禁毒】3条稿件提醒"
    assert "推送期限：已超期9小时" in smtp_server.to(EDITOR)[-1].text
    assert len(smtp_server.to(YANGHU)) == 2 and "2条" in smtp_server.to(YANGHU)[-1].subject
    assert smtp_server.to(HUANGJINYUAN) == []
    ws.run("check", now=THU)
    deliver(ws, THU)
    [up] = smtp_server.to(HUANGJINYUAN)
    assert up.subject == "【XX新区禁毒】2条稿件提醒" and "上级督办" in up.text
    assert len(smtp_server.to(DONGFANGHONG)) == 1
    ws.run("check", now="2026-06-18T10:00+08:00")
    deliver(ws, "2026-06-18T10:00+08:00")
    assert len(smtp_server.messages) == 6   # nothing twice

    shown = ws.run("show", "--json", str(lecture), now=THU).json()
    kinds = {a["kind"]: a for a in shown["alerts"]}
    assert set(kinds) == {"due_soon", "changes_requested", "overdue", "overdue_escalated"}
    assert all(a["sent_at"] for a in kinds.values())
    assert kinds["overdue_escalated"]["recipients"] == [HUANGJINYUAN]


def test_two_processes_queue_each_alert_once(any_workspace: Workspace, tmp_path: Path,
                                             smtp_server: SmtpServer) -> None:
    ws = any_workspace
    configure(ws, smtp_server)
    submit_three(ws, tmp_path)
    ws.run("check", now=WED)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with opened(ws) as store:
                barrier.wait()
                deliver_alerts(store, ws.settings, at(WED))
        except Exception as exc:  # noqa: BLE001 - reported by the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(r for m in smtp_server.messages for r in m.rcpt_tos) == [EDITOR, YANGHU]
    assert "3条" in smtp_server.to(EDITOR)[0].subject


def test_a_template_error_names_the_template_and_keeps_the_alerts(
        workspace: Workspace, tmp_path: Path, smtp_server: SmtpServer) -> None:
    configure(workspace, smtp_server)
    submit_three(workspace, tmp_path)
    template = workspace.path / "templates" / "email" / "alert.html.j2"
    good = template.read_text("utf-8")
    template.write_text(good.replace("{% for item in items %}", "{% for item in %}"), "utf-8")
    checked = workspace.run("check", now=TUE)  # records the alerts; sending them fails
    assert checked.code == 1 and "email/alert.html.j2" in checked.err
    report = deliver(workspace, TUE)
    assert "email/alert.html.j2" in report.error and "line 5" in report.error  # type: ignore[attr-defined]
    with opened(workspace) as store, store.session() as session:
        assert session.exec(select(Alert).where(Alert.sent_at.is_not(None))).all() == []  # type: ignore[union-attr]
        assert session.exec(select(OutboxMessage)).all() == []
    template.write_text(good.replace("{{ item.title }}", "{{ item.no_such_field }}"), "utf-8")
    report = deliver(workspace, TUE)
    assert "email/alert.html.j2 failed at line" in report.error  # type: ignore[attr-defined]
    template.write_text(good, "utf-8")
    deliver(workspace, TUE)
    assert [m.subject for m in smtp_server.messages] == ["【XX新区禁毒】3条稿件提醒"]
    with opened(workspace) as store, store.session() as session:
        [row] = session.exec(select(OutboxMessage)).all()
    assert len(json.loads(row.alert_ids)) == 3 and row.state == "sent"


# --- mail test and the templates -------------------------------------------------------------

@pytest.mark.parametrize("smtp_server", ["tls"], indirect=True)
def test_mail_test_command(workspace: Workspace, smtp_server: SmtpServer,
                           notify_cli: None, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(workspace, smtp_server)
    ok = workspace.run("mail", "test", YANGHU, now=TUE)
    assert ok.code == 0 and f"sent a test message to {YANGHU}" in ok.out
    assert smtp_server.messages[0].subject == "【XX新区禁毒】邮件发送测试"
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    failed = workspace.run("mail", "test", YANGHU, now=TUE)
    assert failed.code == 1 and "login failed" in failed.err and "535" in failed.err
    assert "wrong" not in failed.err
    smtp_server.stop()
    down = workspace.run("mail", "test", YANGHU, now=TUE)
    assert f"SMTP server 127.0.0.1:{smtp_server.port} refused the connection" in down.err


def test_mail_test_rejects_a_bad_address(notify_cli: None,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["mail", "test", "not an address"])
    assert exited.value.code == 2 and "is not an email address" in capsys.readouterr().err


def test_email_templates_match_the_skeleton() -> None:
    ours = ROOT / "templates" / "email"
    bundled = ROOT / "pipeline" / "skeleton" / "templates" / "email"
    names = sorted(p.name for p in ours.iterdir())
    assert names == sorted(p.name for p in bundled.iterdir())
    _, mismatch, errors = filecmp.cmpfiles(ours, bundled, names, shallow=False)
    assert mismatch == [] and errors == []


@pytest.mark.parametrize(("now", "late_for_next_push"), [("2026-06-16T10:00+08:00", False),
                                                          ("2026-06-16T21:00+08:00", True)])
def test_due_soon_email_tells_the_truth_about_the_next_push(
        workspace: Workspace, tmp_path: Path, smtp_server: SmtpServer, now: str,
        late_for_next_push: bool) -> None:
    """Deadline Wednesday 00:00, push at 20:00: at 10:00 the day's push is in time; at
    21:00 the next push is Wednesday 20:00, after the deadline (issue 14)."""
    ws = workspace
    configure(ws, smtp_server)
    submit_three(ws, tmp_path)
    assert ws.run("check", now=now).code == 0
    deliver(ws, now)
    text = smtp_server.to(EDITOR)[0].text
    assert "请在下次推送前完成审核，以免超期" not in text
    if late_for_next_push:
        assert "下次推送（06月17日20:00）已在截止时间之后" in text
        assert f"{BASE_URL}/push" in text and "立即推送" in text
    else:
        assert "下次推送（06月16日20:00）前完成审核即可按时发布" in text
