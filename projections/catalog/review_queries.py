"""Queries over ``read.product_reviews`` and ``read.product_rating_summaries``, as the
read API asks them: keyset-paginated, newest first (the cursor holds the last
review's creation time and id), never OFFSET."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.sql import SQL

from projections.cursors import Page, decode_cursor, fetch_page


async def product_reviews(
    conn: AsyncConnection[Any],
    product_id: UUID,
    *,
    include_hidden: bool = False,
    after: str | None = None,
    limit: int = 20,
) -> dict[str, Any]:
    """A product's reviews, newest first, with the histogram of visible ratings
    (the summary with the first page only)."""
    clauses = ["product_id = %s"]
    params: list[Any] = [product_id]
    if not include_hidden:
        clauses.append("NOT hidden")
    if after is not None:
        clauses.append("(created_at, review_id) < (%s, %s)")
        params.extend(decode_cursor(after, "reviews", [datetime, UUID]))
    columns = (
        "review_id, product_id, author_id, rating, title, body, verified_purchase, reply, "
        "replied_at, created_at, updated_at" + (", hidden, hidden_reason" if include_hidden else "")
    )
    statement = SQL(
        "SELECT {0} FROM read.product_reviews WHERE {1} "
        "ORDER BY created_at DESC, review_id DESC LIMIT %s"
    ).format(SQL(columns), SQL(" AND ".join(clauses)))
    rows, next_cursor = await fetch_page(
        conn, statement, params, limit=limit, kind="reviews", keys=("created_at", "review_id")
    )
    summary = None
    if after is None:
        cursor = conn.cursor(row_factory=dict_row)
        await cursor.execute(
            "SELECT rating_count, rating_sum, histogram FROM read.product_rating_summaries "
            "WHERE product_id = %s",
            (product_id,),
        )
        found = await cursor.fetchone()
        count = int(found["rating_count"]) if found else 0
        histogram = list(found["histogram"]) if found else [0, 0, 0, 0, 0]
        summary = {
            "count": count,
            "average": (
                str((Decimal(found["rating_sum"]) / count).quantize(Decimal("0.01"), ROUND_HALF_UP))
                if found and count
                else None
            ),
            "histogram": {str(stars): n for stars, n in enumerate(histogram, 1)},
        }
    return {"items": rows, "next_cursor": next_cursor, "summary": summary}


async def reviews_by_author(
    conn: AsyncConnection[Any], author_id: UUID, *, after: str | None = None, limit: int = 20
) -> Page:
    """Every review one user wrote, hidden ones too (with why), newest first, each
    with the seller's reply: what the shop holds of their reviews (their data export)."""
    params: list[Any] = [author_id]
    keyset = SQL("")
    if after is not None:
        keyset = SQL("AND (created_at, review_id) < (%s, %s)")
        params.extend(decode_cursor(after, "author-reviews", [datetime, UUID]))
    statement = SQL(
        "SELECT review_id, product_id, rating, title, body, verified_purchase, hidden, "
        "hidden_reason, reply, replied_at, created_at, updated_at "
        "FROM read.product_reviews WHERE author_id = %s {0} "
        "ORDER BY created_at DESC, review_id DESC LIMIT %s"
    ).format(keyset)
    rows, next_cursor = await fetch_page(
        conn,
        statement,
        params,
        limit=limit,
        kind="author-reviews",
        keys=("created_at", "review_id"),
    )
    return Page(rows, next_cursor)
