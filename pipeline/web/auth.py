"""Editors' accounts, server-side sessions, CSRF tokens and the login rate limit.

Passwords are hashed with argon2id (argon2-cffi); hashing is slow on purpose, so the
callers run it in a worker thread, never on the event loop. A session is a row of
``websession``: the signed, HttpOnly, SameSite=Lax cookie (Starlette's
SessionMiddleware) holds only the session's random id (the table keeps its sha256),
the CSRF token and one-time messages. Deleting the row ends the session at once:
logout, a new password, ``pipeline user disable`` and the idle timeout do. Every
visitor gets a CSRF token, so the login form and the reporters' form are protected
the same way as the desk.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import MutableMapping
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, select

from ..config import WebSettings
from ..errors import PipelineError
from ..models import User, WebSession

_hasher = PasswordHasher()
# Verified against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a real password")
MIN_PASSWORD = 12
MAX_NAME = 100  # the user table's limit: a longer name is never looked up nor remembered


class AuthError(Exception):
    """A web request lacks what it needs; ``status`` says which answer to give."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@cache
def _common_passwords() -> frozenset[str]:
    # zxcvbn's list of the 30,000 most used passwords (from leaked password sets)
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-untyped]

    return frozenset(FREQUENCY_LISTS["passwords"])


def check_password(password: str) -> None:
    """Refuse a password that is short, one character repeated, or a common one.

    Raises:
        PipelineError: naming the rule the password breaks.
    """
    if len(password) < MIN_PASSWORD:
        raise PipelineError.coded("auth.password_short", length=len(password),
                                  minimum=MIN_PASSWORD)
    if len(set(password)) == 1:
        raise PipelineError.coded("auth.password_repeated")
    if password.lower() in _common_passwords() or password.strip().lower() in \
            _common_passwords():
        raise PipelineError.coded("auth.password_common")


def disable_user(session: Session, name: str) -> User:
    """Turn an editor's account off and end every session it has, at once.

    Raises:
        PipelineError: there is no such user.
    """
    user = session.exec(select(User).where(User.name == name.strip())).first()
    if user is None or user.id is None:
        raise PipelineError.coded("auth.no_user", name=name)
    user.active = False
    session.add(user)
    end_sessions(session, user.id)
    return user


def add_user(session: Session, name: str, password: str, now: datetime, *,
             replace: bool = False, stages: list[str] | None = None,
             email: str | None = None) -> User:
    """Create an editor account (or, with ``replace``, set a new password).

    Raises:
        PipelineError: the name is empty or taken, or the password is too short.
    """
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise PipelineError.coded("auth.name_length")
    check_password(password)
    user = session.exec(select(User).where(User.name == name)).first()
    if user is not None and not replace:
        raise PipelineError.coded("auth.user_exists", name=name)
    if user is None and replace:
        raise PipelineError.coded("auth.no_user_to_change", name=name)
    user = user or User(name=name, password_hash="", created_at=now)
    user.password_hash, user.active = hash_password(password), True
    if user.id is not None:
        end_sessions(session, user.id)  # a new password logs out every old session
    if stages:
        user.stages = json.dumps(stages, ensure_ascii=False)
    if email:
        user.email = email.strip()
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, name: str, password: str) -> User | None:
    """The active user with this name and password, else None (constant work either way)."""
    name = name.strip()
    user = (session.exec(select(User).where(User.name == name)).first()
            if len(name) <= MAX_NAME else None)
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
    """Failed logins counted per address and per name, in bounded memory.

    An address gets ``attempts`` failures in ``window`` seconds, whatever names it
    tries; a name gets ``attempts`` failures from any addresses, then waits, and the
    wait doubles with each further failure (up to ``window``), so changing the
    address or the name does not buy more guesses. At most ``max_keys`` keys are
    remembered (the oldest are forgotten first) and names are cut to 100 characters.
    In memory, per process (issue 16 moves the counts into the database).
    """

    def __init__(self, attempts: int = 5, window: float = 900.0, max_keys: int = 10_000) -> None:
        self.attempts = attempts
        self.window = window
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _keys(address: str, name: str) -> tuple[str, str]:
        return f"a:{address[:100]}", f"n:{name.strip().lower()[:MAX_NAME]}"

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def _wait(self, key: str, now: float, by_name: bool) -> float:
        failures = self._recent(key, now)
        if len(failures) < self.attempts:
            return 0.0
        if not by_name:
            return failures[0] + self.window - now
        extra = len(failures) - self.attempts
        pause = min(self.window, 30.0 * 2.0 ** min(extra, 20))
        return max(0.0, failures[-1] + pause - now)

    def blocked_for(self, address: str, name: str) -> float:
        """Seconds until this address may try this name again (0: now)."""
        now = time.monotonic()
        by_address, by_name = self._keys(address, name)
        with self._lock:
            return max(self._wait(by_address, now, False), self._wait(by_name, now, True))

    def failed(self, address: str, name: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in self._keys(address, name):
                failures = self._recent(key, now)
                failures.append(now)
                self._failures[key] = failures
                self._failures.move_to_end(key)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def succeeded(self, address: str, name: str) -> None:
        with self._lock:
            for key in self._keys(address, name):
                self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)


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


def _sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def start_session(session: Sess, db: Session, user: User, now: datetime,
                  remote: str = "") -> None:
    """Log in: a new session row, and a fresh cookie (and CSRF token) so an old one
    cannot be fixed on us."""
    assert user.id is not None
    sid = secrets.token_urlsafe(32)
    db.add(WebSession(id_hash=_sid_hash(sid), user_id=user.id, created_at=now, seen_at=now,
                      remote=remote[:100]))
    session.clear()
    session["sid"] = sid
    csrf_token(session)


def end_session(session: Sess, db: Session) -> None:
    """Log out: the row goes, so the cookie (even a copy of it) is worth nothing."""
    sid = session.get("sid")
    if isinstance(sid, str):
        db.execute(sa.delete(WebSession).where(col(WebSession.id_hash) == _sid_hash(sid)))
    session.clear()


def end_sessions(db: Session, user_id: int) -> int:
    """End every session of one editor (new password, account disabled)."""
    result = db.execute(sa.delete(WebSession).where(col(WebSession.user_id) == user_id))
    return int(result.rowcount)  # type: ignore[attr-defined]


SEEN_EVERY = timedelta(minutes=1)  # refresh seen_at at most this often (a write per request
                                   # would serialise every page view on SQLite)


def session_user(session: Sess, db: Session, now: datetime, web: WebSettings) -> str | None:
    """The logged-in editor's name, if the session row is live and the account active."""
    sid = session.get("sid")
    if not isinstance(sid, str):
        return None
    row = db.exec(select(WebSession, User).join(User, col(User.id) == col(WebSession.user_id))
                  .where(WebSession.id_hash == _sid_hash(sid))).first()
    if row is None:
        return None
    live, user = row
    expired = (now - live.seen_at > timedelta(minutes=web.idle_minutes)
               or now - live.created_at > timedelta(hours=web.session_hours))
    if expired or not user.active:
        db.delete(live)
        return None
    if now - live.seen_at > SEEN_EVERY:
        live.seen_at = now
        db.add(live)
    return user.name


def flash(session: Sess, message: str, kind: str = "ok") -> None:
    """A one-time message for the next page (after a redirect)."""
    session.setdefault("flash", []).append([kind, message])


def take_flashes(session: Sess) -> list[list[str]]:
    messages = session.pop("flash", [])
    return messages if isinstance(messages, list) else []
