"""WeChat's message pushes about publishing (PUBLISHJOBFINISH, MASSSENDJOBFINISH).

WeChat POSTs XML to the account's server URL, signed with the server token
(plain mode: sha1 of the sorted token, timestamp and nonce). The web layer checks
the signature, parses the event here and stores it with
``pipeline.publish.wechat.record_event``; the reconciler matches it to our job.
Duplicates, late and out-of-order deliveries are harmless: the inbox is keyed
by (event, publish_id/msg_id, status).
"""

from __future__ import annotations

import hashlib
import hmac
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

from ..errors import PublishError

MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class PublishEvent:
    event: str               # PUBLISHJOBFINISH or MASSSENDJOBFINISH
    ref: str                 # publish_id or msg_id
    status: str              # publish_status (0-6) or the mass send Status text
    article_id: str | None
    urls: list[str]


def signature_ok(token: str, signature: str, timestamp: str, nonce: str) -> bool:
    expected = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
    return hmac.compare_digest(expected, signature)


def parse_event(body: bytes) -> PublishEvent | None:
    """The publishing event in a push, or None for any other kind of message.

    Raises:
        PublishError: when the body is not a well-formed WeChat XML message.
    """
    if len(body) > MAX_BYTES or b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise PublishError.coded("wechat.push_too_large")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise PublishError.coded("wechat.push_bad_xml", detail=str(exc)) from exc
    event = (root.findtext("Event") or "").strip()
    if event == "PUBLISHJOBFINISH":
        info = root.find("PublishEventInfo")
        if info is None:
            raise PublishError.coded("wechat.push_no_info")
        items = sorted(info.iter("item"), key=lambda i: int(i.findtext("idx") or 0))
        return PublishEvent(event, (info.findtext("publish_id") or "").strip(),
                            (info.findtext("publish_status") or "").strip(),
                            (info.findtext("article_id") or "").strip() or None,
                            [(i.findtext("article_url") or "").strip() for i in items])
    if event == "MASSSENDJOBFINISH":
        status = (root.findtext("Status") or "").strip()
        return PublishEvent(event, (root.findtext("MsgID") or "").strip(),
                            "SEND_SUCCESS" if status == "send success" else status, None,
                            [(i.findtext("ArticleUrl") or "").strip()
                             for i in root.iter("item")])
    return None
