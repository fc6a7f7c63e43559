"""Tests of the render stage: templates, escaping, WeChat HTML rules, limits.

Golden files: tests/data/expected/<activity type>.html hold the HTML of one fixed
report per activity type. After an intended change to the templates or the CSS,
rewrite them with

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_render.py -q -p no:cacheprovider

and review the diff before committing.
"""

from __future__ import annotations

import filecmp
import os
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from pipeline.config import DEFAULT_ACTIVITY_TYPES, Limits, Settings, parse_settings
from pipeline.domain import Report
from pipeline.errors import RenderError
from pipeline.render import (
    check_limits,
    make_digest,
    make_environment,
    markdown_to_html,
    render_article,
    render_markdown,
    rerender,
)

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "templates"
SKELETON_TEMPLATES = REPO / "pipeline" / "skeleton" / "templates"
EXPECTED = Path(__file__).resolve().parent / "data" / "expected"
TZ = ZoneInfo("Asia/Shanghai")
PHOTOS = ["photos/3fa9c2d41b7e4a55.jpg", "photos/8c01e5f2aa934d10.png"]
OUR_TEMPLATES = sorted({tpl for _, tpl in DEFAULT_ACTIVITY_TYPES.values()}
                       | {"_base.md.j2", "article_frame.html.j2", "article.css"})


def make_settings(root: Path, templates: Path = TEMPLATES, **tables: object) -> Settings:
    return parse_settings({"paths": {"templates": str(templates)}, **tables}, root=root)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def env(settings: Settings):
    return make_environment(settings)


def make_report(**changes: object) -> Report:
    report = Report(
        unit="城关街道", activity_type="film", title="城关街道开展禁毒电影放映活动",
        start=datetime(2026, 6, 20, 19, 30, tzinfo=TZ),
        end=datetime(2026, 6, 20, 21, 0, tzinfo=TZ),
        place="幸福社区文化广场", form="现场宣讲+互动问答",
        body=("为营造浓厚的禁毒宣传氛围，活动现场：\n\n"
              "- 放映禁毒影片《**门徒**》\n- 发放宣传资料300余份\n\n"
              "工作人员还结合[真实案例](https://www.example.cn/case/1?a=1&b=2)进行讲解，"
              "并推荐阅读[区禁毒办文章](https://mp.weixin.qq.com/s/AbC123)。"),
        participants=200, participants_unit="人", participants_text="约200人",
        links=("https://www.toutiao.com/article/7380000000/", "区融媒体中心"),
        contact="张老师 0731-8888888")
    return replace(report, **changes)  # type: ignore[arg-type]


class Parsed(HTMLParser):
    """Tags and attributes of an HTML string, as a browser would see them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(tag, name, value or "") for name, value in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def values(self, name: str) -> list[str]:
        return [value for _, attr, value in self.attrs if attr == name]


def assert_wechat_safe(html: str) -> None:
    parsed = Parsed(html)
    assert not {"script", "style", "iframe", "object", "svg", "link"} & set(parsed.tags)
    names = {name for _, name, _ in parsed.attrs}
    assert not {"class", "id"} & names
    assert not [name for name in names if name.startswith("on")]
    assert all(h.startswith("https://mp.weixin.qq.com/") for h in parsed.values("href"))
    allowed_images = ("photos/", "https://mmbiz.qpic.cn/")
    assert all(src.startswith(allowed_images) for src in parsed.values("src"))
    assert not [style for style in parsed.values("style") if "var(" in style]
    lowered = html.lower()
    assert "<script" not in lowered and "<style" not in lowered


# --- every template renders ---------------------------------------------------

@pytest.mark.parametrize("kind", sorted(DEFAULT_ACTIVITY_TYPES))
def test_every_activity_template_renders(kind: str, settings: Settings, env) -> None:
    article = render_article(make_report(activity_type=kind), PHOTOS, env, settings)
    assert "2026年6月20日晚上，城关街道在幸福社区文化广场" in article.markdown
    assert "供稿单位：城关街道" in Parsed(article.html).text
    assert "0731-8888888" not in article.html and "张老师" not in article.markdown
    assert article.html.count("<img ") == 2
    assert "宣传报道" in article.html
    assert article.problems == ()
    assert_wechat_safe(article.html)


@pytest.mark.parametrize("kind", sorted(DEFAULT_ACTIVITY_TYPES))
def test_golden_html(kind: str, settings: Settings, env) -> None:
    html = render_article(make_report(activity_type=kind), PHOTOS, env, settings).html + "\n"
    path = EXPECTED / f"{kind}.html"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
    assert path.exists(), f"missing {path}; run the tests once with UPDATE_GOLDEN=1"
    assert html == path.read_text(encoding="utf-8")


def test_templates_differ_only_in_their_blocks() -> None:
    for kind, (_, name) in DEFAULT_ACTIVITY_TYPES.items():
        source = (TEMPLATES / name).read_text(encoding="utf-8")
        assert '{% extends "_base.md.j2" %}' in source, kind
        assert len(source.splitlines()) <= 8, f"{name} should only override blocks"


def test_skeleton_templates_are_identical_to_the_repository_ones() -> None:
    for name in OUR_TEMPLATES:
        assert (SKELETON_TEMPLATES / name).is_file(), name
        assert filecmp.cmp(TEMPLATES / name, SKELETON_TEMPLATES / name, shallow=False), name


def test_markdown_has_lead_body_participants_photos_links_and_footer(settings, env) -> None:
    text = render_markdown(make_report(), PHOTOS, env, settings)
    assert text.index("组织开展禁毒电影放映活动") < text.index("为营造浓厚") \
        < text.index("观影人数：约200人。") < text.index("![禁毒电影放映现场](photos/") \
        < text.index("### 宣传报道") < text.index("供稿单位：")
    assert "- <https://www.toutiao.com/article/7380000000/>\n- 区融媒体中心" in text
    assert "活动形式为现场宣讲+互动问答。" in text
    assert "张老师" not in text and "0731" not in text  # the contact is never published


def test_optional_parts_are_left_out(settings, env) -> None:
    report = make_report(participants=None, participants_text="", links=(), contact="",
                         form="")
    text = render_markdown(report, [], env, settings)
    assert "人数" not in text and "宣传报道" not in text and "联系人" not in text
    assert "活动形式" not in text and "![" not in text


# --- dates --------------------------------------------------------------------

def test_chinese_date_filters_use_the_account_time_zone(env) -> None:
    utc = datetime(2026, 6, 20, 1, 0, tzinfo=UTC)  # 9:00 in Shanghai
    assert env.from_string("{{ t|cn_datetime }}").render(t=utc) == "2026年6月20日 9:00"
    assert env.from_string("{{ t|cn_date }}").render(t=utc) == "2026年6月20日"


@pytest.mark.parametrize(("start", "end", "expected"), [
    ((2026, 6, 20, 9), (2026, 6, 20, 11), "2026年6月20日上午"),
    ((2026, 6, 20, 15), (2026, 6, 20, 17), "2026年6月20日下午"),
    ((2026, 6, 20, 9), (2026, 6, 22, 17), "2026年6月20日至22日"),
    ((2026, 6, 30, 9), (2026, 7, 2, 17), "2026年6月30日至7月2日"),
    ((2026, 12, 31, 9), (2027, 1, 1, 17), "2026年12月31日至2027年1月1日"),
])
def test_period_reads_like_a_news_lead(env, start, end, expected) -> None:
    values = {"s": datetime(*start, tzinfo=TZ), "e": datetime(*end, tzinfo=TZ)}
    assert env.from_string("{{ period(s, e) }}").render(values) == expected


# --- escaping -----------------------------------------------------------------

PAYLOADS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "[点我](javascript:alert(1))",
    "{{ config }}",
    '{% include "article.css" %}',
    "<style>p{color:red}</style>",
    "**粗体** _斜体_ `代码` {: .caption #x }",
]
SHOWN_FIELDS = ["unit", "place", "form", "body", "participants_text"]


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("field", [*SHOWN_FIELDS, "title", "links", "extra"])
def test_user_fields_are_text_never_markup_or_template(field, payload, settings, env) -> None:
    value: object = payload
    if field == "links":
        value = (payload,)
    elif field == "extra":
        value = {"备注": payload}
    article = render_article(make_report(**{field: value}), PHOTOS, env, settings)
    assert_wechat_safe(article.html)
    assert "javascript" not in "".join(Parsed(article.html).values("href"))
    assert ".caption {" not in article.html  # the include was not executed
    shown = "".join(Parsed(article.html).text)
    if payload.startswith("{") and field in (*SHOWN_FIELDS, "links"):
        assert payload in shown  # template syntax comes out literally
    if field in ("unit", "place", "form", "participants_text", "links"):
        assert payload in shown  # no HTML or Markdown of its own


@pytest.mark.parametrize("field", ["unit", "place", "form", "participants_text"])
def test_markdown_in_plain_fields_is_shown_as_typed(field, settings, env) -> None:
    article = render_article(make_report(**{field: "**A** _b_ [c](https://x.cn)"}), [], env,
                             settings)
    assert "**A** _b_ [c](https://x.cn)" in "".join(Parsed(article.html).text)
    assert article.references == ("https://www.example.cn/case/1?a=1&b=2",)


def test_body_markdown_works_and_its_html_is_shown_as_text(settings, env) -> None:
    body = "**重点**\n\n1. 第一\n2. 第二\n\n<div>未闭合的标签 <b>粗</b>"
    article = render_article(make_report(body=body), PHOTOS, env, settings)
    parsed = Parsed(article.html)
    assert "strong" in parsed.tags and "ol" in parsed.tags
    assert "<div>未闭合的标签 <b>粗</b>" in "".join(parsed.text)
    # An unclosed tag in the body must not swallow the rest of the article.
    assert parsed.tags.count("img") == 2 and "供稿单位" in article.html


def test_template_syntax_in_the_body_is_not_evaluated(settings, env) -> None:
    body = "{{ config }} {% include 'article.css' %} {{ range(10)|list }}"
    article = render_article(make_report(body=body), [], env, settings)
    assert body in "".join(Parsed(article.html).text)


# --- links, images, HTML rules ------------------------------------------------

def test_external_links_become_numbered_references(settings) -> None:
    text = ("看[甲](https://a.example.cn/1)、[乙](http://b.example.cn/?x=1&y=2)"
            "和[甲again](https://a.example.cn/1)，[顶部](#top)，[信](mailto:a@b.cn)。")
    article = markdown_to_html(text, settings)
    assert article.references == ("https://a.example.cn/1", "http://b.example.cn/?x=1&y=2")
    parsed = Parsed(article.html)
    assert "a" not in parsed.tags
    text_out = "".join(parsed.text)
    assert "看甲[1]、乙[2]和甲again[1]，顶部，信。" in text_out
    assert "参考链接" in text_out
    assert "[1] https://a.example.cn/1" in text_out
    assert "[2] http://b.example.cn/?x=1&y=2" in text_out
    assert parsed.tags.count("sup") == 3


def test_wechat_article_links_stay_links(settings) -> None:
    article = markdown_to_html("见[往期](https://mp.weixin.qq.com/s/AbC123)。", settings)
    assert Parsed(article.html).values("href") == ["https://mp.weixin.qq.com/s/AbC123"]
    assert article.references == ()
    assert "参考链接" not in article.html


def test_autolinks_show_their_address_without_a_reference(settings) -> None:
    article = markdown_to_html("- <https://www.toutiao.com/a/1>", settings)
    assert article.references == ()
    assert "https://www.toutiao.com/a/1" in "".join(Parsed(article.html).text)


def test_output_has_inline_styles_only(settings, env) -> None:
    article = render_article(make_report(), PHOTOS, env, settings)
    parsed = Parsed(article.html)
    assert article.html.startswith("<section style=")
    assert "font-size:16px" in article.html and "line-height:1.75" in article.html
    img_styles = [v for tag, name, v in parsed.attrs if tag == "img" and name == "style"]
    assert img_styles and all("width:100%" in style for style in img_styles)
    assert "color:#999999" in article.html  # the caption's grey, from .caption
    assert not {"html", "head", "body", "meta"} & set(parsed.tags)
    assert_wechat_safe(article.html)


def test_editor_html_is_sanitised(settings) -> None:
    text = ("<script>alert(1)</script><style>p{color:red}</style>"
            "<p onclick='x' class='caption' id='a' style='position:fixed'>段落</p>"
            "<iframe src='https://evil.cn'></iframe><a href='javascript:alert(1)'>链</a>"
            "<img src='https://evil.cn/x.png' onerror='alert(1)'><img src='photos/ok.jpg'>")
    article = markdown_to_html(text, settings)
    assert_wechat_safe(article.html)
    assert "alert" not in article.html and "position" not in article.html
    assert Parsed(article.html).values("src") == ["photos/ok.jpg"]


def test_external_images_become_numbered_references_without_blocking(settings) -> None:
    text = ("![外链](https://img.example.cn/a.jpg)\n\n![已上传](https://mmbiz.qpic.cn/mmbiz_jpg/x/0)"
            "\n\n![](https://img.example.cn/b.jpg)")
    article = rerender(text, "标题", "作者", "摘要", settings)
    assert Parsed(article.html).values("src") == ["https://mmbiz.qpic.cn/mmbiz_jpg/x/0"]
    assert article.problems == ()  # a finding for the editor (views.image_notes), not a block
    assert article.references == ("https://img.example.cn/a.jpg", "https://img.example.cn/b.jpg")
    assert "（图片：外链）" in article.html and "（图片）" in article.html
    assert "<span></span>" not in article.html and "<p></p>" not in article.html


def test_an_image_without_an_address_leaves_no_empty_paragraph(settings) -> None:
    article = rerender("前文\n\n![](javascript:x)\n\n后文", "标题", "作者", "摘要", settings)
    assert article.html == rerender("前文\n\n后文", "标题", "作者", "摘要", settings).html


def test_the_summary_says_the_words_the_body_shows(settings, env) -> None:
    body = "名字里带 <script>alert('x')</script> 的同学参加了活动。"
    article = render_article(make_report(body=body), [], env, settings)
    assert article.digest == body
    assert "&lt;script&gt;alert('x')&lt;/script&gt; 的同学" in article.html


def test_css_variables_and_relative_units_do_not_reach_wechat(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    css = templates / "article.css"
    css.write_text(css.read_text(encoding="utf-8")
                   + ".article { --accent: #c00; border-color: var(--accent); }\n"
                   + "li { margin-left: 1.5em; padding: 0.5rem; }\n", encoding="utf-8")
    article = markdown_to_html("- 一\n- 二", make_settings(tmp_path, templates))
    assert "var(" not in article.html and "em;" not in article.html
    assert "margin-left:24px" in article.html and "padding:8px" in article.html


# --- digest, author, limits ---------------------------------------------------

def test_digest_is_plain_text_of_the_body(settings, env) -> None:
    article = render_article(make_report(), PHOTOS, env, settings)
    assert article.digest.startswith("为营造浓厚的禁毒宣传氛围，活动现场：")
    assert "放映禁毒影片《门徒》 发放宣传资料" in article.digest  # list items keep a space
    assert "*" not in article.digest and "](" not in article.digest
    assert "工作人员还结合真实案例进行讲解" in article.digest


def test_digest_is_cut_to_the_limit() -> None:
    digest = make_digest("禁毒" * 200, 128)
    assert len(digest) == 128 and digest.endswith("…")
    assert make_digest("  短\n\n  摘要  ", 128) == "短 摘要"


def test_author_is_the_account_author_or_the_unit(tmp_path: Path) -> None:
    report = make_report()
    plain = make_settings(tmp_path)
    assert render_article(report, [], make_environment(plain), plain).author == "城关街道"
    named = make_settings(tmp_path, account={"author": "区禁毒办"})
    assert render_article(report, [], make_environment(named), named).author == "区禁毒办"


def test_check_limits_names_field_length_limit_and_counting() -> None:
    limits = Limits(content_chars=100, content_bytes=200)
    problems = check_limits("标" * 35, "作" * 17, "摘" * 129, "内" * 100, limits)
    assert problems == [
        "title is 35 characters; WeChat allows at most 32 (counted as Unicode characters)",
        "author is 17 characters; WeChat allows at most 16 (counted as Unicode characters)",
        "digest is 129 characters; WeChat allows at most 128 (counted as Unicode characters)",
        "content is 100 characters; WeChat requires fewer than 100 "
        "(counted as Unicode characters, HTML included)",
        "content is 300 bytes; WeChat requires fewer than 200 (counted as bytes of UTF-8)",
    ]


def test_check_limits_accepts_values_at_the_limit() -> None:
    assert check_limits("标" * 32, "作" * 16, "摘" * 128, "内" * 10, Limits()) == []
    assert check_limits("  ", "", "", "x", Limits()) == [
        "title is empty; WeChat requires a title"]


def test_violations_are_recorded_not_cut(settings, env) -> None:
    title = "城关街道幸福社区联合辖区多家单位开展“6·26”国际禁毒日系列宣传活动"
    report = make_report(title=title, unit="城关街道幸福社区禁毒工作站志愿服务队第一分队")
    article = render_article(report, PHOTOS, env, settings)
    assert article.title == title
    assert f"title is {len(title)} characters; WeChat allows at most 32 " \
           "(counted as Unicode characters)" in article.problems
    assert "author is 22 characters; WeChat allows at most 16 " \
           "(counted as Unicode characters)" in article.problems


def test_rerender_uses_the_edited_markdown(settings) -> None:
    article = rerender("编辑修改后的**正文**。\n", "新标题", "区禁毒办", "新摘要", settings)
    assert (article.title, article.author, article.digest) == ("新标题", "区禁毒办", "新摘要")
    assert "<strong" in article.html and article.problems == ()
    assert article.markdown == "编辑修改后的**正文**。\n"


# --- template errors ----------------------------------------------------------

@pytest.fixture
def own_templates(tmp_path: Path) -> Path:
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    return templates


@pytest.mark.parametrize("name", ["film.md.j2", "_base.md.j2"])
def test_syntax_error_names_file_and_line(name, own_templates: Path, tmp_path: Path) -> None:
    path = own_templates / name
    lines = [*path.read_text(encoding="utf-8").splitlines(), "{% if %}"]
    path.write_text("\n".join(lines), encoding="utf-8")
    settings = make_settings(tmp_path, own_templates)
    with pytest.raises(RenderError, match=rf"template {name} has an error at line {len(lines)}"):
        render_article(make_report(), [], make_environment(settings), settings)


def test_runtime_error_names_file_and_line(own_templates: Path, tmp_path: Path) -> None:
    (own_templates / "film.md.j2").write_text(
        '{% extends "_base.md.j2" %}\n{% block purpose %}{{ no_such_field }}{% endblock %}\n',
        encoding="utf-8")
    settings = make_settings(tmp_path, own_templates)
    with pytest.raises(RenderError, match=r"template film.md.j2 at line 2 failed: "
                                          r"'no_such_field' is undefined"):
        render_article(make_report(), [], make_environment(settings), settings)


def test_expression_mistake_names_file_and_line(own_templates: Path, tmp_path: Path) -> None:
    (own_templates / "quiz.md.j2").write_text(
        '{% extends "_base.md.j2" %}\n\n'
        '{% block purpose %}{{ participants_count + "人" }}{% endblock %}\n', encoding="utf-8")
    settings = make_settings(tmp_path, own_templates)
    with pytest.raises(RenderError, match=r"template quiz\.md\.j2 at line 3 failed: .*int"):
        render_article(make_report(activity_type="quiz"), [], make_environment(settings), settings)


def test_sandbox_blocks_unsafe_template_code(own_templates: Path, tmp_path: Path) -> None:
    (own_templates / "film.md.j2").write_text(
        "{{ ''.__class__.__mro__[1].__subclasses__() }}\n", encoding="utf-8")
    settings = make_settings(tmp_path, own_templates)
    with pytest.raises(RenderError, match=r"film\.md\.j2"):
        render_article(make_report(), [], make_environment(settings), settings)


@pytest.mark.parametrize("name", ["film.md.j2", "article_frame.html.j2"])
def test_missing_template_is_named(name, own_templates: Path, tmp_path: Path) -> None:
    (own_templates / name).unlink()
    settings = make_settings(tmp_path, own_templates)
    with pytest.raises(RenderError, match=rf"the template {name} is missing from"):
        render_article(make_report(), [], make_environment(settings), settings)


def test_unknown_activity_type(settings, env) -> None:
    with pytest.raises(RenderError, match="'parade' is not configured"):
        render_article(make_report(activity_type="parade"), [], env, settings)


# --- property -----------------------------------------------------------------

FRAGMENTS = st.sampled_from([
    "<script>", "</script>", "<style>", "<img src=x onerror=alert(1)>", "<a href='javascript:x'>",
    "<svg onload=x>", '" onmouseover="x', "class=", "{: .caption #id onclick=x }", "[a](", ")",
    "](javascript:alert(1))", "![i](http://e.cn/x.png)", "<https://x.cn>", "{{", "}}", "{%",
    "%}", "**", "_", "`", "\n", "\n\n", "> ", "- ", "1. ", "#", "&lt;", "&", "<", ">", "\x02",
    "\x03", "<!--", "-->", "<plaintext>", "禁毒", "宣传", " ", "|", "---",
])
TEXT = st.one_of(st.text(max_size=200), st.lists(FRAGMENTS, max_size=30).map("".join))


@hypothesis_settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=TEXT, body=TEXT)
def test_no_markup_from_arbitrary_text(title: str, body: str, settings, env) -> None:
    article = render_article(make_report(title=title, body=body), PHOTOS, env, settings)
    assert_wechat_safe(article.html)
    assert_wechat_safe(rerender(article.markdown + body, title, "作者", "", settings).html)


# ------------------------------------------------- the quick inline stage (issue 13)

_PIECES = ["禁毒宣传", "社区", "，", "。", "*", "**", "_", "__", "`code`", "``a`b``", "\\*",
           "\\\\", "\\_", "[报道](https://news.example.cn/1)", "![图](photos/a.jpg)",
           "<https://a.example.cn/x>", "<wang@example.cn>", "<b>粗</b>", "<!-- c -->",
           "&amp;", "&#123;", "&copy;", "& ", "  \n", "\n", "\n\n", "- ", "1. ", "> ",
           "| a | b |\n|---|---|\n| 1 | 2 |\n", "{: .caption }", "[ref]", "[ref][]",
           "\n\n[ref]: https://r.example.cn\n\n", "!", "[", "]", "<", ">", "(", ")", " ",
           "# ", "### ", "***", "---", "    缩进\n", "a_b_c", "*强调*", "**加粗**"]


def test_the_quick_inline_stage_writes_the_html_python_markdown_writes() -> None:
    import random

    import markdown

    from pipeline.render.html import quick_inline

    extensions = ["attr_list", "tables", "sane_lists", "nl2br"]
    plain, quick = markdown.Markdown(extensions=extensions), markdown.Markdown(
        extensions=extensions)
    quick_inline(quick)
    assert type(quick.treeprocessors["inline"]).__name__ == "_QuickInline"
    order = [item.name for item in plain.treeprocessors._priority]  # the stage's place
    assert [quick.treeprocessors.get_index_for_name(n) for n in order] == [
        plain.treeprocessors.get_index_for_name(n) for n in order]
    rng = random.Random(13)
    texts = ["".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 60)))
             for _ in range(3000)]
    for text in texts:
        plain.reset()
        quick.reset()
        assert quick.convert(text) == plain.convert(text), text
    # A pattern registered afterwards (no triggers known for it) is tried, also in text
    # without any of the known patterns' characters.
    from markdown.inlinepatterns import SimpleTagInlineProcessor

    for md in (plain, quick):
        md.inlinePatterns.register(SimpleTagInlineProcessor(r"(~~)(.+?)~~", "del"), "del", 5)
    for text in ("禁毒~~宣传~~活动", "**禁毒**~~宣传~~", *texts[:300]):
        plain.reset()
        quick.reset()
        assert quick.convert(text) == plain.convert(text), text
    assert "<del>宣传</del>" in quick.convert("禁毒~~宣传~~活动")
