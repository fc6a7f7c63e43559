"""Render stage: a ``Report`` becomes article Markdown, then WeChat-ready HTML.

Inputs are a report, the names its photos were copied under and the settings;
outputs are plain values (``RenderedArticle``). Pure: the only I/O is Jinja's
loader reading templates. Writing drafts to disk belongs to the caller.

HTML steps, in order (each relies on the one before):
Markdown (+ link/image rewriting) -> nh3 sanitising -> article frame ->
css-inline -> final nh3 pass (no class/id/style tags, checked URLs, px units).
"""

from __future__ import annotations

import functools
import html as htmllib
import re
import threading
import traceback
import xml.etree.ElementTree as etree
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import css_inline
import jinja2
import markdown as mdlib
import nh3
from jinja2.sandbox import SandboxedEnvironment
from markdown.treeprocessors import Treeprocessor
from markupsafe import Markup

from .config import ActivityType, Limits, Settings
from .domain import Report
from .errors import RenderError

FRAME_TEMPLATE = "article_frame.html.j2"

# What WeChat keeps: real anchors only to published account articles, images
# only from its own CDN or our photos/ folder (uploaded and rewritten at publish).
_WECHAT_ARTICLE = re.compile(r"https?://mp\.weixin\.qq\.com/", re.IGNORECASE)
_WECHAT_IMAGE = re.compile(r"https?://mmbiz\.qpic\.cn/", re.IGNORECASE)
_PHOTO = re.compile(r"photos/[A-Za-z0-9_-][A-Za-z0-9_.-]*")
_WEB_URL = re.compile(r"https?://\S+", re.IGNORECASE)

_TAGS = frozenset({
    "section", "p", "span", "strong", "b", "em", "i", "u", "br", "ul", "ol", "li",
    "blockquote", "h1", "h2", "h3", "h4", "img", "table", "thead", "tbody", "tr", "th",
    "td", "sup", "hr", "a",
})
# Raw-text elements whose content is never article text.
_DROP_WITH_CONTENT = frozenset({"script", "style", "iframe", "object", "noscript", "template"})
# Classes our own templates put on paragraphs through attr_list (`{: .caption }`).
_TEMPLATE_CLASSES = frozenset({"caption", "meta"})

# Control characters: invisible, refused by WeChat, and STX/ETX are Markdown's
# own placeholder delimiters.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MD_SPECIAL = re.compile(r"[\\`*_{}\[\]]")
_ENTITY_START = re.compile(r"&(?=#?\w+;)")
_URL_BREAKERS = re.compile(r"[\s<>()\\\"']")
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])(?!https?://)", re.IGNORECASE)
_RELATIVE_LENGTH = re.compile(r"(-?\d*\.?\d+)r?em\b")
_IMG_TAG = re.compile(r"<img\s[^>]*>")
_CJK_PUNCTUATION = "。！？；：，、"
_ROOT_FONT_PX = 16


@dataclass(frozen=True)
class ArticleHtml:
    html: str
    references: tuple[str, ...]        # external URLs, numbered from 1 in order
    removed_images: tuple[str, ...] = ()  # image addresses WeChat would not show


@dataclass(frozen=True)
class RenderedArticle:
    markdown: str
    html: str
    title: str
    author: str
    digest: str
    references: tuple[str, ...]
    problems: tuple[str, ...]          # English sentences for the editor; empty when fine


# --- Jinja --------------------------------------------------------------------

def make_environment(settings: Settings) -> SandboxedEnvironment:
    """A sandboxed Jinja environment over ``settings.paths.templates``.

    Build it once and reuse it: it caches the compiled templates (and re-reads a
    template file an administrator changed).
    """
    return _build_environment(settings.paths.templates, settings.tz)


def _build_environment(templates: Path, tz: ZoneInfo) -> SandboxedEnvironment:
    # Autoescape everywhere, Markdown templates too: an escaped `<` or `&` in a
    # user field shows as text in Markdown as it does in HTML.
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(templates), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)
    env.filters["cn_date"] = lambda value: _cn_date(value.astimezone(tz))
    env.filters["cn_datetime"] = lambda value: _cn_datetime(value.astimezone(tz))
    env.globals["period"] = lambda start, end: _cn_period(start.astimezone(tz),
                                                          end.astimezone(tz))
    return env


# markdown_to_html/rerender get no environment: share one per templates folder.
# Jinja still re-reads a template whose file changed (auto_reload).
_shared_environment = functools.lru_cache(maxsize=8)(_build_environment)


def _cn_date(value: datetime) -> str:
    return f"{value.year}年{value.month}月{value.day}日"


def _cn_datetime(value: datetime) -> str:
    return f"{_cn_date(value)} {value.hour}:{value.minute:02d}"


def _cn_period(start: datetime, end: datetime) -> str:
    """News-style time of an activity: 2026年6月20日上午, 2026年6月20日至22日."""
    if start.date() == end.date():
        return _cn_date(start) + _part_of_day(start.hour)
    if (start.year, start.month) == (end.year, end.month):
        return f"{_cn_date(start)}至{end.day}日"
    if start.year == end.year:
        return f"{_cn_date(start)}至{end.month}月{end.day}日"
    return f"{_cn_date(start)}至{_cn_date(end)}"


def _part_of_day(hour: int) -> str:
    for limit, name in ((5, "凌晨"), (12, "上午"), (14, "中午"), (18, "下午")):
        if hour < limit:
            return name
    return "晚上"


def _md_text(value: str) -> Markup:
    """A one-line user field as Markdown text: no markup of its own survives."""
    text = " ".join(_CONTROL.sub("", value).split())
    text = _ENTITY_START.sub("&amp;", text).replace("<", "&lt;").replace(">", "&gt;")
    return Markup(_MD_SPECIAL.sub(r"\\\g<0>", text))


def _md_body(value: str) -> Markup:
    """The reporter's Markdown, with tag-like ``<`` shown as text.

    Raw HTML never reaches Markdown from a report: an unclosed ``<div>``,
    ``<script>`` or ``<plaintext>`` would swallow the rest of the article
    (photos, footer line). Autolinks such as ``<https://...>`` still work.
    """
    text = _CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n")).strip()
    return Markup(_TAG_START.sub("&lt;", _ENTITY_START.sub("&amp;", text)))


def _md_url(url: str) -> Markup:
    """An address Markdown keeps whole: no spaces, brackets or quotes left in it."""
    return Markup(_URL_BREAKERS.sub(lambda m: quote(m[0]), url.strip()))


def _md_link(link: str) -> Markup:
    """A publicity item: a web address as an autolink, anything else as text."""
    link = link.strip()
    if _WEB_URL.fullmatch(link):
        return Markup(f"<{_md_url(link)}>")
    return _md_text(link)


def _template_context(report: Report, kind: ActivityType, photo_names: Sequence[str]
                      ) -> dict[str, object]:
    return {
        "title": _md_text(report.title), "unit": _md_text(report.unit),
        "type_label": _md_text(kind.label), "activity_type": kind.key,
        "start": report.start, "end": report.end,
        "place": _md_text(report.place), "form": _md_text(report.form),
        "body": _md_body(report.body), "participants": report.participants,
        "photos": [_md_url(name) for name in photo_names],
        "links": [_md_link(link) for link in report.links if link.strip()],
        "contact": _md_text(report.contact),
        "extra": {key: _md_text(value) for key, value in report.extra.items()},
    }


def render_markdown(report: Report, photo_names: Sequence[str], env: jinja2.Environment,
                    settings: Settings) -> str:
    """The article Markdown from the activity type's template.

    Raises:
        RenderError: the activity type is unknown or its template is missing or broken.
    """
    kind = settings.activity_types.get(report.activity_type)
    if kind is None:
        raise RenderError(f"the activity type {report.activity_type!r} is not configured; "
                          "add it under [activity_types] in config.toml")
    return _render_template(env, kind.template, _template_context(report, kind, photo_names))


# Mistakes an administrator can make in a template's expressions ({{ 1 / 0 }},
# {{ participants + "人" }}); they are reported like Jinja's own errors.
_TEMPLATE_MISTAKES = (jinja2.TemplateError, TypeError, ValueError, ArithmeticError,
                      LookupError, AttributeError)


def _render_template(env: jinja2.Environment, name: str, context: dict[str, object]) -> str:
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"the template {exc.name} is missing from "
                          f"{', '.join(_search_path(env))}; "
                          "restore it from pipeline/skeleton/templates") from exc
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(f"the template {exc.name or name} has an error at line "
                          f"{exc.lineno}: {exc.message}; fix that line") from exc
    except _TEMPLATE_MISTAKES as exc:
        where = _failing_line(exc, env) or f"the template {name}"
        raise RenderError(f"{where} failed: {exc}; fix the template") from exc


def _search_path(env: jinja2.Environment) -> list[str]:
    loader = env.loader
    return list(loader.searchpath) if isinstance(loader, jinja2.FileSystemLoader) else []


def _failing_line(exc: BaseException, env: jinja2.Environment) -> str | None:
    # Jinja rewrites tracebacks so that template frames carry the file and line.
    folders = [Path(folder) for folder in _search_path(env)]
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        for folder in folders:
            if Path(frame.filename).is_relative_to(folder):
                name = Path(frame.filename).relative_to(folder).as_posix()
                return f"the template {name} at line {frame.lineno}"
    return None


# --- Markdown to HTML ---------------------------------------------------------

class _WeChatLinks(Treeprocessor):
    """Rewrites links and images the way WeChat can show them.

    External links keep their text plus a ``[n]`` marker and are listed as
    references; autolinks already show their address, so they become plain
    text. In-page anchors and other schemes lose the link, not the text.
    """

    def __init__(self, md: mdlib.Markdown) -> None:
        super().__init__(md)
        self.references: list[str] = []
        self.removed_images: list[str] = []

    def run(self, root: etree.Element) -> None:
        self.references, self.removed_images = [], []
        for element in list(root.iter()):
            if element.tag == "a":
                self._link(element)
            elif element.tag == "img":
                self._image(element)
            elif element.tag == "p":
                _drop_trailing_break(element)

    def _link(self, element: etree.Element) -> None:
        href = element.get("href", "")
        if _WECHAT_ARTICLE.match(href):
            return
        is_autolink = len(element) == 0 and element.text == href
        element.tag = "span"
        element.attrib.clear()
        if _WEB_URL.match(href) and not is_autolink:
            if href not in self.references:
                self.references.append(href)
            marker = etree.SubElement(element, "sup")
            marker.text = f"[{self.references.index(href) + 1}]"

    def _image(self, element: etree.Element) -> None:
        src = element.get("src", "")
        if _PHOTO.fullmatch(src) or _WECHAT_IMAGE.match(src):
            element.attrib.pop("title", None)
            return
        self.removed_images.append(src)
        element.tag = "span"
        element.attrib.clear()


def _drop_trailing_break(paragraph: etree.Element) -> None:
    # nl2br turns the newline before an attr_list line (`{: .caption }`) into a <br>.
    if len(paragraph) and paragraph[-1].tag == "br" and not (paragraph[-1].tail or "").strip():
        paragraph.remove(paragraph[-1])


def _url_attribute(tag: str, name: str, value: str) -> str | None:
    if name == "href":
        return value if _WECHAT_ARTICLE.match(value) else None
    if name == "src":
        return value if _PHOTO.fullmatch(value) or _WECHAT_IMAGE.match(value) else None
    return value


def _final_attribute(tag: str, name: str, value: str) -> str | None:
    if name == "style":
        return _wechat_style(value)
    return _url_attribute(tag, name, value)


def _wechat_style(style: str) -> str | None:
    """Drop declarations using CSS variables and turn em/rem lengths into px."""
    if "var(" not in style and "em" not in style:  # the usual case: nothing to do
        return style
    if "var(" in style:
        style = ";".join(d for d in style.split(";") if "var(" not in d)
    if "em" in style:
        style = _RELATIVE_LENGTH.sub(
            lambda m: f"{float(m[1]) * _ROOT_FONT_PX:g}px", style)
    return style.strip(" ;") or None


class _Converter:
    """Markdown instance, sanitisers and inliner, built once and reused."""

    def __init__(self) -> None:
        self.markdown = mdlib.Markdown(
            extensions=["attr_list", "tables", "sane_lists", "nl2br"], output_format="html")
        self.links = _WeChatLinks(self.markdown)
        # After attr_list (8), before unescape (0): sees final links and classes.
        self.markdown.treeprocessors.register(self.links, "wechat_links", 5)
        self.lock = threading.Lock()
        self.content = nh3.Cleaner(
            tags=_TAGS, clean_content_tags=_DROP_WITH_CONTENT,
            attributes={"img": {"src", "alt"}, "a": {"href"}, "ol": {"start"},
                        "th": {"style"}, "td": {"style"}},
            allowed_classes={"p": _TEMPLATE_CLASSES},
            filter_style_properties={"text-align"}, attribute_filter=_url_attribute,
            url_schemes={"http", "https"}, link_rel=None)
        self.final = nh3.Cleaner(
            tags=_TAGS, clean_content_tags=_DROP_WITH_CONTENT,
            attributes={"*": {"style"}, "img": {"src", "alt"}, "a": {"href"}, "ol": {"start"}},
            attribute_filter=_final_attribute, url_schemes={"http", "https"}, link_rel=None)
        self.inliner = css_inline.CSSInliner(
            keep_style_tags=False, keep_link_tags=False, load_remote_stylesheets=False,
            resolve_css_variables=True, minify_css=True)  # WeChat counts every character

    def to_html(self, text: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
        # One Markdown instance is not safe to share between threads.
        with self.lock:
            self.markdown.reset()
            html = self.markdown.convert(_CONTROL.sub("", text))
            return html, tuple(self.links.references), tuple(self.links.removed_images)


@functools.cache
def _converter() -> _Converter:
    return _Converter()


def markdown_to_html(markdown: str, settings: Settings) -> ArticleHtml:
    """Article Markdown to WeChat content HTML (inline styles only).

    Raises:
        RenderError: the article frame template is missing or broken.
    """
    env = _shared_environment(settings.paths.templates, settings.tz)
    return _article_html(markdown, env)


def _article_html(markdown: str, env: jinja2.Environment) -> ArticleHtml:
    converter = _converter()
    body, references, removed = converter.to_html(markdown)
    content = Markup(converter.content.clean(body))
    framed = _render_template(env, FRAME_TEMPLATE,
                              {"content": content, "references": references})
    try:
        inlined = converter.inliner.inline(framed)
    except css_inline.InlineError as exc:
        raise RenderError(f"the styles in {FRAME_TEMPLATE} or article.css cannot be "
                          f"applied: {exc}; fix the CSS") from exc
    html = _drop_unlinked_images(converter.final.clean(inlined)).strip()
    return ArticleHtml(html, references, removed)


def _drop_unlinked_images(html: str) -> str:
    # The sanitiser can only drop a forbidden src; an <img> without one must go too.
    # nh3 escapes '>' inside attribute values, so the simple pattern is exact here.
    if "<img" not in html:
        return html
    return _IMG_TAG.sub(lambda m: m[0] if ' src="' in m[0] else "", html)


# --- The article --------------------------------------------------------------

def render_article(report: Report, photo_names: Sequence[str], env: jinja2.Environment,
                   settings: Settings) -> RenderedArticle:
    """A report as an article draft; WeChat limit violations go to ``problems``.

    Raises:
        RenderError: a template is missing or broken.
    """
    markdown = render_markdown(report, photo_names, env, settings)
    article = _article_html(markdown, env)
    author = settings.account.author or report.unit
    digest = make_digest(report.body, settings.limits.digest_chars)
    return _finish(markdown, article, " ".join(report.title.split()), author, digest,
                   settings.limits)


def rerender(markdown: str, title: str, author: str, digest: str, settings: Settings
             ) -> RenderedArticle:
    """The article again after an editor changed its Markdown (no activity template).

    Raises:
        RenderError: the article frame template is missing or broken.
    """
    return _finish(markdown, markdown_to_html(markdown, settings), title, author, digest,
                   settings.limits)


def _finish(markdown: str, article: ArticleHtml, title: str, author: str, digest: str,
            limits: Limits) -> RenderedArticle:
    problems = check_limits(title, author, digest, article.html, limits)
    problems += [f"an image at {src!r} was removed: WeChat shows only uploaded images, so "
                 "attach it as a photo of the report" for src in article.removed_images]
    return RenderedArticle(markdown=markdown, html=article.html, title=title, author=author,
                           digest=digest, references=article.references,
                           problems=tuple(problems))


def make_digest(body: str, limit: int) -> str:
    """Plain text of a Markdown body, whitespace collapsed, at most ``limit`` characters."""
    text = _plain_text(body)
    return text if len(text) <= limit else text[:limit - 1] + "…"


_MARKDOWN_SYNTAX = [
    (re.compile(r"!\[[^\]]*\]\([^)]*\)"), ""),                 # images
    (re.compile(r"\[([^\]]*)\]\([^)]*\)"), r"\1"),             # links keep their text
    (re.compile(r"<(https?://[^>\s]+)>"), r"\1"),              # autolinks
    (re.compile(r"</?[A-Za-z][^>]*>|\{:[^}]*\}"), ""),         # raw tags, attr lists
    (re.compile(r"^[ \t]*(?:#{1,6}[ \t]+|>[ \t]?|[-+*][ \t]+|\d+[.)][ \t]+)", re.M), ""),
]
_BACKSLASH_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>])")
_UNDERSCORE_EMPHASIS = re.compile(r"\b_+\B|\B_+\b")  # at a word's edge, not in file_name


def _plain_text(markdown: str) -> str:
    text = markdown
    for pattern, replacement in _MARKDOWN_SYNTAX:
        text = pattern.sub(replacement, text)
    # Cheap checks first: this runs for every draft (see bench/bench_render.py).
    if "\\" in text:
        text = _BACKSLASH_ESCAPE.sub(r"\1", text)
    if "_" in text:
        text = _UNDERSCORE_EMPHASIS.sub("", text)
    for mark in "*`~":  # str.replace beats translate/regex on Chinese text
        text = text.replace(mark, "")
    text = " ".join(htmllib.unescape(text).split())
    # Chinese punctuation already separates; a space after it looks like a typo.
    for mark in _CJK_PUNCTUATION:
        text = text.replace(mark + " ", mark)
    return text


def check_limits(title: str, author: str, digest: str, html: str, limits: Limits) -> list[str]:
    """Every WeChat length limit the article breaks, one English sentence each."""
    problems: list[str] = []
    if not title.strip():
        problems.append("title is empty; WeChat requires a title")
    for field, value, limit in (("title", title, limits.title_chars),
                                ("author", author, limits.author_chars),
                                ("digest", digest, limits.digest_chars)):
        if len(value) > limit:
            problems.append(f"{field} is {len(value)} characters; WeChat allows at most "
                            f"{limit} (counted as Unicode characters)")
    if len(html) >= limits.content_chars:
        problems.append(f"content is {len(html)} characters; WeChat requires fewer than "
                        f"{limits.content_chars} (counted as Unicode characters, HTML included)")
    size = len(html.encode("utf-8"))
    if size >= limits.content_bytes:
        problems.append(f"content is {size} bytes; WeChat requires fewer than "
                        f"{limits.content_bytes} (counted as bytes of UTF-8)")
    return problems
