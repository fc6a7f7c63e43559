"""How the desk is served: uvicorn with header and keep-alive timeouts, forwarded
headers only from trusted proxies, and an access log that never shows a secret.

uvicorn has a keep-alive timeout but none for a request's headers: a client that
sends a header line now and then holds its connection for ever (slowloris). The
protocol below closes a connection whose request headers are not complete within
``[web] header_timeout`` seconds of its opening or of the previous answer.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..config import WebSettings

log = logging.getLogger(__name__)

# /r/<token>… (a unit's reporter link, also under /api/) and ?token=… (the calendar feed)
_SECRETS = re.compile(r"(/r/)[^/?\s\"]+|((?:\?|&)token=)[^&\s\"]+")


def mask_secrets(text: str) -> str:
    """The text with every reporter link token and feed token replaced by ``***``."""
    return _SECRETS.sub(lambda m: (m[1] or m[2]) + "***", text)


class MaskSecrets(logging.Filter):
    """Masks the tokens in uvicorn's access lines (path is an argument of the record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(mask_secrets(a) if isinstance(a, str) else a
                                for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = mask_secrets(record.msg)
        return True


class HeaderTimeoutProtocol(H11Protocol):
    """h11 with a deadline for the request headers (see the module's docstring)."""

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def _arm(self) -> None:
        self.loop.call_later(self.header_timeout, self._expire, self.cycle)

    def _expire(self, cycle: Any) -> None:
        # still no new request since the timer was set, and nothing is being answered
        if (self.cycle is cycle and not self.transport.is_closing()
                and (cycle is None or cycle.response_complete)):
            self.transport.close()


def protocol_for(web: WebSettings) -> type[HeaderTimeoutProtocol]:
    return type("Protocol", (HeaderTimeoutProtocol,), {"header_timeout": web.header_timeout})


def install_log_mask() -> None:
    logging.getLogger("uvicorn.access").addFilter(MaskSecrets())


def server_config(app: Any, web: WebSettings, host: str, port: int) -> uvicorn.Config:
    """uvicorn's settings: our protocol and timeouts; forwarded headers are handled by
    the app itself (``trusted_proxies``), so uvicorn's own handling is off."""
    install_log_mask()
    return uvicorn.Config(app, host=host, port=port, log_level="info", proxy_headers=False,
                          server_header=False, http=protocol_for(web),
                          timeout_keep_alive=web.keepalive_timeout)
