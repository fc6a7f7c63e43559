"""The SMTP edge: build an ``EmailMessage`` and hand it to a server with smtplib.

``SmtpMailer`` opens one connection lazily and reuses it for a batch. Every
smtplib, socket and ssl error is translated here into ``NotifyError``:
``permanent`` for 5xx replies and refused or malformed addresses (retrying
cannot help), not permanent for refused connections, timeouts and 4xx replies.
Errors while setting up the session (connect, TLS, login) are
``SmtpSessionError``: they say nothing about the message itself.

The password is read from the environment variable named by
``smtp.password_env`` at login and never logged or stored.
"""

from __future__ import annotations

import hashlib
import logging
import os
import smtplib
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from types import TracebackType
from typing import TypeVar

from ..config import EMAIL_RE, SmtpSettings
from ..errors import NotifyError
from ..fence import fence

log = logging.getLogger(__name__)

# A send function: delivers one message, returns the recipients refused (address -> reply).
Send = Callable[[EmailMessage], Mapping[str, str]]


class SmtpSessionError(NotifyError):
    """The SMTP session could not be set up (connect, TLS, login): not the message's fault."""


E = TypeVar("E", bound=NotifyError)


def _final(error: E, permanent: bool = True) -> E:
    """``error`` marked permanent (a 5xx answer, a setting to change): do not retry."""
    error.permanent = permanent
    return error


def build_message(*, sender: str, recipients: Sequence[str], subject: str, text: str,
                  html: str, now: datetime, key: str = "") -> EmailMessage:
    """A UTF-8 message with a plain-text body and an HTML alternative.

    ``key`` makes the Message-ID stable, so a copy re-sent after a crash carries
    the same id and mail clients can fold the two together.
    """
    message = EmailMessage()
    message["Subject"] = subject          # encoded as RFC 2047 when flattened
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = _message_id(sender, key or f"{subject}{now.isoformat()}")
    message.set_content(text, charset="utf-8")
    if html:
        message.add_alternative(html, subtype="html", charset="utf-8")
    return message


def _message_id(sender: str, key: str) -> str:
    address = getaddresses([sender])[0][1] or "pipeline@localhost"
    domain = address.rpartition("@")[2] or "localhost"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
    return f"<{digest}.pipeline@{domain}>"


def bad_addresses(recipients: Sequence[str]) -> list[str]:
    return [r for r in recipients if not EMAIL_RE.match(r)]


class SmtpMailer:
    """One SMTP connection per batch, opened on the first send.

    Raises (from ``send``):
        SmtpSessionError: the server could not be reached, TLS or login failed.
        NotifyError: the server refused this message (``permanent`` for 5xx).
    """

    def __init__(self, smtp: SmtpSettings, *, environ: Mapping[str, str] | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.smtp = smtp
        self.environ = os.environ if environ is None else environ
        self.ssl_context = ssl_context
        self._client: smtplib.SMTP | None = None

    @property
    def where(self) -> str:
        return f"{self.smtp.host}:{self.smtp.port}"

    def __enter__(self) -> SmtpMailer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def send(self, message: EmailMessage) -> dict[str, str]:
        """Send one message; returns the recipients the server refused (others got it)."""
        recipients = [a for _, a in getaddresses(message.get_all("To", []))]
        bad = bad_addresses(recipients)
        if bad:
            raise _final(NotifyError.coded("smtp.bad_address", addresses=bad))
        fence()  # a scheduler that lost its lease stops before sending
        client = self._connect()
        try:
            refused = client.send_message(message, to_addrs=recipients)
        except (smtplib.SMTPException, OSError) as exc:
            self.close()  # the connection state is unknown; the next send reconnects
            raise _message_error(exc, self.where) from exc
        return {addr: _reply(code, text) for addr, (code, text) in refused.items()}

    def check(self) -> None:
        """Connect, secure and log in without sending anything (for ``mail test``)."""
        self._connect()

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()

    def _connect(self) -> smtplib.SMTP:
        if self._client is None:
            try:
                self._client = self._open()
            except (smtplib.SMTPException, OSError) as exc:
                raise _session_error(exc, self.where) from exc
        return self._client

    def _open(self) -> smtplib.SMTP:
        smtp = self.smtp
        context = self.ssl_context or ssl.create_default_context()
        client: smtplib.SMTP
        if smtp.security == "tls":
            client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout,
                                      context=context)
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
        try:
            client.ehlo()
            if smtp.security == "starttls":
                self._starttls(client, context)
            if smtp.username:
                self._login(client)
        except BaseException:
            client.close()
            raise
        return client

    def _starttls(self, client: smtplib.SMTP, context: ssl.SSLContext) -> None:
        if not client.has_extn("starttls"):
            raise _final(SmtpSessionError.coded("smtp.no_starttls", server=self.where))
        client.starttls(context=context)
        client.ehlo()

    def _login(self, client: smtplib.SMTP) -> None:
        name = self.smtp.password_env
        password = self.environ.get(name)
        if not password:
            raise _final(SmtpSessionError.coded("smtp.no_password", env=name))
        if not client.has_extn("auth"):
            code = "smtp.no_auth" if self.smtp.security != "none" else "smtp.no_auth_plain"
            raise _final(SmtpSessionError.coded(code, server=self.where))
        try:
            client.login(self.smtp.username, password)
        except UnicodeEncodeError as exc:  # smtplib sends credentials as ASCII only
            raise _final(SmtpSessionError.coded("smtp.ascii_login", env=name)) from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise _final(SmtpSessionError.coded(
                "smtp.login_failed", server=self.where, user=self.smtp.username,
                reply=_reply(exc.smtp_code, exc.smtp_error))) from exc


def _reply(code: int, text: bytes | str) -> str:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {message}".strip()


def _session_error(exc: BaseException, where: str) -> SmtpSessionError:
    """Translate an error raised while connecting, securing or logging in."""
    if isinstance(exc, ConnectionRefusedError):
        return SmtpSessionError.coded("smtp.refused_connection", server=where)
    if isinstance(exc, TimeoutError):
        return SmtpSessionError.coded("smtp.timeout", server=where)
    if isinstance(exc, socket.gaierror):
        return SmtpSessionError.coded("smtp.unresolvable", server=where, reason=exc.strerror)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _final(SmtpSessionError.coded("smtp.untrusted", server=where,
                                             reason=exc.verify_message))
    if isinstance(exc, ssl.SSLError):
        return SmtpSessionError.coded("smtp.tls_failed", server=where,
                                      reason=str(exc.reason or exc))
    if isinstance(exc, smtplib.SMTPResponseException):
        return _final(SmtpSessionError.coded("smtp.answered", server=where,
                                             reply=_reply(exc.smtp_code, exc.smtp_error)),
                      exc.smtp_code >= 500)
    return SmtpSessionError.coded("smtp.unreachable", server=where, reason=str(exc))


def _message_error(exc: BaseException, where: str) -> NotifyError:
    """Translate an error raised while sending one message."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = exc.recipients.items()
        permanent = all(code >= 500 for _, (code, _) in replies)
        listed = "; ".join(f"{addr}: {_reply(code, text)}" for addr, (code, text) in replies)
        return _final(NotifyError.coded("smtp.recipients_refused", server=where,
                                        replies=listed), permanent)
    if isinstance(exc, smtplib.SMTPResponseException):
        return _final(NotifyError.coded("smtp.message_refused", server=where,
                                        reply=_reply(exc.smtp_code, exc.smtp_error)),
                      exc.smtp_code >= 500)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return NotifyError.coded("smtp.disconnected", server=where)
    if isinstance(exc, TimeoutError):
        return NotifyError.coded("smtp.send_timeout", server=where)
    return NotifyError.coded("smtp.send_failed", server=where, reason=str(exc))
