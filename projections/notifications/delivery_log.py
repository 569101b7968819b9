"""The admin delivery log: what was decided for a user or an order, each delivery it
made and every attempt at it, read from the notifier's tables (``notify.*``, not a
view of ``read.*``: the notifier and the delivery workers write them directly).

Newest first, keyset-paginated on ``(decided_at, id)``: the user's index
(``notifications_by_user``) serves the order, and an order has few notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.sql import SQL, Identifier

from projections.cursors import Page, decode_cursor, fetch_page

_CURSOR = "notifications"


async def notifications_of(
    conn: AsyncConnection[Any],
    *,
    user_id: UUID | None = None,
    order_id: UUID | None = None,
    after: str | None = None,
    limit: int = 20,
) -> Page:
    """The notifications of one user or one order (exactly one of them), each with
    its deliveries, each delivery with its attempts (``history``, oldest first)."""
    if (user_id is None) == (order_id is None):
        raise ValueError("exactly one of user_id or order_id")
    column, value = ("user_id", user_id) if user_id is not None else ("order_id", order_id)
    params: list[Any] = [value]
    keyset = SQL("")
    if after is not None:
        keyset = SQL("AND (decided_at, id) < (%s, %s)")
        params.extend(decode_cursor(after, _CURSOR, [datetime, UUID]))
    statement = SQL(
        "SELECT id, kind, category, trigger, user_id, order_id, locale, decided_at "
        "FROM notify.notifications WHERE {0} = %s {1} "
        "ORDER BY decided_at DESC, id DESC LIMIT %s"
    ).format(Identifier(column), keyset)
    rows, next_cursor = await fetch_page(
        conn, statement, params, limit=limit, kind=_CURSOR, keys=("decided_at", "id")
    )
    deliveries = await _deliveries(conn, [row["id"] for row in rows])
    for row in rows:
        row["deliveries"] = deliveries.get(row["id"], [])
    return Page(rows, next_cursor)


async def _deliveries(
    conn: AsyncConnection[Any], notification_ids: list[UUID]
) -> dict[UUID, list[dict[str, Any]]]:
    if not notification_ids:
        return {}
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT notification_id, id, channel, address, state, attempts, not_before, "
        "provider_message_id, last_error FROM notify.deliveries "
        "WHERE notification_id = ANY(%s) ORDER BY notification_id, channel, address",
        (notification_ids,),
    )
    deliveries = await cursor.fetchall()
    await cursor.execute(
        "SELECT delivery_id, attempt AS number, started_at, finished_at, outcome, "
        "provider_message_id, error FROM notify.attempts "
        "WHERE delivery_id = ANY(%s) ORDER BY delivery_id, attempt",
        ([d["id"] for d in deliveries],),
    )
    history: dict[UUID, list[dict[str, Any]]] = {}
    for attempt in await cursor.fetchall():
        history.setdefault(attempt.pop("delivery_id"), []).append(attempt)
    found: dict[UUID, list[dict[str, Any]]] = {}
    for delivery in deliveries:
        delivery["history"] = history.get(delivery["id"], [])
        found.setdefault(delivery.pop("notification_id"), []).append(delivery)
    return found
