"""The login rate limit, kept in the database so every web process counts the same
failures: at most ``attempts`` failed logins per (address, name) in ``window`` seconds,
whichever process answered them.

Rows older than the window are deleted as new failures come in, so the table stays as
small as the attempts of the last window. Times are the host's wall clock (UTC): the
processes behind one proxy share a host or an NTP-synchronised clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from ..models import LoginFailure
from ..store import Store


def _address_key(address: str) -> str:
    # Failures from an address, whatever the name: trying other names buys nothing.
    return f"{address[:200]}|*"


def _name_key(name: str) -> str:
    # Failures for a name from any address: changing X-Forwarded-For or the address does
    # not buy more tries (issue 11), and every process sees the same rows (issue 16).
    return f"*|{name.strip().lower()[:100]}"


class DbLoginLimiter:
    """The same questions as ``auth.LoginLimiter``, answered from ``loginfailure`` rows."""

    def __init__(self, store: Store, attempts: int = 5, window: float = 900.0) -> None:
        self.store = store
        self.attempts = attempts
        self.window = timedelta(seconds=window)

    def blocked_for(self, address: str, name: str) -> float:
        """Seconds until this address may try this name again (0: now)."""
        now = datetime.now(UTC)
        return max(self._wait(_address_key(address), self.attempts, now),
                   self._wait(_name_key(name), self.attempts, now))

    def _wait(self, key: str, attempts: int, now: datetime) -> float:
        with self.store.session() as session:
            times = list(session.exec(
                select(LoginFailure.at).where(LoginFailure.key == key,
                                              col(LoginFailure.at) > now - self.window)
                .order_by(col(LoginFailure.at).desc()).limit(attempts)))
        if len(times) < attempts:
            return 0.0
        return max(0.0, (min(times) + self.window - now).total_seconds())

    def failed(self, address: str, name: str) -> None:
        now = datetime.now(UTC)
        with self.store.session() as session:
            session.execute(sa.delete(LoginFailure).where(
                col(LoginFailure.at) <= now - self.window))
            session.add(LoginFailure(key=_address_key(address), at=now))
            session.add(LoginFailure(key=_name_key(name), at=now))

    def succeeded(self, address: str, name: str) -> None:
        with self.store.session() as session:
            session.execute(sa.delete(LoginFailure).where(
                col(LoginFailure.key).in_([_address_key(address), _name_key(name)])))
