"""The HTML side: article Markdown to WeChat content HTML with inline styles only.

Markdown (+ link/image rewriting) -> nh3 sanitising -> article frame ->
css-inline -> final nh3 pass (no class/id/style tags, checked URLs, px units).
"""

from __future__ import annotations

import functools
import re
import threading
import xml.etree.ElementTree as etree
from dataclasses import dataclass

import css_inline
import jinja2
import markdown as mdlib
import nh3
from markdown.treeprocessors import InlineProcessor, Treeprocessor
from markdown.util import AtomicString
from markupsafe import Markup

from ..config import Settings
from ..errors import RenderError
from .patterns import (
    CONTROL,
    DROP_WITH_CONTENT,
    FRAME_TEMPLATE,
    IMG_TAG,
    PHOTO,
    RELATIVE_LENGTH,
    ROOT_FONT_PX,
    TAGS,
    TEMPLATE_CLASSES,
    WEB_URL,
    WECHAT_ARTICLE,
    WECHAT_IMAGE,
)
from .templates import render_template, shared_environment


@dataclass(frozen=True)
class ArticleHtml:
    html: str
    references: tuple[str, ...]        # external URLs, numbered from 1 in order
    removed_images: tuple[str, ...] = ()  # image addresses WeChat would not show



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
        _drop_empty_paragraphs(root)

    def _link(self, element: etree.Element) -> None:
        href = element.get("href", "")
        if WECHAT_ARTICLE.match(href):
            return
        is_autolink = len(element) == 0 and element.text == href
        element.tag = "span"
        element.attrib.clear()
        if WEB_URL.match(href) and not is_autolink:
            if href not in self.references:
                self.references.append(href)
            marker = etree.SubElement(element, "sup")
            marker.text = f"[{self.references.index(href) + 1}]"

    def _image(self, element: etree.Element) -> None:
        src = element.get("src", "")
        if PHOTO.fullmatch(src) or WECHAT_IMAGE.match(src):
            element.attrib.pop("title", None)
            return
        self.removed_images.append(src)
        alt = element.get("alt", "").strip()
        element.tag = "span"
        element.attrib.clear()
        if WEB_URL.match(src):
            # WeChat shows no image from elsewhere: name it and list its address as a
            # numbered reference, like an external link, so nothing the reporter gave is lost.
            if src not in self.references:
                self.references.append(src)
            element.text = f"（图片：{alt}）" if alt else "（图片）"
            marker = etree.SubElement(element, "sup")
            marker.text = f"[{self.references.index(src) + 1}]"
        elif alt:
            element.text = alt


def _drop_empty_paragraphs(root: etree.Element) -> None:
    """A paragraph that held only an image WeChat cannot show leaves nothing behind."""
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag == "p" and not "".join(child.itertext()).strip() and not any(
                    e.tag in ("img", "br", "hr") for e in child.iter()):
                if (child.tail or "").strip():
                    continue
                parent.remove(child)


def _drop_trailing_break(paragraph: etree.Element) -> None:
    # nl2br turns the newline before an attr_list line (`{: .caption }`) into a <br>.
    if len(paragraph) and paragraph[-1].tag == "br" and not (paragraph[-1].tail or "").strip():
        paragraph.remove(paragraph[-1])


def _url_attribute(tag: str, name: str, value: str) -> str | None:
    if name == "href":
        return value if WECHAT_ARTICLE.match(value) else None
    if name == "src":
        return value if PHOTO.fullmatch(value) or WECHAT_IMAGE.match(value) else None
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
        style = RELATIVE_LENGTH.sub(
            lambda m: f"{float(m[1]) * ROOT_FONT_PX:g}px", style)
    return style.strip(" ;") or None


# What each of Python-Markdown's inline patterns cannot match without (its regular
# expression begins with it, or needs it). A pattern not named here is always tried.
_TRIGGERS: dict[str, tuple[str, ...]] = {
    "backtick": ("`",), "escape": ("\\",), "reference": ("[",), "link": ("[",),
    "image_link": ("![",), "image_reference": ("![",), "short_reference": ("[",),
    "short_image_ref": ("![",), "autolink": ("<",), "automail": ("<",),
    "linebreak": ("  \n",), "html": ("<",), "entity": ("&",), "em_strong": ("*", "_"),
    "nl": ("\n",)}


class _QuickInline(InlineProcessor):
    """Python-Markdown's inline stage, minus the regular-expression searches that cannot
    match: it tries every pattern on every piece of text, and in Chinese prose most
    pieces hold none of the characters the patterns need (a third of all conversion
    time; the same HTML, tests/test_render.py compares both). It hooks the library's
    private loop over the patterns (``__handleInline``) and calls its ``__applyPattern``
    for the patterns that can match; a release without them gets the plain stage
    (``quick_inline``), and a pattern not in ``_TRIGGERS`` is always tried."""

    def __init__(self, md: mdlib.Markdown) -> None:
        super().__init__(md)
        patterns = md.inlinePatterns
        # Held, so that their ids stay theirs while the ids name them here.
        self.known = [(patterns[name], needs) for name, needs in _TRIGGERS.items()
                      if name in patterns]
        self.named = {id(pattern): needs for pattern, needs in self.known}
        marks = sorted({t[0] for _, needs in self.known for t in needs})
        self.marks = re.compile("[" + re.escape("".join(marks)) + "]")
        self.apply = super()._InlineProcessor__applyPattern  # type: ignore[misc]
        self._index()

    def _index(self) -> None:
        # The patterns as a list, and what each cannot match without (None: it is always
        # tried), for each document: the registry builds a list on every len() and finds
        # items by name, hundreds of times per document; a document is converted with
        # the patterns registered when it starts.
        self.patterns: list[object] = list(self.inlinePatterns)
        self.needs = [self.named.get(id(pattern)) for pattern in self.patterns]
        # Text with none of the first characters of any trigger skips every pattern
        # (unless a pattern without triggers was registered).
        self.any_mark = self.marks if None not in self.needs else None

    def run(self, tree: etree.Element, ancestors: list[str] | None = None) -> etree.Element:
        self._index()
        return super().run(tree, ancestors)

    def _InlineProcessor__handleInline(self, data: str, patternIndex: int = 0) -> str:
        if isinstance(data, AtomicString):
            return data  # as the library's loop does
        if patternIndex == 0 and self.any_mark is not None and not self.any_mark.search(data):
            return data  # what trying every pattern in turn would return
        patterns, needs = self.patterns, self.needs
        start, count = 0, len(patterns)
        while patternIndex < count:
            wanted = needs[patternIndex]
            if wanted is not None:
                for mark in wanted:
                    if data.find(mark, start) >= 0:
                        break
                else:  # it cannot match: the library would find none and start the next
                    patternIndex, start = patternIndex + 1, 0  # pattern from the beginning
                    continue
            data, matched, start = self.apply(patterns[patternIndex], data, patternIndex,
                                              start)
            if not matched:
                patternIndex += 1
        return data


def quick_inline(md: mdlib.Markdown) -> None:
    """Put ``_QuickInline`` in place of the inline stage, if this Markdown has the hook."""
    if all(hasattr(InlineProcessor, f"_InlineProcessor__{name}")
           for name in ("applyPattern", "handleInline")):
        md.treeprocessors.register(_QuickInline(md), "inline", 20)


class _Converter:
    """Markdown instance, sanitisers and inliner, built once and reused."""

    def __init__(self) -> None:
        self.markdown = mdlib.Markdown(
            extensions=["attr_list", "tables", "sane_lists", "nl2br"], output_format="html")
        quick_inline(self.markdown)
        self.links = _WeChatLinks(self.markdown)
        # After attr_list (8), before unescape (0): sees final links and classes.
        self.markdown.treeprocessors.register(self.links, "wechat_links", 5)
        self.lock = threading.Lock()
        self.content = nh3.Cleaner(
            tags=TAGS, clean_content_tags=DROP_WITH_CONTENT,
            attributes={"img": {"src", "alt"}, "a": {"href"}, "ol": {"start"},
                        "th": {"style"}, "td": {"style"}},
            allowed_classes={"p": TEMPLATE_CLASSES},
            filter_style_properties={"text-align"}, attribute_filter=_url_attribute,
            url_schemes={"http", "https"}, link_rel=None)
        self.final = nh3.Cleaner(
            tags=TAGS, clean_content_tags=DROP_WITH_CONTENT,
            attributes={"*": {"style"}, "img": {"src", "alt"}, "a": {"href"}, "ol": {"start"}},
            attribute_filter=_final_attribute, url_schemes={"http", "https"}, link_rel=None)
        self.inliner = css_inline.CSSInliner(
            keep_style_tags=False, keep_link_tags=False, load_remote_stylesheets=False,
            resolve_css_variables=True, minify_css=True)  # WeChat counts every character

    def to_html(self, text: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
        # One Markdown instance is not safe to share between threads.
        with self.lock:
            self.markdown.reset()
            html = self.markdown.convert(CONTROL.sub("", text))
            return html, tuple(self.links.references), tuple(self.links.removed_images)


@functools.cache
def _converter() -> _Converter:
    return _Converter()


def markdown_to_html(markdown: str, settings: Settings) -> ArticleHtml:
    """Article Markdown to WeChat content HTML (inline styles only).

    Raises:
        RenderError: the article frame template is missing or broken.
    """
    env = shared_environment(settings.paths.templates, settings.tz)
    return article_html(markdown, env)


def article_html(markdown: str, env: jinja2.Environment) -> ArticleHtml:
    converter = _converter()
    body, references, removed = converter.to_html(markdown)
    content = Markup(converter.content.clean(body))
    framed = render_template(env, FRAME_TEMPLATE,
                              {"content": content, "references": references})
    try:
        inlined = converter.inliner.inline(framed)
    except css_inline.InlineError as exc:
        raise RenderError.coded("template.css", template=FRAME_TEMPLATE,
                                detail=str(exc)) from exc
    html = _drop_unlinked_images(converter.final.clean(inlined)).strip()
    return ArticleHtml(html, references, removed)


def _drop_unlinked_images(html: str) -> str:
    # The sanitiser can only drop a forbidden src; an <img> without one must go too.
    # nh3 escapes '>' inside attribute values, so the simple pattern is exact here.
    if "<img" not in html:
        return html
    return IMG_TAG.sub(lambda m: m[0] if ' src="' in m[0] else "", html)
