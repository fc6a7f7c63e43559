"""The web app in a real browser: Playwright drives Debian's headless Chromium
(/usr/bin/chromium, never a downloaded build) against a real uvicorn server on
a free loopback port. A reporter submits on a phone with a photo; an editor
logs in, edits, approves, reorders today's push and pushes; the reporter sees
the result. Screenshots of the queue, the draft page and the phone form are taken
every run; with PIPELINE_SCREENSHOTS=1 (``make screenshots``) they replace the ones in
docs/screenshots/ that the README shows, so an ordinary test run leaves the tree clean."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import uvicorn
from PIL import Image

from pipeline.clock import Clock
from tests.conftest import ROOT, Workspace
from tests.test_web import PASSWORD, make_desk

CHROMIUM = Path("/usr/bin/chromium")
DOC_SHOTS = ROOT / "docs" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
TZ = ZoneInfo("Asia/Shanghai")


def _chromium() -> Path:
    if not CHROMIUM.exists():
        # CI installs it; elsewhere try once (needs root and Debian's package index)
        subprocess.run([str(ROOT / "scripts" / "ensure-chromium")], check=False,
                       capture_output=True, timeout=600)
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing and scripts/ensure-chromium could not "
                    "install it (apt-get install chromium)")
    return CHROMIUM


class Server:
    """uvicorn on 127.0.0.1, port chosen by the OS, in a background thread."""

    def __init__(self, app: object) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",  # type: ignore[arg-type]
                                lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def site(workspace: Workspace) -> Iterator[tuple[str, Workspace, str]]:
    """A running server with units, an editor, a link for 麓谷街道 and two earlier drafts."""
    _chromium()
    from pipeline.units import create_link

    store, app = make_desk(workspace, Clock())
    with store.session() as session:
        from sqlmodel import select

        from pipeline.models import Unit

        unit = session.exec(select(Unit).where(Unit.name == "麓谷街道")).one()
        assert unit.id is not None
        token = create_link(session, unit.id, actor="test", now=datetime.now(TZ)).token
    _seed(workspace)
    with Server(app) as base:
        yield base, workspace, token
    store.close()


def _seed(ws: Workspace) -> None:
    from tests.test_flow import write_report

    folder = ws.path / "seed"
    folder.mkdir()
    yesterday = (datetime.now(TZ) - timedelta(days=1)).strftime("%Y-%m-%d")
    earlier = (datetime.now(TZ) - timedelta(days=2)).strftime("%Y-%m-%d")
    first = write_report(folder, "s1", unit="雷锋街道", kind="exhibition",
                         title="雷锋街道举办禁毒图片展", start=f"{earlier} 09:00", photo=True)
    second = write_report(folder, "s2", unit="洋湖国际社区", kind="volunteer",
                          title="洋湖国际社区禁毒志愿者进楼栋", start=f"{yesterday} 15:00")
    accepted = ws.run("submit", "--json", str(first), str(second)).json()["accepted"]
    assert ws.run("approve", str(accepted[0]["id"])).code == 0  # the earlier deadline: lead


def _photo(folder: Path) -> Path:
    path = folder / "现场照片.jpg"
    Image.new("RGB", (800, 600), (30, 120, 200)).save(path, "JPEG")
    return path


def test_reporter_and_editor_in_a_real_browser(site: tuple[str, Workspace, str],
                                               tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, ws, token = site
    shots = DOC_SHOTS if os.environ.get("PIPELINE_SCREENSHOTS") else tmp_path / "shots"
    shots.mkdir(parents=True, exist_ok=True)
    start = (datetime.now(TZ) - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M")
    title = "麓谷街道开展禁毒宣传进校园活动"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(_chromium()), args=ARGS, headless=True)
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                    has_touch=True, locale="zh-CN")
        page = phone.new_page()

        # --- the reporter, on a phone: client-side messages first, then a real submission
        page.goto(f"{base}/r/{token}")
        page.click("#submit")
        expect(page.locator("#err-title")).to_have_text("请填写标题")
        expect(page.locator("#err-place")).to_have_text("请填写活动地点")
        page.select_option("#f-activity_type", "lecture")
        page.fill("#f-title", title)
        page.fill("#f-start", start)
        page.fill("#f-place", "麓谷小学报告厅")
        page.fill("#f-form", "线下活动")
        page.fill("#f-participants", "300")
        page.fill("#f-body", "民警结合真实案例讲解毒品危害，同学们踊跃提问。")
        page.fill("#f-links", "https://news.example.cn/a/2\n湖南日报")
        page.set_input_files("#f-photos", str(_photo(tmp_path)))
        expect(page.locator("#photo-summary")).to_have_text("已选择 1 张图片")
        expect(page.locator("#err-title")).to_have_text("")
        page.screenshot(path=str(shots / "reporter-form.png"), full_page=True)
        page.click("#submit")
        expect(page.locator("h1")).to_have_text("报告已收到")
        expect(page.locator(".deadline-note")).to_contain_text("前在公众号发布")

        # --- the editor, on a desktop
        desk = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
        editor = desk.new_page()
        editor.goto(f"{base}/")
        editor.fill("#name", "editor")
        editor.fill("#password", PASSWORD)
        editor.click("button[type=submit].primary")
        expect(editor.locator("h1")).to_contain_text("稿件队列")
        expect(editor.locator("table.queue")).to_contain_text(title)
        editor.screenshot(path=str(shots / "queue.png"), full_page=True)

        editor.click(f"text={title}")
        expect(editor.locator("h1")).to_have_text(title)
        article = editor.frame_locator("#preview")
        expect(article.locator("body")).to_contain_text("民警结合真实案例")
        text = editor.locator("#markdown")
        text.fill(text.input_value() + "\n\n活动共发放宣传资料500份。")
        expect(editor.locator("#render-status")).to_have_text("预览已更新（尚未保存）")
        expect(article.locator("body")).to_contain_text("发放宣传资料500份")
        editor.screenshot(path=str(shots / "draft.png"), full_page=True)
        editor.click("#save")
        expect(editor.locator(".flash")).to_contain_text("正文已保存")
        editor.click("#approve")
        expect(editor.locator(".flash")).to_contain_text("已通过，待推送")

        # --- today's push: the seeded story leads; move ours up, then push
        editor.goto(f"{base}/push")
        items = editor.locator("#push-list li a")
        expect(items).to_have_count(2)
        expect(items.nth(0)).to_have_text("雷锋街道举办禁毒图片展")
        editor.click(f"button[aria-label='上移 {title}']")
        expect(items.nth(0)).to_have_text(title)
        editor.check("#confirm-push")
        editor.once("dialog", lambda dialog: dialog.accept())
        editor.click("#push-button")
        expect(editor.locator(".flash")).to_contain_text("已推送 2 篇稿件")

        # --- the reporter sees the result
        page.goto(f"{base}/r/{token}/reports")
        expect(page.locator(".r-item").first).to_contain_text("已发布")
        browser.close()
    manifests = list((ws.path / "published").glob("*/manifest.json"))
    assert len(manifests) == 1
    assert title in manifests[0].read_text("utf-8").split('"articles"')[1].split("}")[0]
    for name, width in (("reporter-form.png", 390), ("queue.png", 1366), ("draft.png", 1366)):
        with Image.open(shots / name) as shot:
            assert shot.format == "PNG" and shot.width == width and shot.height >= 600


def test_a_leader_signs_the_final_stage_on_a_phone(tmp_path: Path) -> None:
    """三审 on a phone: 初审 and 复审 are signed at the desk's command line; the leader in
    charge logs in on a phone, finds the draft on 待我签审 with its preview, and signs
    终审; the printable 审核记录 then lists the three people."""
    from playwright.sync_api import expect, sync_playwright

    from pipeline.web.auth import add_user
    from tests.conftest import make_workspace
    from tests.test_flow import write_report

    _chromium()
    ws = make_workspace(tmp_path / "ws", f"sqlite:///{tmp_path / 'ws' / 'pipeline.db'}",
                        staged=True)
    store, app = make_desk(ws, Clock())
    with store.session() as session:
        add_user(session, "刘书记", PASSWORD, datetime.now(TZ), stages=["终审"])
    day = (datetime.now(TZ) - timedelta(days=1)).strftime("%Y-%m-%d")
    report = write_report(tmp_path, "r", unit="雷锋街道", kind="lecture",
                          title="雷锋街道禁毒讲座进社区", start=f"{day} 09:00")
    draft_id = ws.run("submit", "--json", str(report)).json()["accepted"][0]["id"]
    for who in ("王编辑", "张主任"):
        assert ws.run("approve", str(draft_id), "--by", who).code == 0
    with Server(app) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(_chromium()), args=ARGS, headless=True)
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                    has_touch=True, locale="zh-CN").new_page()
        phone.goto(f"{base}/mine")
        phone.fill("#name", "刘书记")
        phone.fill("#password", PASSWORD)
        phone.click("button[type=submit].primary")
        expect(phone.locator("h1")).to_contain_text("待我签审")
        card = phone.locator(f"#sign-{draft_id}")
        expect(card).to_contain_text("雷锋街道禁毒讲座进社区")
        expect(card.locator(".signoffs")).to_contain_text("初审 王编辑")
        expect(card.locator(".signoffs")).to_contain_text("终审 待签审：刘书记")
        expect(card.frame_locator("iframe").locator("body")).to_contain_text("活动现场")
        button = card.locator(".sign-approve")
        expect(button).to_have_text("签署终审")
        box = button.bounding_box()
        assert box is not None and box["width"] <= 390 and box["height"] >= 40  # thumb-sized
        phone.screenshot(path=str(tmp_path / "mine.png"), full_page=True)
        button.click()
        expect(phone.locator(".flash")).to_contain_text("已签署终审，已通过，待推送")
        expect(phone.locator("#nothing-waiting")).to_be_visible()
        phone.goto(f"{base}/drafts/{draft_id}/record")
        rows = phone.locator("#record-stages tbody tr")
        expect(rows).to_have_count(3)
        expect(rows.nth(2)).to_contain_text("刘书记")
        browser.close()
    store.close()
    assert ws.run("show", "--json", str(draft_id)).json()["status"] == "approved"
    with Image.open(tmp_path / "mine.png") as shot:
        assert shot.width == 390
