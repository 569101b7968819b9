"""The pools' check of a connection before lending it out: a ping only when the
connection's socket has something to read.

psycopg_pool's own check (``check_connection``) sends an empty query every time a
connection leaves the pool: one more round trip for every save, read and tracking
write, 22% of the projections process's busy time under the checkout benchmark. A
connection the server closed while it sat in the pool (a restart, an idle
timeout, ``pg_terminate_backend``) always says so on its socket first: the server
sends its FATAL message and closes, so the socket turns readable. A healthy idle
connection has nothing to read (the last query was read to its end), so only the
readable ones are pinged, and a dead one fails the ping and is replaced as before.
"""

from __future__ import annotations

import select
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg_pool import AsyncConnectionPool, ConnectionPool


def _suspect(conn: Connection[Any] | AsyncConnection[Any]) -> bool:
    if conn.closed or conn.broken:
        return True
    poll = select.poll()
    poll.register(conn.fileno(), select.POLLIN)
    return bool(poll.poll(0))


def check_if_suspect(conn: Connection[Any]) -> None:
    """Raise, as the pool's check must, when the connection no longer works."""
    if _suspect(conn):
        ConnectionPool.check_connection(conn)


async def check_if_suspect_async(conn: AsyncConnection[Any]) -> None:
    if _suspect(conn):
        await AsyncConnectionPool.check_connection(conn)
