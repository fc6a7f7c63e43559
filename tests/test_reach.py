"""Reach: WeChat's read figures fetched daily from the fake's analytics, account totals,
hand-published articles matched by title, and the figures in stats, digest and bulletin."""

from __future__ import annotations

import re
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


# --- where the figures show -------------------------------------------------------------------

def two_days_of_figures(ws: Workspace, fake: FakeWeChat, tmp_path: Path) -> list[int]:
    """Two stories of 雷锋街道 pushed 2026-06-15, fetched on 06-17: lead 300 then 600 reads,
    the second 100 then 200."""
    ids = published(ws, fake, tmp_path)
    fetch(ws, fake, "2026-06-17T10:30+08:00")
    return ids


def test_stats_json(workspace: Workspace, wechat_api: FakeWeChat, tmp_path: Path,
                    secret: None) -> None:
    ids = two_days_of_figures(workspace, wechat_api, tmp_path)
    data = workspace.run("stats", "--json", "--days", "7", now="2026-06-17T11:00+08:00").json()
    assert [(a["id"], a["reads"], a["readers"], a["shares"], a["favorites"], a["likes"])
            for a in data["articles"]] == [(ids[0], 600, 480, 60, 30, 24),
                                           (ids[1], 200, 160, 20, 10, 8)]
    assert data["articles"][0]["unit"] == "雷锋街道"
    assert data["articles"][0]["published_at"].startswith("2026-06-15T20:")
    assert data["account"][-1] == {"date": "2026-06-16", "followers": 1000 + 8 * 166,
                                   "new": 10, "cancelled": 2}
    other = workspace.run("stats", "--json", "--unit", "麓谷街道", now="2026-06-17T11:00+08:00")
    assert other.json()["articles"] == []


def test_digest_shows_reads_top_five_and_followers(
        workspace: Workspace, wechat_api: FakeWeChat, tmp_path: Path, secret: None) -> None:
    two_days_of_figures(workspace, wechat_api, tmp_path)
    out = workspace.run("digest", "--date", "2026-06-16", now="2026-06-17T11:00+08:00").out
    assert "昨日推送阅读：1. 600；2. 200" in out
    assert "1. 雷锋街道禁毒讲座第1场（雷锋街道）阅读 600，点赞 24" in out
    assert "2. 雷锋街道禁毒讲座第2场（雷锋街道）阅读 200，点赞 8" in out
    assert "6月15日新增10人，取消2人，累计2320人" in out


def test_bulletin_reads_per_unit_and_coverage_by_level(
        workspace: Workspace, wechat_api: FakeWeChat, tmp_path: Path, secret: None) -> None:
    two_days_of_figures(workspace, wechat_api, tmp_path)
    assert workspace.run("bulletin", "--week", "2026-W25", now="2026-06-17T11:00+08:00").code == 0
    md = (workspace.path / "published/bulletins/2026-W25.md").read_text("utf-8")
    # two stories, 600 + 200 reads; each report names 湖南日报 (provincial) and an unknown site
    assert "| 雷锋街道 | 2 | 800 | 400 | 0 | 2 | 0 |" in md
    assert "| 麓谷街道 | 0 | — | — | 0 | 0 | 0 |" in md
    assert "超期未发数 × (-3)\n" in md  # the default formula: reads are a column, not scored
    assert "| 1 | 雷锋街道 | 14 |" in md  # 1 target met × 10 + 2 published × 2
    workspace.configure("scoring", reads_per_story=0.01, provincial=1.0)
    workspace.run("bulletin", "--week", "2026-W25", now="2026-06-17T11:00+08:00")
    md = (workspace.path / "published/bulletins/2026-W25.md").read_text("utf-8")
    assert "+ 篇均阅读 × 0.01 + 省级媒体报道数 × 1" in md
    # 雷锋街道: 14 as before + reads per story 400 × 0.01 + 2 provincial × 1
    assert "| 1 | 雷锋街道 | 20 |" in md


def test_unknown_outlet_is_listed_and_classified_once(
        workspace: Workspace, wechat_api: FakeWeChat, tmp_path: Path, secret: None) -> None:
    two_days_of_figures(workspace, wechat_api, tmp_path)
    unknown = workspace.run("media", "unknown", "--json").json()
    assert [(u["key"], u["count"], u["units"]) for u in unknown] == [
        ("news.example.cn", 2, ["雷锋街道"])]
    result = workspace.run("media", "classify", "news.example.cn", "--level", "市",
                           "--outlet", "示例新闻网", now="2026-06-17T11:00+08:00")
    assert result.code == 0 and "示例新闻网 (city)" in result.out
    assert workspace.run("media", "unknown", "--json").json() == []
    again = workspace.run("media", "classify", "news.example.cn", "--level", "city")
    assert again.code == 1 and "already classified" in again.err
    bad = workspace.run("media", "classify", "某某报", "--level", "世界级")
    assert bad.code == 1 and "'世界级' is not one of" in bad.err
    workspace.run("bulletin", "--week", "2026-W25", now="2026-06-17T11:00+08:00")
    md = (workspace.path / "published/bulletins/2026-W25.md").read_text("utf-8")
    assert "| 雷锋街道 | 2 | 800 | 400 | 0 | 2 | 2 |" in md


# --- media classification, the chart and the desk page --------------------------------------

@pytest.mark.parametrize(("item", "outlet", "level", "key"), [
    ("https://www.rednet.cn/content/2026/06/26/xxxq-626.html", "红网", "provincial", "rednet.cn"),
    ("http://hnrb.voc.com.cn/hnrb_epaper/html/2026-06/27/content.htm", "湖南日报", "provincial",
     "hnrb.voc.com.cn"),
    ("https://paper.people.com.cn/rmrb/html/2026-06/26/nw.htm", "人民网", "national",
     "paper.people.com.cn"),
    ("长沙晚报", "长沙晚报", "city", "长沙晚报"),
    ("《湖南日报》7月1日第3版", "湖南日报", "provincial", "湖南日报7月1日第3版"),
    ("https://mp.weixin.qq.com/s/XXxq-lugu-20260603", "微信公众号文章", "new_media",
     "mp.weixin.qq.com"),
    ("XX新区发布", None, None, "XX新区发布"),
    ("https://news.example.cn/a/1", None, None, "news.example.cn"),
])
def test_media_classification(item: str, outlet: str | None, level: str | None,
                              key: str) -> None:
    from pipeline.reach.media import media_list

    found = media_list(()).classify(item)
    assert (found.outlet, found.level, found.key) == (outlet, level, key)


def test_workspace_media_list_and_its_errors(workspace: Workspace) -> None:
    from pipeline.reach.media import media_list

    (workspace.path / "media.toml").write_text(
        '[[outlets]]\nname = "XX新区发布"\nlevel = "区县"\naliases = ["XX新区融媒体中心"]\n'
        'domains = ["xxxq.gov.cn"]\n', "utf-8")
    media = media_list(workspace.settings.media.outlets)
    assert media.classify("XX新区发布").level == "county"
    assert media.classify("https://www.xxxq.gov.cn/n/1.html").outlet == "XX新区发布"
    (workspace.path / "media.toml").write_text('[[outlets]]\nname = "某报"\nlevel = "世界"\n',
                                               "utf-8")
    result = workspace.run("queue")
    assert result.code == 1
    assert "media.toml: outlets[0].level: '世界' is not one of national" in result.err


def test_line_chart_is_valid_svg() -> None:
    import xml.etree.ElementTree as ET

    from pipeline.reach.chart import Series, line_chart

    svg = line_chart([Series("每日阅读", [(date(2026, 6, 15), 400), (date(2026, 6, 16), 400)]),
                      Series("<新增>", [(date(2026, 6, 16), 10)])], title="a & b")
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    lines = root.findall(f"{ns}polyline")
    assert len(lines) == 2 and len(lines[0].get("points", "").split()) == 2
    assert "&lt;新增&gt;" in svg and "a &amp; b" in svg
    empty = ET.fromstring(line_chart([Series("每日阅读", [])]))
    assert any(t.text == "暂无数据" for t in empty.iter(f"{ns}text"))


def test_desk_reach_page_and_draft_figures(workspace: Workspace, wechat_api: FakeWeChat,
                                           tmp_path: Path, secret: None) -> None:
    import xml.etree.ElementTree as ET

    from fastapi.testclient import TestClient

    from tests.test_web import CSRF, login, make_desk

    ids = two_days_of_figures(workspace, wechat_api, tmp_path)
    store, app = make_desk(workspace, Clock(at("2026-06-17T11:00+08:00")))
    with TestClient(app) as client:
        assert login(client).status_code == 303
        page = client.get("/reach")
        assert page.status_code == 200
        html = page.text
        svg = html[html.index("<svg"):html.index("</svg>") + 6]
        assert ET.fromstring(svg).findall("{http://www.w3.org/2000/svg}polyline")
        assert "<script" not in html.split("</head>")[1]  # no charting script, no CDN
        assert "<td>2026-06-16</td><td>400</td>" in html  # 300 + 100 new reads that day
        assert "<td>2026-06-15</td><td>400</td>" in html
        assert re.search(r"雷锋街道</td><td>2</td><td>2</td><td>800</td>\s*<td>400</td>", html)
        assert "news.example.cn" in html
        token = CSRF.search(html)
        assert token
        done = client.post("/reach/media", data={"csrf_token": token[1], "key": "news.example.cn",
                                                 "level": "city", "outlet": "示例新闻网"},
                           follow_redirects=True)
        assert "已将“news.example.cn”归类为市媒体" in done.text
        assert "所有报送的媒体均已归类" in done.text
        draft = client.get(f"/drafts/{ids[0]}").text
        assert "<dt>阅读次数</dt><dd>600</dd>" in draft and "<dt>点赞</dt><dd>24</dd>" in draft
    store.close()


def test_fake_analytics_dates_spans_and_errors(wechat_api: FakeWeChat) -> None:
    from pipeline.errors import WeChatAPIError
    from pipeline.wechat.client import MemoryTokenCache, WeChatClient

    wechat_api.clock = FakeClock(at("2026-06-17T09:00+08:00"))
    client = WeChatClient(wechat_api.base_url, "wxTESTAPPID", "test-secret",
                          tokens=MemoryTokenCache(), sleep=lambda _s: None)

    def code(name: str, begin: str, end: str) -> int | None:
        try:
            client.datacube(name, begin, end)
        except WeChatAPIError as err:
            return err.errcode
        return 0

    assert code("getusersummary", "2026/06/10", "2026-06-11") == 61500
    assert code("getusersummary", "2026-06-08", "2026-06-15") == 61501   # 8 days > 7
    assert code("getusersummary", "2026-06-09", "2026-06-15") == 0
    assert code("getarticletotaldetail", "2026-06-14", "2026-06-15") == 61501  # span 1
    assert code("getusercumulate", "2026-06-17", "2026-06-17") == 61501  # today
    assert code("getusercumulate", "2014-11-30", "2014-11-30") == 61501  # before any data
    assert code("getusercumulate", "2026-06-16", "2026-06-16") == 0      # ready after 08:00
    wechat_api.quotas["/datacube/getusercumulate"] = 2
    assert code("getusercumulate", "2026-06-15", "2026-06-15") == 45009
    wechat_api.verified = False
    assert code("getusersummary", "2026-06-15", "2026-06-15") == 48001
    client.close()
