"""The web app factory: the editors' desk, the reporters' form and the JSON API.

``create_app(settings, store, clock)`` wires routers, middleware and error
handlers around one ``WebState``; it holds no business rules. Middleware,
outermost first: the body size limit (413 before parsing), security headers,
signed session cookies.
"""

from __future__ import annotations

import logging
import os
import secrets

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from .. import __version__
from ..clock import Clock
from ..config import Settings
from ..store import Store
from . import (
    api,
    desk,
    desk_admin,
    desk_plan,
    desk_reach,
    desk_review,
    errors,
    reporter,
    wechat_push,
)
from .bodies import body_limit
from .limiter import DbLoginLimiter
from .middleware import BodyLimit, SecurityHeaders
from .state import HERE, WebState, make_environment

log = logging.getLogger(__name__)
SECRET_ENV = "PIPELINE_WEB_SECRET"


def _secret(given: str | None) -> str:
    secret = given or os.environ.get(SECRET_ENV, "")
    if not secret:
        # Sessions then end with the process; several workers need the same secret.
        log.warning("%s is not set: using a random session key, so editors must log in "
                    "again after a restart", SECRET_ENV)
        secret = secrets.token_urlsafe(32)
    return secret


def create_app(settings: Settings, store: Store, clock: Clock, *,
               secret: str | None = None) -> FastAPI:
    """The ASGI app serving the desk, the reporters' pages and ``/api/``."""
    app = FastAPI(title="pipeline 编辑台与报送接口", version=__version__,
                  description="区禁毒办公众号内容流水线的 JSON 接口。错误统一为 "
                              '{"ok": false, "error": "...", "status": N}。',
                  openapi_url="/api/openapi.json", docs_url=None, redoc_url=None)
    key = _secret(secret)
    # The login limit counts in the database, so N processes still allow 5 attempts.
    app.state.web = WebState(settings, store, clock, make_environment(settings), key,
                             DbLoginLimiter(store))
    for router in (desk.router, desk_plan.router, desk_review.router, desk_admin.router,
                   desk_reach.router, reporter.router, api.router, wechat_push.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    errors.install(app)
    app.add_middleware(SessionMiddleware, secret_key=key, session_cookie="pipeline_session",
                       max_age=settings.web.session_hours * 3600, same_site="lax",
                       https_only=settings.notify.base_url.startswith("https://"))
    app.add_middleware(SecurityHeaders)

    app.add_middleware(BodyLimit, limit_for=lambda path: body_limit(settings.limits, path))
    # X-Forwarded-For only from the proxies we were told about: anyone else could claim
    # any address (the login limiter and the audit log go by it)
    app.add_middleware(ProxyHeadersMiddleware,
                       trusted_hosts=list(settings.web.trusted_proxies) or [])
    return app
