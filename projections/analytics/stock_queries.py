"""Stock analytics per SKU (``read.analytics_stock_*``): available stock, units
shipped in the range, days of cover, and the stock-outs and low-stock alerts of the
range; and the list of stock events itself. Keyset-paginated (by SKU; events by
time); a seller's query is limited to their own products' SKUs.

Days of cover = available / (units shipped in the range / days in the range), to
one decimal: how long the stock lasts at the range's pace. None when nothing was
shipped (no pace to go by); 0 when nothing is available.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.sql import SQL

from projections.analytics.periods import DateRange
from projections.analytics.stock import StockEvent
from projections.cursors import Page, decode_cursor, fetch_page

_COVER_PLACES = Decimal("0.1")


def days_of_cover(available: int, shipped: int, days: int) -> Decimal | None:
    if available <= 0:
        return Decimal(0)
    if shipped <= 0:
        return None
    return (Decimal(available) * days / shipped).quantize(_COVER_PLACES, ROUND_HALF_EVEN)


async def stock_cover(
    conn: AsyncConnection[Any],
    span: DateRange,
    *,
    seller_id: UUID | None,
    after: str | None,
    limit: int,
) -> Page:
    where: list[str] = []
    params: list[Any] = [
        span.first,
        span.last,
        StockEvent.STOCK_OUT.value,
        span.start,
        span.end,
        StockEvent.LOW_STOCK.value,
        span.start,
        span.end,
        StockEvent.STOCK_OUT.value,
    ]
    if seller_id is not None:
        where.append("o.seller_id = %s")
        params.append(seller_id)
    if after is not None:
        where.append("s.sku > %s")
        params.extend(decode_cursor(after, "stock", [str]))
    statement = SQL(
        "SELECT s.sku, s.item_id, o.product_id, o.seller_id, s.on_hand, s.reserved, s.available, "
        "coalesce((SELECT sum(units) FROM read.analytics_stock_shipped h "
        "WHERE h.item_id = s.item_id AND h.day >= %s AND h.day <= %s), 0)::integer AS shipped, "
        "(SELECT count(*) FROM read.analytics_stock_events e WHERE e.item_id = s.item_id "
        "AND e.kind = %s AND e.at >= %s AND e.at < %s)::integer AS stock_outs, "
        "(SELECT count(*) FROM read.analytics_stock_events e WHERE e.item_id = s.item_id "
        "AND e.kind = %s AND e.at >= %s AND e.at < %s)::integer AS low_stock_alerts, "
        "(SELECT max(at) FROM read.analytics_stock_events e WHERE e.item_id = s.item_id "
        "AND e.kind = %s) AS last_stock_out "
        "FROM read.analytics_stock_levels s "
        "LEFT JOIN read.analytics_stock_owners o ON o.item_id = s.item_id "
        "{0} ORDER BY s.sku LIMIT %s"
    ).format(SQL("WHERE " + " AND ".join(where) if where else ""))
    rows, next_cursor = await fetch_page(
        conn, statement, params, limit=limit, kind="stock", keys=("sku",)
    )
    days = len(span.days)
    for row in rows:
        row["days_of_cover"] = days_of_cover(row["available"], row["shipped"], days)
    return Page(rows, next_cursor)


async def stock_events(
    conn: AsyncConnection[Any],
    span: DateRange,
    *,
    kind: StockEvent | None,
    seller_id: UUID | None,
    after: str | None,
    limit: int,
) -> Page:
    """Stock-outs, restocks and low-stock alerts in ``span``, oldest first."""
    where = ["e.at >= %s", "e.at < %s"]
    params: list[Any] = [span.start, span.end]
    if kind is not None:
        where.append("e.kind = %s")
        params.append(kind.value)
    if seller_id is not None:
        where.append("o.seller_id = %s")
        params.append(seller_id)
    if after is not None:
        where.append("(e.at, e.item_id, e.version) > (%s, %s, %s)")
        params.extend(decode_cursor(after, "stock-events", [datetime, UUID, int]))
    statement = SQL(
        "SELECT e.at, e.item_id, e.version, e.sku, e.kind, e.available, e.threshold, "
        "o.product_id, o.seller_id FROM read.analytics_stock_events e "
        "LEFT JOIN read.analytics_stock_owners o ON o.item_id = e.item_id "
        "WHERE {0} ORDER BY e.at, e.item_id, e.version LIMIT %s"
    ).format(SQL(" AND ".join(where)))
    rows, next_cursor = await fetch_page(
        conn, statement, params, limit=limit, kind="stock-events", keys=("at", "item_id", "version")
    )
    return Page(rows, next_cursor)
