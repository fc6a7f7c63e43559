"""The database-backed token cache: one access token per account for every process."""

from __future__ import annotations

from datetime import datetime

from ..models import WeChatToken
from ..store import Store


class DatabaseTokenCache:
    """Implements the client's ``TokenCache`` on the ``wechattoken`` table."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, appid: str) -> tuple[str, datetime] | None:
        with self.store.session() as session:
            row = session.get(WeChatToken, appid)
            return (row.token, row.expires_at) if row is not None else None

    def put(self, appid: str, token: str, expires_at: datetime) -> None:
        with self.store.session() as session:
            row = session.get(WeChatToken, appid) or WeChatToken(
                appid=appid, token=token, expires_at=expires_at)
            row.token, row.expires_at = token, expires_at
            session.add(row)
