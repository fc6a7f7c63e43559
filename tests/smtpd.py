"""A real SMTP server on loopback for the notify tests (aiosmtpd in a thread).

``smtp_server`` records every message it accepts, with its envelope recipients,
and can be switched to answer 4xx or 5xx, stopped and started again on the
same port (downtime), or run with STARTTLS or implicit TLS (a trustme CA,
trusted through SSL_CERT_FILE) and a login with a test password.

    def test_x(smtp_server): ...                                        # plain SMTP
    @pytest.mark.parametrize("smtp_server", ["starttls"], indirect=True)  # or "tls"
"""

from __future__ import annotations

import email
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

USERNAME = "pipeline"
PASSWORD = "test-Pa55word"
PASSWORD_ENV = "PIPELINE_TEST_SMTP_PASSWORD"


@dataclass
class Received:
    """One accepted message: envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def body(self, subtype: str) -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        assert part is not None, f"no text/{subtype} part"
        return str(part.get_content())  # type: ignore[attr-defined]

    @property
    def text(self) -> str:
        return self.body("plain")

    @property
    def html(self) -> str:
        return self.body("html")


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(self, server: Any, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if self.server.mode == "4xx":
            return "451 4.3.0 Temporary local problem, try again later"
        if address in self.server.refuse:
            return self.server.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.server.mode == "5xx":
            return "554 5.7.1 Message rejected by policy"
        raw = bytes(envelope.original_content or b"")
        parsed = email.message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.server.messages.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos),
                                             raw, parsed))
        return "250 Message accepted for delivery"


class _Controller(Controller):
    # Bind port 0 and learn the port the system gave us before the start-up self-check.
    def _trigger_server(self) -> None:
        if self.port == 0 and self.server is not None:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpServer:
    """The running server plus the switches the tests use."""

    host = "127.0.0.1"

    def __init__(self, security: str, tmp: Path) -> None:
        self.security = security            # none, starttls or tls
        self.login = security != "none"
        self.port = 0
        self.mode = "ok"                    # ok, 4xx (RCPT) or 5xx (DATA)
        self.refuse: dict[str, str] = {}    # address -> reply, e.g. "550 5.1.1 no such user"
        self.messages: list[Received] = []
        self.ca_file = tmp / "smtp-ca.pem"
        self._server_ctx: ssl.SSLContext | None = None
        if security != "none":
            self._server_ctx = self._make_tls(tmp)
        self._controller: _Controller | None = None

    def _make_tls(self, tmp: Path) -> ssl.SSLContext:
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(self.host, "localhost").configure_cert(context)
        return context

    def _authenticate(self, server: Any, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == USERNAME.encode()
              and auth_data.password == PASSWORD.encode())
        return AuthResult(success=ok, handled=False)  # False: the server answers 535 itself

    def start(self) -> None:
        kwargs: dict[str, Any] = {}
        if self.security == "starttls":
            kwargs = {"tls_context": self._server_ctx, "require_starttls": True}
        elif self.security == "tls":
            kwargs = {"ssl_context": self._server_ctx, "auth_require_tls": False}
        if self.login:
            # PLAIN only: after a failed PLAIN, smtplib retries with LOGIN and an initial
            # response, which aiosmtpd 1.4 does not answer (the client would wait for it).
            kwargs |= {"authenticator": self._authenticate, "auth_exclude_mechanism": ["LOGIN"]}
        self._controller = _Controller(_Handler(self), hostname=self.host, port=self.port,
                                       **kwargs)
        self._controller.start()
        self.port = self._controller.port

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def toml(self, **overrides: object) -> str:
        """The [smtp] table that points the pipeline at this server."""
        values: dict[str, object] = {
            "host": self.host, "port": self.port, "security": self.security, "timeout": 5.0,
            "sender": "XX新区禁毒办 <noreply@xxxq.example.cn>"}
        if self.login:
            values |= {"username": USERNAME, "password_env": PASSWORD_ENV}
        values |= overrides
        lines = [f"{key} = {_toml_value(value)}" for key, value in values.items()]
        return "\n[smtp]\n" + "\n".join(lines) + "\n"

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address in m.rcpt_tos]


def _toml_value(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


@pytest.fixture
def smtp_server(request: pytest.FixtureRequest, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    """A running SMTP server on 127.0.0.1 (param: "none", "starttls" or "tls")."""
    security = getattr(request, "param", "none")
    server = SmtpServer(security, tmp_path)
    if security != "none":
        # The pipeline uses ssl.create_default_context(), which honours SSL_CERT_FILE.
        monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))
        monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    server.start()
    try:
        yield server
    finally:
        server.stop()


EDITOR = "editor@xxxq.example.cn"
LEADER = "leader@xxxq.example.cn"
BASE_URL = "https://desk.xxxq.example.cn"


def configure(workspace: Any, server: SmtpServer | None, **smtp: object) -> None:
    """Point a test workspace's config.toml at ``server`` (None: no SMTP host) and name
    one editor and one leader, replacing whatever [smtp] and [notify] tables it had."""
    path = workspace.path / "config.toml"
    text = path.read_text("utf-8")
    for table in ("smtp", "notify"):
        text = re.sub(rf"(?ms)^\[{table}\]\n.*?(?=^\[|\Z)", "", text)
    text += server.toml(**smtp) if server is not None else ""
    text += (f'\n[notify]\neditors = ["{EDITOR}"]\nleaders = ["{LEADER}"]\n'
             f'base_url = "{BASE_URL}"\n')
    path.write_text(text, "utf-8")


@pytest.fixture
def notify_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `pipeline digest|bulletin|mail` reachable through pipeline.cli.main even before
    the CLI registers them itself (then this changes nothing)."""
    from pipeline import cli
    from pipeline.notify.options import register

    original = cli.build_parser

    def build_parser() -> Any:
        parser = original()
        for action in parser._subparsers._group_actions if parser._subparsers else ():
            choices = getattr(action, "choices", None)
            if isinstance(choices, dict) and "digest" not in choices:
                register(action)
        return parser

    monkeypatch.setattr(cli, "build_parser", build_parser)
