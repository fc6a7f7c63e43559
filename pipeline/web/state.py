"""What every handler shares: settings, store, clock, templates; and small helpers.

``WebState`` is built once by ``create_app`` and hung on ``app.state.web``.
The helpers here render a page with the common context, write an audit row,
and resolve the editor or the unit link a request carries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Protocol

import jinja2
from fastapi import Path as PathParam
from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from ..clock import Clock
from ..config import Settings
from ..deadlines import deadline_text
from ..messages import text_of
from ..models import AuditLog, Unit, UnitLink
from ..store import Store
from . import i18n
from .auth import (
    AuthError,
    authenticate,
    csrf_token,
    session_user,
    start_session,
    take_flashes,
)
from .queries import find_link

HERE = Path(__file__).parent
# Ids fit the databases' 32-bit integer columns; a larger one is a 422, not a crash.
DraftId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]


class Limiter(Protocol):
    def blocked_for(self, address: str, name: str) -> float: ...
    def failed(self, address: str, name: str) -> None: ...
    def succeeded(self, address: str, name: str) -> None: ...


@dataclass
class WebState:
    settings: Settings
    store: Store
    clock: Clock
    env: jinja2.Environment
    secret: str
    limiter: Limiter

    def now(self) -> datetime:
        return self.clock.now()


def web(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


def make_environment(settings: Settings) -> jinja2.Environment:
    """The pages' Jinja environment: autoescaped everywhere, times in the account's zone."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    tz = settings.tz

    def local(value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if value is None or value == "":
            return "—"
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        return moment.astimezone(tz).strftime(fmt)

    @jinja2.pass_context
    def deadline(context: Mapping[str, Any], value: datetime | str) -> str:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        return deadline_text(moment, context["now"], tz)

    env.filters["local"] = local
    env.filters["deadline"] = deadline
    env.filters["status_label"] = i18n.status_label
    env.filters["state_label"] = i18n.state_label
    env.filters["action_label"] = lambda a: i18n.ACTION_LABELS.get(a, a)
    env.filters["problem"] = text_of
    env.filters["render_note"] = text_of
    env.filters["finding_message"] = i18n.finding_message
    env.filters["finding_kind"] = lambda k: i18n.FINDING_KINDS.get(k, k)
    env.filters["push_state"] = lambda s: i18n.PUSH_STATES.get(s, s)
    env.globals["account"] = settings.account.name
    env.globals["weekday"] = lambda d: "一二三四五六日"[d.weekday()]
    return env


def page(request: Request, template: str, status: int = 200,
         headers: Mapping[str, str] | None = None, **context: Any) -> HTMLResponse:
    """Render a page with the context every template may use."""
    state = web(request)
    context.setdefault("user", None)
    context.update(request=request, csrf=csrf_token(request.session),
                   flashes=take_flashes(request.session), settings=state.settings,
                   now=state.now())
    html = state.env.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=dict(headers or {}))


def remote(request: Request) -> str:
    return request.client.host if request.client else ""


def audit(session: Session, request: Request, actor: str, action: str, target: str = "",
          detail: Mapping[str, Any] | str = "") -> None:
    """One audit row (who, what, when, from where) in the caller's transaction."""
    text = detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False)
    session.add(AuditLog(at=web(request).now(), actor=actor[:100], action=action[:60],
                         target=target, remote=remote(request), detail=text))


def editor_of(request: Request, status: int) -> str:
    """The logged-in editor's name.

    Raises:
        AuthError: ``status`` (303 to the login page, or 401 for the API) without a session.
    """
    state = web(request)
    with state.store.session() as db:
        name = session_user(request.session, db, state.now(), state.settings.web)
    if name is None:
        raise AuthError(status, "请先登录。")
    return name


def unit_of_link(session: Session, token: str) -> tuple[UnitLink, Unit]:
    """The unit a reporter's link belongs to.

    Raises:
        AuthError: 404 for an unknown link, 403 for a revoked one.
    """
    found = find_link(session, token)
    if found is None:
        raise AuthError(404, "链接无效。请向区禁毒办索取本单位的报送链接。")
    link, unit = found
    if link.revoked_at is not None:
        raise AuthError(403, "此报送链接已停用。请向区禁毒办索取新的链接。")
    return link, unit


@dataclass(frozen=True)
class LoginResult:
    user: str | None
    wait: float = 0.0      # > 0: refused by the limiter, try again in this many seconds


def attempt_login(request: Request, name: str, password: str) -> LoginResult:
    """Check a login and start its session; blocking (argon2), so async handlers run it
    in a worker thread. Every attempt is audited; failures feed the limiter."""
    state, address = web(request), remote(request)
    wait = state.limiter.blocked_for(address, name)
    if wait > 0:
        return LoginResult(None, wait)
    with state.store.session() as session:
        user = authenticate(session, name, password)
        audit(session, request, name or "-", "login" if user else "login_failed")
        if user is not None:
            start_session(request.session, session, user, state.now(), address)
    # The limiter keeps its rows in the database: after this session has committed (on
    # SQLite a second writer inside it would wait for the first, that is for itself).
    if user is None:
        state.limiter.failed(address, name)
        return LoginResult(None)
    state.limiter.succeeded(address, name)
    return LoginResult(user.name)
