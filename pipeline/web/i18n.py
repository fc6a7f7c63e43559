"""Chinese words for the web pages: status labels and translated stage messages.

The stages speak English sentences (for the CLI and the logs); every web page
is Simplified Chinese. The translations below recognise the stages' messages
by their shape and keep the numbers they carry; a message that no pattern
knows is shown behind a Chinese lead-in rather than dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .. import lifecycle
from ..domain import DeadlineState
from ..lifecycle import DRAFT_LABELS
from ..messages import FINDING_KINDS_ZH

STATUS_LABELS: dict[str, str] = DRAFT_LABELS
ACTION_LABELS: dict[str, str] = {**lifecycle.ACTION_LABELS,
                                 "confirm_findings": "确认校对提示",
                                 "dismiss_finding": "忽略校对提示"}

PUSH_STATES: dict[str, str] = {
    "done": "已推送", "running": "推送中", "missed": "错过（未推送）", "empty": "无可推送稿件",
}

FIELD_LABELS: dict[str, str] = {
    "activity_type": "活动类型", "title": "标题", "start": "开始时间", "end": "结束时间",
    "place": "活动地点", "form": "活动方式", "participants": "参与人数", "body": "活动内容",
    "links": "宣传报道", "photos": "图片", "contact": "联系人", "unit": "单位", "": "报告",
}


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


def state_label(state: str) -> str:
    try:
        return DeadlineState(state).label
    except ValueError:
        return state


Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


def _rule(pattern: str, render: Callable[[re.Match[str]], str]) -> Rule:
    return re.compile(pattern, re.IGNORECASE | re.DOTALL), render


_WORDS = {"title": "标题", "author": "作者", "digest": "摘要"}

# Proofreading findings (pipeline.proofread): labels by kind and rule.
FINDING_KINDS: dict[str, str] = FINDING_KINDS_ZH
FINDING_STATES: dict[str, str] = {"open": "待处理", "applied": "已采用建议",
                                  "dismissed": "已忽略", "confirmed": "已确认"}
_FINDING_RULES: dict[str, str] = {
    "list": "", "delete": "建议删去",
    "glossary": "与规范名称不一致",
    "mobile": "手机号码不得发布", "landline": "电话号码不得发布",
    "id_number": "身份证号码不得发布", "plate": "车牌号码不得发布",
    "protected_name": "涉毒人员、戒毒人员及未成年人不得使用真实姓名，应使用“姓+某”",
    "halfwidth": "中文里用了半角标点", "unpaired": "引号或括号不成对",
    "title_length": "标题超过字数上限",
}


def finding_message(finding: object) -> str:
    """A proofreading finding in Chinese: what is wrong, and what to write instead."""
    kind, rule = getattr(finding, "kind", ""), getattr(finding, "rule", "")
    text, suggestion = getattr(finding, "text", ""), getattr(finding, "suggestion", "")
    detail = getattr(finding, "detail", "")
    parts = [f"{FINDING_KINDS.get(kind, kind)}：“{text}”"]
    if _FINDING_RULES.get(rule):
        parts.append(_FINDING_RULES[rule])
    if suggestion:
        parts.append(f"建议改为“{suggestion}”")
    if detail:
        parts.append(detail)
    return "，".join(parts) + "。"

# WeChat rule problems (pipeline.render.check_limits and friends).
_PROBLEM_RULES: tuple[Rule, ...] = (
    _rule(r"title is empty", lambda m: "标题为空：微信要求文章有标题"),
    _rule(r"^(title|author|digest) is (\d+) characters; WeChat allows at most (\d+)",
          lambda m: f"{_WORDS[m[1].lower()]}有 {m[2]} 个字，微信最多允许 {m[3]} 个字"),
    _rule(r"content is (\d+) characters; WeChat requires fewer than (\d+)",
          lambda m: f"正文（含排版代码）有 {m[1]} 个字符，微信要求少于 {m[2]} 个"),
    _rule(r"content is (\d+) bytes; WeChat requires fewer than (\d+)",
          lambda m: f"正文有 {m[1]} 字节，微信要求少于 {m[2]} 字节"),
    _rule(r"the image at (.+?) is not shown",
          lambda m: f"正文中的外部图片 {m[1]} 不会显示：微信只显示上传的图片，文中已改为"
                    "编号参考并列出其地址；如需显示，请作为报告照片上传"),
    _rule(r"an image at (.+?) was removed",
          lambda m: f"正文中的外部图片 {m[1]} 已删除：微信只显示上传的图片，请作为报告照片上传"),
)


# How the template wrote the article (pipeline.render.templates.lead_note).
_NOTE_RULES: tuple[Rule, ...] = (
    _rule(r"lead sentence was left out: .* the date \((.+?)\) and the place \((.+?)\)",
          lambda m: f"未写导语：报送正文第一句已写明时间（{m[1]}）和地点（{m[2]}），"
                    "避免重复。如需导语，请在正文中补写。"),
)


def _translate(message: str, rules: tuple[Rule, ...], lead: str) -> str:
    for pattern, render in rules:
        found = pattern.search(message)
        if found:
            return render(found)
    return f"{lead}（{message}）"


def problem_message(message: str) -> str:
    """A WeChat rule violation in Chinese."""
    return _translate(message, _PROBLEM_RULES, "不符合微信要求")


def render_note(message: str) -> str:
    """A note on how the article was written, in Chinese."""
    return _translate(message, _NOTE_RULES, "说明")
