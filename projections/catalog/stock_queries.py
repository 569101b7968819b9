"""Queries over ``read.inventory_levels`` (stock per SKU), as the read API asks them:
keyset-paginated by SKU (the cursor holds the last SKU), never OFFSET."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.sql import SQL

from projections.cursors import Page, decode_cursor, fetch_page


async def inventory_levels(
    conn: AsyncConnection[Any],
    seller_id: UUID | None,
    *,
    low_only: bool = False,
    after: str | None = None,
    limit: int = 50,
) -> Page:
    """Stock per SKU, by SKU: a seller's (``seller_id``) or every SKU's (None: admins)."""
    clauses: list[str] = []
    params: list[Any] = []
    if seller_id is not None:
        clauses.append("seller_id = %s")
        params.append(seller_id)
    if low_only:
        clauses.append("low_stock_threshold IS NOT NULL AND available <= low_stock_threshold")
    if after is not None:
        clauses.append("sku > %s")
        params.extend(decode_cursor(after, "sku", [str]))
    statement = SQL(
        "SELECT sku, product_id, seller_id, product_name, on_hand, reserved, available, "
        "low_stock_threshold, low_since, updated_at FROM read.inventory_levels {0} "
        "ORDER BY sku LIMIT %s"
    ).format(SQL("WHERE " + " AND ".join(clauses) if clauses else ""))
    rows, next_cursor = await fetch_page(
        conn, statement, params, limit=limit, kind="sku", keys=("sku",)
    )
    for row in rows:
        threshold = row["low_stock_threshold"]
        row["low_stock"] = threshold is not None and row["available"] <= threshold
    return Page(rows, next_cursor)
