"""What WeChat keeps and the patterns the render stage looks for (shared constants)."""

from __future__ import annotations

import re

FRAME_TEMPLATE = "article_frame.html.j2"

# What WeChat keeps: real anchors only to published account articles, images
# only from its own CDN or our photos/ folder (uploaded and rewritten at publish).
WECHAT_ARTICLE = re.compile(r"https?://mp\.weixin\.qq\.com/", re.IGNORECASE)
WECHAT_IMAGE = re.compile(r"https?://mmbiz\.qpic\.cn/", re.IGNORECASE)
PHOTO = re.compile(r"photos/[A-Za-z0-9_-][A-Za-z0-9_.-]*")
WEB_URL = re.compile(r"https?://\S+", re.IGNORECASE)

TAGS = frozenset({
    "section", "p", "span", "strong", "b", "em", "i", "u", "br", "ul", "ol", "li",
    "blockquote", "h1", "h2", "h3", "h4", "img", "table", "thead", "tbody", "tr", "th",
    "td", "sup", "hr", "a",
})
# Raw-text elements whose content is never article text.
DROP_WITH_CONTENT = frozenset({"script", "style", "iframe", "object", "noscript", "template"})
# Classes our own templates put on paragraphs through attr_list (`{: .caption }`).
TEMPLATE_CLASSES = frozenset({"caption", "meta"})

# Control characters: invisible, refused by WeChat, and STX/ETX are Markdown's
# own placeholder delimiters.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MD_SPECIAL = re.compile(r"[\\`*_{}\[\]]")
ENTITY_START = re.compile(r"&(?=#?\w+;)")
URL_BREAKERS = re.compile(r"[\s<>()\\\"']")
TAG_START = re.compile(r"<(?=[A-Za-z/!?])(?!https?://)", re.IGNORECASE)
RELATIVE_LENGTH = re.compile(r"(-?\d*\.?\d+)r?em\b")
IMG_TAG = re.compile(r"<img\s[^>]*>")
CJK_PUNCTUATION = "。！？；：，、"
ROOT_FONT_PX = 16
