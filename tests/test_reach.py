"""Reach: WeChat's read figures fetched daily from the fake's analytics, account totals,
hand-published articles matched by title, and the figures in stats, digest and bulletin."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from sqlmodel import col, select

from pipeline.clock import Clock
from pipeline.models import AccountStat, ArticleStat, ReachFetch
from pipeline.reach.fetch import reach_due
from pipeline.schedule import tick
from tests.conftest import Workspace
from tests.fakewechat import SHANGHAI, FakeClock, FakeWeChat, PublishedArticle
from tests.test_wechat_publish import approve, wechat_workspace

PUSH = "2026-06-15T20:00+08:00"


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WECHAT_APPSECRET", "test-secret")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(SHANGHAI)


def simple_reads(article: PublishedArticle, days: int) -> int:
    """Figures a person can add up: the lead 300 a day, the others 100 a day."""
    return (300 if article.idx == 1 else 100) * (days + 1)


def published(ws: Workspace, fake: FakeWeChat, tmp_path: Path, mode: str = "masssend",
              count: int = 2) -> list[int]:
    """``count`` stories pushed on 2026-06-15 at 20:00 (fake clock in step)."""
    fake.clock = FakeClock(at(PUSH))
    fake.article_reads = simple_reads
    wechat_workspace(ws, fake, mode)
    ws.configure("reach", backfill_days=3)
    ids = approve(ws, tmp_path, count, photo=False)
    result = ws.run("push", now=PUSH)
    assert result.code == 0, result.err
    return ids


def stats(ws: Workspace) -> list[ArticleStat]:
    store = ws.store()
    try:
        with store.session() as session:
            return list(session.exec(select(ArticleStat).order_by(
                col(ArticleStat.draft_id), col(ArticleStat.stat_date))))
    finally:
        store.close()


def fetch(ws: Workspace, fake: FakeWeChat, when: str) -> str:
    fake.clock = FakeClock(at(when))
    result = ws.run("reach", now=when)
    assert result.code == 0, result.err
    return result.out


def test_first_run_then_same_day_rerun_makes_no_call_and_no_duplicate(
        workspace: Workspace, wechat_api: FakeWeChat, tmp_path: Path, secret: None) -> None:
    ids = published(workspace, wechat_api, tmp_path)
    fetch(workspace, wechat_api, "2026-06-16T10:30+08:00")
    rows = stats(workspace)
    assert [(r.draft_id, r.stat_date, r.reads, r.matched_by) for r in rows] == [
        (ids[0], date(2026, 6, 15), 300, "msgid"), (ids[1], date(2026, 6, 15), 100, "msgid")]
    assert rows[0].readers == 240 and rows[0].shares == 30 and rows[0].favorites == 15
    assert rows[0].likes == 12 and rows[0].zaikan == 6
    calls = len(wechat_api.ledger.calls)
    out = fetch(workspace, wechat_api, "2026-06-16T15:00+08:00")
    assert out.startswith("0 call(s)")
    assert len(wechat_api.ledger.calls) == calls
    assert len(stats(workspace)) == 2
    store = workspace.store()
    with store.session() as session:
        days = [a.day for a in session.exec(select(AccountStat).order_by(col(AccountStat.day)))]
        followers = session.exec(select(AccountStat)).first()
    store.close()
    assert days == [date(2026, 6, 13), date(2026, 6, 14), date(2026, 6, 15)]
    assert followers is not None and followers.new == 10 and followers.cancelled == 2


def test_gap_of_several_days_is_caught_up(workspace: Workspace, wechat_api: FakeWeChat,
                                          tmp_path: Path, secret: None) -> None:
    ids = published(workspace, wechat_api, tmp_path)
    fetch(workspace, wechat_api, "2026-06-16T10:30+08:00")
    before = wechat_api.ledger.count("datacube/getarticletotaldetail")
    fetch(workspace, wechat_api, "2026-06-20T11:00+08:00")  # down for three days
    assert wechat_api.ledger.count("datacube/getarticletotaldetail") == before + 1
    lead = [(r.stat_date.day, r.reads) for r in stats(workspace) if r.draft_id == ids[0]]
    assert lead == [(15, 300), (16, 600), (17, 900), (18, 1200), (19, 1500)]
    for call in wechat_api.ledger.calls_to("datacube/getusersummary"):
        assert call.errcode != 61501  # every span inside the documented 7 days


def test_not_ready_is_retried_later_and_never_stored_as_zero(
        workspace: Workspace, wechat_api: FakeWeChat, tmp_path: Path, secret: None) -> None:
    published(workspace, wechat_api, tmp_path)
    wechat_api.not_ready_days = {date(2026, 6, 15)}
    out = fetch(workspace, wechat_api, "2026-06-16T10:30+08:00")
    assert "not ready yet" in out
    assert stats(workspace) == []
    calls = wechat_api.ledger.count("datacube/getarticletotaldetail")
    fetch(workspace, wechat_api, "2026-06-16T10:45+08:00")  # inside retry_minutes: no call
    assert wechat_api.ledger.count("datacube/getarticletotaldetail") == calls
    wechat_api.not_ready_days = set()
    fetch(workspace, wechat_api, "2026-06-16T11:40+08:00")
    assert [r.reads for r in stats(workspace)] == [300, 100]


def test_quota_used_up_resumes_the_next_day(workspace: Workspace, wechat_api: FakeWeChat,
                                            tmp_path: Path, secret: None) -> None:
    published(workspace, wechat_api, tmp_path)
    wechat_api.quotas["/datacube/getarticletotaldetail"] = 0
    out = fetch(workspace, wechat_api, "2026-06-16T10:30+08:00")
    assert "quota is used up" in out
    assert stats(workspace) == []
    # the scheduler's hook stays quiet until the quota day turns
    settings, store = workspace.settings, workspace.store()
    assert reach_due(store, settings, at("2026-06-16T18:00+08:00")) is None
    wechat_api.quotas["/datacube/getarticletotaldetail"] = None
    wechat_api.clock = FakeClock(at("2026-06-17T10:30+08:00"))
    report = reach_due(store, settings, at("2026-06-17T10:30+08:00"))
    store.close()
    assert report is not None and report.article_rows == 4, report


def test_token_expiring_mid_run(workspace: Workspace, wechat_api: FakeWeChat, tmp_path: Path,
                                secret: None) -> None:
    published(workspace, wechat_api, tmp_path)
    wechat_api.inject("datacube/getusercumulate", "expire_token")
    fetch(workspace, wechat_api, "2026-06-16T10:30+08:00")
    assert [r.reads for r in stats(workspace)] == [300, 100]
    assert any(c.errcode == 42001 for c in wechat_api.ledger.calls_to("datacube/getusercumulate"))


def test_scheduler_fetches_only_after_ten(workspace: Workspace, wechat_api: FakeWeChat,
                                          tmp_path: Path, secret: None) -> None:
    published(workspace, wechat_api, tmp_path)
    settings, store = workspace.settings, workspace.store()
    wechat_api.clock = FakeClock(at("2026-06-16T09:30+08:00"))
    tick(store, settings, Clock(at("2026-06-16T09:30+08:00")))
    assert wechat_api.ledger.count("datacube/getarticletotaldetail") == 0
    wechat_api.clock = FakeClock(at("2026-06-16T10:05+08:00"))
    tick(store, settings, Clock(at("2026-06-16T10:05+08:00")))
    tick(store, settings, Clock(at("2026-06-16T10:10+08:00")))
    store.close()
    assert wechat_api.ledger.count("datacube/getarticletotaldetail") == 1
    assert len(stats(workspace)) == 2


def test_legacy_api_where_the_newer_one_does_not_answer(
        workspace: Workspace, wechat_api: FakeWeChat, tmp_path: Path, secret: None) -> None:
    ids = published(workspace, wechat_api, tmp_path)
    wechat_api.analytics_family = "legacy"
    fetch(workspace, wechat_api, "2026-06-16T10:30+08:00")
    rows = stats(workspace)
    assert [(r.draft_id, r.reads, r.source, r.likes) for r in rows] == [
        (ids[0], 300, "getarticletotal", None), (ids[1], 100, "getarticletotal", None)]
    fetch(workspace, wechat_api, "2026-06-17T10:30+08:00")
    assert wechat_api.ledger.count("datacube/getarticletotaldetail") == 1  # asked once


def test_unverified_account_refusal_is_recorded_once(
        workspace: Workspace, wechat_api: FakeWeChat, tmp_path: Path, secret: None) -> None:
    published(workspace, wechat_api, tmp_path)
    wechat_api.verified = False
    out = fetch(workspace, wechat_api, "2026-06-16T10:30+08:00")
    assert "48001" in out
    settings, store = workspace.settings, workspace.store()
    calls = len(wechat_api.ledger.calls)
    assert reach_due(store, settings, at("2026-06-17T10:30+08:00")) is None
    store.close()
    assert len(wechat_api.ledger.calls) == calls
    check = workspace.run("wechat", "check", now="2026-06-17T10:30+08:00")
    assert "认证" in check.out and check.code == 0, check


def test_hand_published_articles_are_matched_by_title_and_date(
        workspace: Workspace, wechat_api: FakeWeChat, tmp_path: Path, secret: None) -> None:
    ids = published(workspace, wechat_api, tmp_path, mode="draftbox")
    draft = wechat_api.drafts()[0]
    wechat_api.send_by_hand(draft.media_id)
    assert workspace.run("confirm-sent", "2026-06-15", now="2026-06-15T21:00+08:00").code == 0
    fetch(workspace, wechat_api, "2026-06-16T10:30+08:00")
    rows = stats(workspace)
    assert [(r.draft_id, r.reads, r.matched_by) for r in rows] == [
        (ids[0], 300, "title"), (ids[1], 100, "title")]
    store = workspace.store()
    with store.session() as session:
        fetched = session.exec(select(ReachFetch).where(ReachFetch.kind == "articles")).one()
    store.close()
    assert fetched.through == date(2026, 6, 15)
