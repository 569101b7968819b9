"""The change feed of ``catalog_products``: every product row in the order its
changes committed (its ``revision``, in ``catalog_products_revisions``; see
``projections.catalog.triggers``). What follows the view without re-implementing it
reads this: the product-detail cache and the OpenSearch index."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.sql import SQL, Identifier

from projections.catalog.product_items import DETAIL_COLUMNS

FEED_COLUMNS = DETAIL_COLUMNS + ", category_path, revision"


def changed_products(
    conn: Connection[Any], schema: str, after: int, limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` product rows of the generation ``schema`` changed after
    revision ``after``, oldest change first (each row as it is now)."""
    cursor = conn.cursor(row_factory=dict_row)
    cursor.execute(
        SQL(
            "SELECT {0} FROM {1}.catalog_products_revisions r "
            "JOIN {1}.catalog_products p ON p.id = r.product_id "
            "WHERE r.revision > %s ORDER BY r.revision LIMIT %s"
        ).format(SQL(FEED_COLUMNS), Identifier(schema)),
        (after, limit),
    )
    return cursor.fetchall()


def changed_revisions(
    conn: Connection[Any], schema: str, after: int, limit: int
) -> list[tuple[UUID, int]]:
    """(id, revision) of up to ``limit`` products changed after revision ``after``,
    oldest change first: for followers that need only to know what changed."""
    rows = conn.execute(
        SQL(
            "SELECT product_id, revision FROM {0}.catalog_products_revisions "
            "WHERE revision > %s ORDER BY revision LIMIT %s"
        ).format(Identifier(schema)),
        (after, limit),
    ).fetchall()
    return [(row[0], int(row[1])) for row in rows]


def head_revision(conn: Connection[Any], schema: str) -> int:
    """The last revision committed in the generation ``schema`` (0 when empty)."""
    row = conn.execute(
        SQL("SELECT coalesce(max(revision), 0) FROM {0}.catalog_products_revisions").format(
            Identifier(schema)
        )
    ).fetchone()
    return int(row[0]) if row else 0
