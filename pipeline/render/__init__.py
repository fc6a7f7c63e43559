"""Render stage: a ``Report`` becomes article Markdown, then WeChat-ready HTML.

Inputs are a report, the names its photos were copied under and the settings;
outputs are plain values (``RenderedArticle``). Pure: the only I/O is Jinja's
loader reading templates. Writing drafts to disk belongs to the caller.

HTML steps, in order (each relies on the one before):
Markdown (+ link/image rewriting) -> nh3 sanitising -> article frame ->
css-inline -> final nh3 pass (no class/id/style tags, checked URLs, px units).
"""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import jinja2

from ..config import Limits, Settings
from ..domain import Report
from ..messages import Coded
from .html import ArticleHtml, article_html, markdown_to_html
from .patterns import CJK_PUNCTUATION, FRAME_TEMPLATE
from .templates import compose_markdown, make_environment, md_body, render_markdown

__all__ = ["FRAME_TEMPLATE", "ArticleHtml", "RenderedArticle", "check_limits", "make_digest",
           "make_environment", "markdown_to_html", "render_article", "render_markdown",
           "rerender"]


@dataclass(frozen=True)
class RenderedArticle:
    markdown: str
    html: str
    title: str
    author: str
    digest: str
    references: tuple[str, ...]
    problems: tuple[str, ...]          # English sentences for the editor; empty when fine
    notes: tuple[str, ...] = ()        # how the template wrote it (a lead left out, and why)


def render_article(report: Report, photo_names: Sequence[str], env: jinja2.Environment,
                   settings: Settings) -> RenderedArticle:
    """A report as an article draft; WeChat limit violations go to ``problems``.

    Raises:
        RenderError: a template is missing or broken.
    """
    markdown, notes = compose_markdown(report, photo_names, env, settings)
    article = article_html(markdown, env)
    author = settings.account.author or report.unit
    # The body as the article shows it: tag-like text stays text (see _md_body), so the
    # summary says the same words as the article.
    digest = make_digest(md_body(report.body), settings.limits.digest_chars)
    return _finish(markdown, article, " ".join(report.title.split()), author, digest,
                   settings.limits, notes)


def rerender(markdown: str, title: str, author: str, digest: str, settings: Settings
             ) -> RenderedArticle:
    """The article again after an editor changed its Markdown (no activity template).

    Raises:
        RenderError: the article frame template is missing or broken.
    """
    return _finish(markdown, markdown_to_html(markdown, settings), title, author, digest,
                   settings.limits)


def _finish(markdown: str, article: ArticleHtml, title: str, author: str, digest: str,
            limits: Limits, notes: Sequence[str] = ()) -> RenderedArticle:
    problems = check_limits(title, author, digest, article.html, limits)
    return RenderedArticle(markdown=markdown, html=article.html, title=title, author=author,
                           digest=digest, references=article.references,
                           problems=tuple(problems), notes=tuple(notes))


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
    for mark in CJK_PUNCTUATION:
        text = text.replace(mark + " ", mark)
    return text


def check_limits(title: str, author: str, digest: str, html: str, limits: Limits) -> list[str]:
    """Every WeChat length limit the article breaks, one coded message each (``Coded``:
    the English sentence that keeps its code for the Chinese pages)."""
    problems: list[str] = []
    if not title.strip():
        problems.append(Coded("wechat.title_empty"))
    for field, value, limit in (("title", title, limits.title_chars),
                                ("author", author, limits.author_chars),
                                ("digest", digest, limits.digest_chars)):
        if len(value) > limit:
            problems.append(Coded("wechat.too_long", field=field, length=len(value),
                                  limit=limit))
    if len(html) >= limits.content_chars:
        problems.append(Coded("wechat.content_chars", length=len(html),
                              limit=limits.content_chars))
    size = len(html.encode("utf-8"))
    if size >= limits.content_bytes:
        problems.append(Coded("wechat.content_bytes", size=size, limit=limits.content_bytes))
    return problems
