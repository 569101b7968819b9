"""Payment declines per method (the gateway) and day, and the decline codes, over
``read.analytics_payment_attempts``: attempts are the payments requested that day."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from projections.analytics.figures import rate
from projections.analytics.periods import DateRange


async def payment_declines(conn: AsyncConnection[Any], span: DateRange) -> dict[str, Any]:
    cursor = conn.cursor(row_factory=dict_row)
    params = {"start": span.start, "end": span.end}
    await cursor.execute(
        "SELECT (requested_at AT TIME ZONE 'UTC')::date AS day, method, count(*) AS attempts, "
        "count(*) FILTER (WHERE authorized) AS authorized, "
        "count(*) FILTER (WHERE declined) AS declined "
        "FROM read.analytics_payment_attempts "
        "WHERE requested_at >= %(start)s AND requested_at < %(end)s GROUP BY 1, 2 ORDER BY 1, 2",
        params,
    )
    days = [
        {**row, "decline_rate": rate(row["declined"], row["attempts"])}
        for row in await cursor.fetchall()
    ]
    await cursor.execute(
        "SELECT method, decline_code AS code, count(*) AS declined "
        "FROM read.analytics_payment_attempts WHERE declined "
        "AND requested_at >= %(start)s AND requested_at < %(end)s "
        "GROUP BY 1, 2 ORDER BY declined DESC, method, code",
        params,
    )
    return {"days": days, "codes": await cursor.fetchall()}
