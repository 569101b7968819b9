"""Queries over the orders, payments and carts views (``read.*``), for the read API.

Lists are keyset-paginated, newest first: the cursor holds the last row's
``(placed_at, order_id)`` (or ``(created_at, payment_id)``), so a page costs the
same however deep it is and rows placed meanwhile never shift the next page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.sql import SQL
from psycopg.types.json import Jsonb

from domain.actors import UNKNOWN_ACTOR
from projections.cursors import Page, decode_cursor, fetch_page

_ORDER_COLUMNS = (
    "order_id, customer_id, status, currency, total, captured, refunded, lines, "
    "shipping_address, payment_reference, authentication, rejection_reason, "
    "cancellation_reason, carrier, tracking_number, placed_at, delivered_at, updated_at"
)
_PAYMENT_COLUMNS = (
    "p.payment_id, p.order_id, o.customer_id, p.gateway, p.capture_mode, p.status, p.currency, "
    "p.amount, p.authorized, p.captured, p.refunded, p.reference, p.failure_code, "
    "p.failure_reason, p.created_at, p.updated_at"
)


@dataclass(frozen=True)
class OrderFilter:
    customer_id: UUID | None = None
    status: str | None = None
    placed_from: datetime | None = None
    placed_before: datetime | None = None
    currency: str | None = None
    min_total: Decimal | None = None
    max_total: Decimal | None = None


async def list_orders(
    conn: AsyncConnection[Any], where: OrderFilter, *, after: str | None = None, limit: int = 20
) -> Page:
    """Orders, newest first, matching every filter given (a shopper's history is
    ``OrderFilter(customer_id=...)``)."""
    clauses: list[str] = []
    params: list[Any] = []
    for clause, value in (
        ("customer_id = %s", where.customer_id),
        ("status = %s", where.status),
        ("placed_at >= %s", where.placed_from),
        ("placed_at < %s", where.placed_before),
        ("currency = %s", where.currency),
        ("total >= %s", where.min_total),
        ("total <= %s", where.max_total),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    if after is not None:
        clauses.append("(placed_at, order_id) < (%s, %s)")
        params.extend(decode_cursor(after, "orders", [datetime, UUID]))
    statement = SQL(
        "SELECT {0} FROM read.orders {1} ORDER BY placed_at DESC, order_id DESC LIMIT %s"
    ).format(SQL(_ORDER_COLUMNS), SQL("WHERE " + " AND ".join(clauses) if clauses else ""))
    rows, next_cursor = await fetch_page(
        conn, statement, params, limit=limit, kind="orders", keys=("placed_at", "order_id")
    )
    return Page(rows, next_cursor)


async def order_detail(conn: AsyncConnection[Any], order_id: UUID) -> dict[str, Any] | None:
    """The order with its status timeline (oldest first)."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        SQL("SELECT {0} FROM read.orders WHERE order_id = %s").format(SQL(_ORDER_COLUMNS)),
        (order_id,),
    )
    order = await cursor.fetchone()
    if order is None:
        return None
    order["timeline"] = (await order_timelines(conn, [order_id])).get(order_id, [])
    return order


async def order_timelines(
    conn: AsyncConnection[Any], order_ids: list[UUID]
) -> dict[UUID, list[dict[str, Any]]]:
    """The status timelines (oldest first) of the orders of a page, in one query: an
    order without steps is absent."""
    if not order_ids:
        return {}
    cursor = conn.cursor(row_factory=dict_row)
    # Who acted; unknown for a step applied before actors were recorded (the actors
    # table is newer than the generation: a rebuild would say unknown the same).
    await cursor.execute(
        "SELECT t.order_id, t.status, t.at, t.note, coalesce(a.actor, %s) AS actor "
        "FROM read.order_timeline t "
        "LEFT JOIN read.order_timeline_actors a USING (order_id, version) "
        "WHERE t.order_id = ANY(%s) ORDER BY t.order_id, t.version",
        (Jsonb(UNKNOWN_ACTOR.as_mapping()), order_ids),
    )
    timelines: dict[UUID, list[dict[str, Any]]] = {}
    for step in await cursor.fetchall():
        timelines.setdefault(step.pop("order_id"), []).append(step)
    return timelines


async def list_payments(
    conn: AsyncConnection[Any],
    *,
    customer_id: UUID | None = None,
    order_id: UUID | None = None,
    after: str | None = None,
    limit: int = 20,
) -> Page:
    """Payments, newest first, each with its history of gateway facts."""
    clauses: list[str] = []
    params: list[Any] = []
    if customer_id is not None:
        clauses.append("o.customer_id = %s")
        params.append(customer_id)
    if order_id is not None:
        clauses.append("p.order_id = %s")
        params.append(order_id)
    if after is not None:
        clauses.append("(p.created_at, p.payment_id) < (%s, %s)")
        params.extend(decode_cursor(after, "payments", [datetime, UUID]))
    statement = SQL(
        "SELECT {0} FROM read.payments p JOIN read.orders o ON o.order_id = p.order_id {1} "
        "ORDER BY p.created_at DESC, p.payment_id DESC LIMIT %s"
    ).format(SQL(_PAYMENT_COLUMNS), SQL("WHERE " + " AND ".join(clauses) if clauses else ""))
    rows, next_cursor = await fetch_page(
        conn, statement, params, limit=limit, kind="payments", keys=("created_at", "payment_id")
    )
    if rows:
        cursor = conn.cursor(row_factory=dict_row)
        await cursor.execute(
            "SELECT payment_id, kind, amount, reference, gateway_event_id, note, at "
            "FROM read.payment_history WHERE payment_id = ANY(%s) ORDER BY payment_id, version",
            ([row["payment_id"] for row in rows],),
        )
        history: dict[UUID, list[dict[str, Any]]] = {}
        for entry in await cursor.fetchall():
            history.setdefault(entry.pop("payment_id"), []).append(entry)
        for row in rows:
            row["history"] = history.get(row["payment_id"], [])
    return Page(rows, next_cursor)


async def cart_view(conn: AsyncConnection[Any], cart_id: UUID) -> dict[str, Any] | None:
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute("SELECT state FROM read.carts WHERE cart_id = %s", (cart_id,))
    row = await cursor.fetchone()
    return None if row is None else dict(row["state"])
