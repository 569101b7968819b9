"""How far each projection has got: the basis of read-your-writes and of lag figures."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg.sql import SQL, Identifier

from domain.positions import Position
from projections.generations import READ_SCHEMA, tracking_view


def _tracked_sql(projection: str) -> SQL | Any:
    return SQL("SELECT notification_id FROM {0}.{1} WHERE application_name = %s").format(
        Identifier(READ_SCHEMA), Identifier(tracking_view(projection))
    )


def tracked_position(conn: Connection[Any], projection: str, log: str) -> int:
    row = conn.execute(_tracked_sql(projection), (log,)).fetchone()
    return int(row[0]) if row else 0


async def tracked_position_async(conn: AsyncConnection[Any], projection: str, log: str) -> int:
    cursor = await conn.execute(_tracked_sql(projection), (log,))
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


def reached(tracked: dict[str, int], positions: list[Position]) -> bool:
    return all(tracked.get(p.log, 0) >= p.id for p in positions)
