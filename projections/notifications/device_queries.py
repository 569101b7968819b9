"""What the read API asks of a user's push devices (``notify.devices``, written by the
device registry of the write side, not a view of ``read.*``), on the async pool.

Never the token: a Web Push subscription's keys let whoever holds them push to the
browser (``domain.devices.RegisteredDevice``: what the owner sees of a device)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.sql import SQL

from projections.cursors import Page, decode_cursor, fetch_page

_CURSOR = "devices"


async def devices_of(
    conn: AsyncConnection[Any], user_id: UUID, *, after: str | None = None, limit: int = 20
) -> Page:
    """The user's devices, oldest first (as ``GET /me/devices`` lists them), keyset
    pages on ``(created_at, id)``."""
    params: list[Any] = [user_id]
    keyset = SQL("")
    if after is not None:
        keyset = SQL("AND (created_at, id) > (%s, %s)")
        params.extend(decode_cursor(after, _CURSOR, [datetime, UUID]))
    statement = SQL(
        "SELECT id, platform, created_at FROM notify.devices WHERE user_id = %s {0} "
        "ORDER BY created_at, id LIMIT %s"
    ).format(keyset)
    rows, next_cursor = await fetch_page(
        conn, statement, params, limit=limit, kind=_CURSOR, keys=("created_at", "id")
    )
    return Page(rows, next_cursor)
