"""What the read API asks of the in-app inbox (``notify.inbox``, written by the in-app
channel's deliveries, not a view of ``read.*``), on the async pool.

Pages are keyset-paginated on the item's key (its creation time, then its id), the
table's primary key with the user: a page's cost does not grow with its depth, and
an item stored between two pages is neither repeated nor skipped."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from projections.notifications.inbox import valid_key


async def inbox_page(
    conn: AsyncConnection[Any], user_id: UUID, before: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first, older than ``before`` (an item's key, refused unless one), and
    the cursor of the next page: the last item's key, when there is more."""
    if before is not None:
        valid_key(before)
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT notification_id AS id, kind, title, body, link, created_at, "
        "read_at IS NOT NULL AS read, key FROM notify.inbox "
        "WHERE user_id = %s AND (%s::text IS NULL OR key < %s) ORDER BY key DESC LIMIT %s",
        (user_id, before, before, limit + 1),
    )
    rows = await cursor.fetchall()
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, str(rows[-1]["key"])


async def unread_count(conn: AsyncConnection[Any], user_id: UUID) -> int:
    """Counted from the rows (the partial index of unread ones), never a counter."""
    cursor = await conn.execute(
        "SELECT count(*) FROM notify.inbox WHERE user_id = %s AND read_at IS NULL", (user_id,)
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0
