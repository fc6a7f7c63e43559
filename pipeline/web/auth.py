"""Editors' accounts, sessions, CSRF tokens and the login rate limit.

Passwords are hashed with argon2id (argon2-cffi). A session is a signed,
HttpOnly, SameSite=Lax cookie (Starlette's SessionMiddleware over
itsdangerous) that holds the editor's name and a per-session CSRF token; the
account is looked up again on every request, so a disabled editor is out at
once. Every visitor gets a CSRF token, so the login form and the reporters'
form are protected the same way as the desk.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import MutableMapping
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from ..errors import PipelineError
from ..models import User

_hasher = PasswordHasher()
# Verified against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a real password")
MIN_PASSWORD = 8


class AuthError(Exception):
    """A web request lacks what it needs; ``status`` says which answer to give."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def add_user(session: Session, name: str, password: str, now: datetime, *,
             replace: bool = False, stages: list[str] | None = None,
             email: str | None = None) -> User:
    """Create an editor account (or, with ``replace``, set a new password).

    Raises:
        PipelineError: the name is empty or taken, or the password is too short.
    """
    name = name.strip()
    if not name or len(name) > 100:
        raise PipelineError("The user name must be 1 to 100 characters long.")
    if len(password) < MIN_PASSWORD:
        raise PipelineError(f"The password must be at least {MIN_PASSWORD} characters long.")
    user = session.exec(select(User).where(User.name == name)).first()
    if user is not None and not replace:
        raise PipelineError(f"A user named {name!r} already exists; use 'pipeline user "
                            "passwd' to set a new password.")
    if user is None and replace:
        raise PipelineError(f"There is no user named {name!r}; 'pipeline user add' creates one.")
    user = user or User(name=name, password_hash="", created_at=now)
    user.password_hash, user.active = hash_password(password), True
    if stages:
        user.stages = json.dumps(stages, ensure_ascii=False)
    if email:
        user.email = email.strip()
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, name: str, password: str) -> User | None:
    """The active user with this name and password, else None (constant work either way)."""
    user = session.exec(select(User).where(User.name == name.strip())).first()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)  # parameters were raised since
        session.add(user)
    return user


class LoginLimiter:
    """At most ``attempts`` failed logins per (address, name) in ``window`` seconds.

    In memory, per process: enough for one office; several workers behind a
    proxy would each count on their own (the proxy should limit too).
    """

    def __init__(self, attempts: int = 5, window: float = 900.0) -> None:
        self.attempts = attempts
        self.window = window
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def blocked_for(self, address: str, name: str) -> float:
        """Seconds until this address may try this name again (0: now)."""
        now = time.monotonic()
        with self._lock:
            failures = self._recent((address, name.strip().lower()), now)
            if len(failures) < self.attempts:
                return 0.0
            return failures[0] + self.window - now

    def failed(self, address: str, name: str) -> None:
        with self._lock:
            key = (address, name.strip().lower())
            self._recent(key, time.monotonic()).append(time.monotonic())

    def succeeded(self, address: str, name: str) -> None:
        with self._lock:
            self._failures.pop((address, name.strip().lower()), None)


# --- session contents ---------------------------------------------------------------

Sess = MutableMapping[str, Any]


def csrf_token(session: Sess) -> str:
    """This visitor's CSRF token, made on first use."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf(session: Sess, sent: object) -> None:
    """Refuse a POST whose token is missing or does not match the session's.

    Raises:
        AuthError: 403 with a Chinese sentence.
    """
    expected = session.get("csrf")
    if not (isinstance(sent, str) and isinstance(expected, str)
            and hmac.compare_digest(sent.encode(), expected.encode())):
        raise AuthError(403, "页面已过期或来源不明（安全校验未通过），请刷新页面后重试。")


def start_session(session: Sess, user: User) -> None:
    """Log in: a fresh session (and CSRF token) so an old one cannot be fixed on us."""
    session.clear()
    session["user"] = user.name
    csrf_token(session)


def session_user(session: Sess, db: Session) -> str | None:
    """The logged-in editor's name, if the account still exists and is active."""
    name = session.get("user")
    if not isinstance(name, str):
        return None
    user = db.exec(select(User).where(User.name == name)).first()
    return name if user is not None and user.active else None


def flash(session: Sess, message: str, kind: str = "ok") -> None:
    """A one-time message for the next page (after a redirect)."""
    session.setdefault("flash", []).append([kind, message])


def take_flashes(session: Sess) -> list[list[str]]:
    messages = session.pop("flash", [])
    return messages if isinstance(messages, list) else []
