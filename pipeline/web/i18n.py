"""Chinese words for the web pages: status, action and proofreading labels.

Errors and messages are not translated here: every one is a code of the vocabulary
(``pipeline.messages``) whose Chinese text comes from the catalogue.
"""

from __future__ import annotations

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
