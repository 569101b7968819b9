"""Queries over the ``analytics_sales`` view (``read.analytics_*``), for the read API
and ``shop analytics report``.

Every figure of a period is about the orders *placed* in it (UTC), in one currency
(amounts are never summed across currencies):

- ``orders``: sales (confirmed, and not cancelled before capture); ``units`` their
  quantities; ``gross`` their totals; ``refunded`` what was refunded of them, at
  any later time; ``net`` = gross - refunded; ``average_order_value`` = gross /
  orders;
- ``refunded_orders`` and ``returned_orders`` (goods received back) with their
  rates over ``orders``; ``cancelled`` and ``rejected`` count every order placed in
  the period that was, sale or not, over ``placed``.

Per product, category and seller: sales lines only, with their orders, units,
gross and returned units. A refund is of an order, not of a line, so there is no
net per product. A product in two categories counts in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.sql import SQL, Composed

from projections.analytics.figures import average, money, rate
from projections.analytics.periods import DateRange, Grouping, label
from projections.cursors import Page, decode_cursor, encode_cursor


async def sales_by_period(
    conn: AsyncConnection[Any],
    span: DateRange,
    grouping: Grouping,
    currency: str | None = None,
) -> list[dict[str, Any]]:
    """One row per period and currency that had orders placed, oldest first."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        SQL(
            "SELECT date_trunc(%(g)s, placed_at AT TIME ZONE 'UTC')::date AS period, currency, "
            "count(*) AS placed, "
            "count(*) FILTER (WHERE is_sale) AS orders, "
            "coalesce(sum(units) FILTER (WHERE is_sale), 0) AS units, "
            "coalesce(sum(total) FILTER (WHERE is_sale), 0) AS gross, "
            "coalesce(sum(refunded) FILTER (WHERE is_sale), 0) AS refunded, "
            "count(*) FILTER (WHERE is_sale AND refunds > 0) AS refunded_orders, "
            "count(*) FILTER (WHERE is_sale AND returned_at IS NOT NULL) AS returned_orders, "
            "count(*) FILTER (WHERE cancelled_at IS NOT NULL) AS cancelled, "
            "count(*) FILTER (WHERE rejected_at IS NOT NULL) AS rejected "
            "FROM read.analytics_orders WHERE placed_at >= %(start)s AND placed_at < %(end)s {0} "
            "GROUP BY 1, 2 ORDER BY 1, 2"
        ).format(SQL("AND currency = %(currency)s" if currency else "")),
        {"g": grouping.value, "start": span.start, "end": span.end, "currency": currency},
    )
    return [_period_figures(row, grouping) for row in await cursor.fetchall()]


def _period_figures(row: dict[str, Any], grouping: Grouping) -> dict[str, Any]:
    c = row["currency"]
    gross, refunded = Decimal(row["gross"]), Decimal(row["refunded"])
    orders, placed = int(row["orders"]), int(row["placed"])
    return {
        "period": label(row["period"], grouping),
        "period_start": row["period"],
        "currency": c,
        "placed": placed,
        "orders": orders,
        "units": int(row["units"]),
        "gross": money(gross, c),
        "refunded": money(refunded, c),
        "net": money(gross - refunded, c),
        "average_order_value": average(gross, orders, c),
        "refunded_orders": int(row["refunded_orders"]),
        "refund_rate": rate(int(row["refunded_orders"]), orders),
        "returned_orders": int(row["returned_orders"]),
        "return_rate": rate(int(row["returned_orders"]), orders),
        "cancelled": int(row["cancelled"]),
        "cancellation_rate": rate(int(row["cancelled"]), placed),
        "rejected": int(row["rejected"]),
        "rejection_rate": rate(int(row["rejected"]), placed),
    }


async def stop_reasons(conn: AsyncConnection[Any], span: DateRange) -> list[dict[str, Any]]:
    """Cancellations and rejections of the orders placed in ``span``, by reason, the
    most frequent first; a cancellation says whether an admin or the shopper made it."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT kind, by_admin, reason, count(*) AS orders FROM ("
        "SELECT 'cancelled' AS kind, cancelled_by_admin AS by_admin, cancellation_reason AS reason "
        "FROM read.analytics_orders WHERE cancelled_at IS NOT NULL "
        "AND placed_at >= %(start)s AND placed_at < %(end)s "
        "UNION ALL SELECT 'rejected', NULL, rejection_reason FROM read.analytics_orders "
        "WHERE rejected_at IS NOT NULL AND placed_at >= %(start)s AND placed_at < %(end)s"
        ") s GROUP BY 1, 2, 3 ORDER BY orders DESC, kind, reason",
        {"start": span.start, "end": span.end},
    )
    return await cursor.fetchall()


class Dimension(StrEnum):
    PRODUCT = "product"
    CATEGORY = "category"
    SELLER = "seller"


_KEYS: dict[Dimension, tuple[str, str, str]] = {
    # the key, its name, and what joins it in
    Dimension.PRODUCT: ("l.product_id", "p.name", ""),
    Dimension.CATEGORY: (
        "k.category_id",
        "c.name",
        "CROSS JOIN LATERAL unnest(p.category_ids) AS k(category_id) "
        "LEFT JOIN read.analytics_categories c ON c.id = k.category_id",
    ),
    Dimension.SELLER: ("p.seller_id", "NULL::text", ""),
}


@dataclass(frozen=True)
class DimensionQuery:
    dimension: Dimension
    span: DateRange
    currency: str | None = None
    seller_id: UUID | None = None
    """Only this seller's products (a seller's own view)."""


async def sales_by_dimension(
    conn: AsyncConnection[Any], query: DimensionQuery, *, after: str | None, limit: int
) -> Page:
    """Sales lines per product, category or seller and currency: by currency, then
    the largest gross first (keyset-paginated)."""
    key, name, joins = _KEYS[query.dimension]
    where = ["o.is_sale", "l.placed_at >= %s", "l.placed_at < %s"]
    params: list[Any] = [query.span.start, query.span.end]
    if query.currency is not None:
        where.append("l.currency = %s")
        params.append(query.currency)
    if query.seller_id is not None:
        where.append("p.seller_id = %s")
        params.append(query.seller_id)
    kind = f"sales-{query.dimension.value}"
    outer: list[str] = []
    if after is not None:
        currency, gross, last_key = decode_cursor(after, kind, [str, Decimal, str])
        outer.append(
            "WHERE (currency > %s OR (currency = %s AND (gross < %s OR (gross = %s AND key > %s))))"
        )
        params_after = [currency, currency, gross, gross, last_key]
    else:
        params_after = []
    statement: Composed = SQL(
        "SELECT * FROM (SELECT coalesce({0}::text, '') AS key, max({1}) AS name, "
        "l.currency, count(DISTINCT l.order_id) AS orders, sum(l.quantity) AS units, "
        "sum(l.amount) AS gross, "
        "coalesce(sum(l.quantity) FILTER (WHERE o.returned_at IS NOT NULL), 0) AS returned_units "
        "FROM read.analytics_order_lines l JOIN read.analytics_orders o USING (order_id) "
        "LEFT JOIN read.analytics_products p ON p.product_id = l.product_id {2} "
        "WHERE {3} GROUP BY 1, 3) s {4} ORDER BY currency, gross DESC, key LIMIT %s"
    ).format(SQL(key), SQL(name), SQL(joins), SQL(" AND ".join(where)), SQL(" ".join(outer)))
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(statement, [*params, *params_after, limit + 1])
    rows = await cursor.fetchall()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(kind, [last["currency"], last["gross"], last["key"]])
    items = [
        {
            "key": row["key"] or None,
            "name": row["name"],
            "currency": row["currency"],
            "orders": int(row["orders"]),
            "units": int(row["units"]),
            "gross": money(Decimal(row["gross"]), row["currency"]),
            "returned_units": int(row["returned_units"]),
        }
        for row in rows
    ]
    return Page(items, next_cursor)
