"""Queries over ``read.catalog_products``, as the read API asks them: a product's
detail (and the snapshot the product cache stores) and listings of published products.

Every list is keyset-paginated (an opaque cursor holds the sort key of the last row
and its id as tiebreaker), never OFFSET: a deep page costs what the first does. The
sorts (``KEYSETS``), the filters (``where_clauses``) and the keyset walk
(``keyset_page``, ``paged``) are also the PostgreSQL search's (``search_queries``).
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

from projections.catalog.product_cache import CACHED_VIEW, ProductSnapshot
from projections.catalog.product_items import DETAIL_COLUMNS, LIST_COLUMNS, product_item
from projections.catalog.search import ProductFilter
from projections.cursors import BadCursor, Page, decode_cursor, encode_cursor

# --- the sorts -------------------------------------------------------------------------


@dataclass(frozen=True)
class Keyset:
    columns: list[str]
    """Sort key expressions, the last one the unique tiebreaker."""
    types: list[type]
    descending: bool


KEYSETS: dict[str, Keyset] = {
    "price_asc": Keyset(["price_amount", "id"], [Decimal, UUID], descending=False),
    "price_desc": Keyset(["price_amount", "id"], [Decimal, UUID], descending=True),
    "newest": Keyset(["created_at", "id"], [datetime, UUID], descending=True),
    "rating": Keyset(["rating_avg", "rating_count", "id"], [Decimal, int, UUID], descending=True),
    "relevance": Keyset(["rank", "id"], [float, UUID], descending=True),
}


def where_clauses(where: ProductFilter, *, matches: bool = False) -> tuple[list[str], list[Any]]:
    """The filters as SQL over published products: over ``catalog_products``, or over
    ``catalog_products_matches`` (``matches``), which holds only published products and
    their stock as ``in_stock``."""
    clauses = [] if matches else ["status = 'published'"]
    params: list[Any] = []
    if where.category_id is not None:
        clauses.append("category_path @> ARRAY[%s]::uuid[]")
        params.append(where.category_id)
    if where.currency is not None:
        clauses.append("currency = %s")
        params.append(where.currency)
    if where.min_price is not None:
        clauses.append("price_amount >= %s")
        params.append(where.min_price)
    if where.max_price is not None:
        clauses.append("price_amount <= %s")
        params.append(where.max_price)
    if where.min_rating is not None:
        clauses.append("rating_count > 0 AND rating_avg >= %s")
        params.append(where.min_rating)
    if where.in_stock is True:
        clauses.append("in_stock" if matches else "available > 0")
    elif where.in_stock is False:
        clauses.append("NOT in_stock" if matches else "available <= 0")
    if where.attributes:
        clauses.append(
            "id IN (SELECT id FROM read.catalog_products WHERE attributes @> %s)"
            if matches
            else "attributes @> %s"
        )
        params.append(Jsonb(where.attributes))
    return clauses, params


# --- product detail and listing --------------------------------------------------------


async def product_detail(
    conn: AsyncConnection[Any],
    product_id: UUID,
    *,
    viewer_id: UUID | None = None,
    admin: bool = False,
) -> dict[str, Any] | None:
    """A published product; any product for an admin or its own seller. None otherwise
    (unknown and not visible answer the same)."""
    found = await product_snapshot(conn, product_id)
    if found is None or not visible_to(found.status, found.seller_id, viewer_id, admin=admin):
        return None
    return found.document


def visible_to(status: str, seller_id: UUID, viewer_id: UUID | None, *, admin: bool) -> bool:
    """Who sees a product: everyone once published; its seller and admins always."""
    return status == "published" or admin or seller_id == viewer_id


_SNAPSHOT = SQL(
    "SELECT {0}, r.revision, "
    "(SELECT active FROM public.projection_generations WHERE name = %s) AS generation, "
    "(SELECT max(revision) FROM read.catalog_products_revisions) AS head "
    "FROM read.catalog_products p JOIN read.catalog_products_revisions r "
    "ON r.product_id = p.id WHERE p.id = %s"
).format(SQL(DETAIL_COLUMNS))


async def product_snapshot(conn: AsyncConnection[Any], product_id: UUID) -> ProductSnapshot | None:
    """A product whoever asks, with its revision, the generation it was read from
    and that generation's last revision, all from one statement (one snapshot): what
    the product cache needs to store it safely."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(_SNAPSHOT, (CACHED_VIEW, product_id), prepare=True)
    row = await cursor.fetchone()
    if row is None:
        return None
    revision, generation, head = row.pop("revision"), row.pop("generation"), row.pop("head")
    return ProductSnapshot(
        document=product_item(row),
        status=row["status"],
        seller_id=row["seller_id"],
        revision=int(revision),
        generation=int(generation),
        head=int(head),
    )


_VERSION = (
    "SELECT (SELECT active FROM public.projection_generations WHERE name = %s), "
    "(SELECT coalesce(max(revision), 0) FROM read.catalog_products_revisions)"
)


async def products_version(conn: AsyncConnection[Any]) -> tuple[int, int]:
    """The state of ``catalog_products`` as (generation, last revision): every write
    of a product row takes the next revision, so any change to what a listing shows
    moves it (an index lookup: what a listing's HTTP validator is made of)."""
    cursor = await conn.execute(_VERSION, (CACHED_VIEW,), prepare=True)
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0] or 0), int(row[1])


async def list_products(
    conn: AsyncConnection[Any],
    where: ProductFilter,
    sort: str = "newest",
    after: str | None = None,
    limit: int = 24,
) -> Page:
    """Published products matching ``where``, in ``sort`` order (not ``relevance``:
    that needs search text)."""
    if sort not in KEYSETS or sort == "relevance":
        raise BadCursor(f"unknown sort {sort!r} for a listing")
    clauses, params = where_clauses(where)
    rows = await keyset_page(conn, clauses, params, sort, "list", after, limit)
    return paged(rows, sort, "list", limit)


async def keyset_page(
    conn: AsyncConnection[Any],
    clauses: list[str],
    params: list[Any],
    sort: str,
    mode: str,
    after: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    """A page of published products in a sort other than relevance, walking its index."""
    keyset = KEYSETS[sort]
    clauses = list(clauses)
    params = list(params)
    if after is not None:
        values = decode_cursor(after, f"{sort}:{mode}", keyset.types)
        comparison = "<" if keyset.descending else ">"
        clauses.append(
            f"({', '.join(keyset.columns)}) {comparison} ({', '.join(['%s'] * len(values))})"
        )
        params.extend(values)
    direction = " DESC" if keyset.descending else ""
    statement = SQL(
        "SELECT {columns} FROM read.catalog_products WHERE {where} ORDER BY {order} LIMIT %s"
    ).format(
        columns=SQL(LIST_COLUMNS),
        where=SQL(" AND ".join(clauses)),
        order=SQL(", ".join(c + direction for c in keyset.columns)),
    )
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(statement, [*params, limit + 1])
    return await cursor.fetchall()


def paged(rows: list[dict[str, Any]], sort: str, mode: str, limit: int) -> Page:
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        keys = KEYSETS[sort].columns
        next_cursor = encode_cursor(f"{sort}:{mode}", [_cursor_value(last[k]) for k in keys])
    return Page([product_item(r) for r in rows], next_cursor)


def _cursor_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return value
