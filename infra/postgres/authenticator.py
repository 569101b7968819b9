"""Authentication of bearer tokens, shared by the write and read APIs: the JWT must
verify, and its session must be live in the access view (so logout, deactivation
and password changes take effect at once, not when the token expires)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from commands.users.tokens import TokenCodec
from domain.access import Principal
from domain.errors import AuthenticationRequired
from projections.users.queries import session_roles


class Authenticator:
    def __init__(self, codec: TokenCodec, pool: AsyncConnectionPool[AsyncConnection[Any]]) -> None:
        self._codec = codec
        self._pool = pool

    async def __call__(self, token: str | None) -> Principal:
        if not token:
            raise AuthenticationRequired("log in first: send Authorization: Bearer <access token>")
        claims = self._codec.read_access(token)
        async with self._pool.connection() as conn:
            roles = await session_roles(conn, claims.user_id, claims.session_id)
        if roles is None:
            raise AuthenticationRequired("this session has ended: log in again")
        return Principal(claims.user_id, claims.session_id, frozenset(roles))
