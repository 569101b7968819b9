"""Queries over ``read.catalog_categories``, as the read API asks them."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

_VERSION = (
    "SELECT (SELECT active FROM public.projection_generations WHERE name = %s), "
    "(SELECT coalesce(sum(position), 0) FROM (SELECT max(notification_id) AS position "
    "FROM read.catalog_categories__tracking GROUP BY application_name) AS logs)"
)


async def categories_version(conn: AsyncConnection[Any]) -> tuple[int, int]:
    """The state of ``catalog_categories`` as (generation, position): its position in
    the logs it follows (their sum: each only grows, and the rows change only with
    it). What the category tree's HTTP validator is made of."""
    cursor = await conn.execute(_VERSION, ("catalog_categories",), prepare=True)
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0] or 0), int(row[1])


async def category_tree(
    conn: AsyncConnection[Any], *, include_archived: bool = False
) -> list[dict[str, Any]]:
    """The category forest: top-level categories with their ``children``, by name."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT id, name, parent_id, path, archived FROM read.catalog_categories "
        "WHERE %s OR NOT archived ORDER BY lower(name), id",
        (include_archived,),
    )
    rows = await cursor.fetchall()
    nodes = {
        r["id"]: {
            "id": r["id"],
            "name": r["name"],
            "parent_id": r["parent_id"],
            "path": r["path"],
            "archived": r["archived"],
            "children": [],
        }
        for r in rows
    }
    roots: list[dict[str, Any]] = []
    for r in rows:
        parent = nodes.get(r["parent_id"]) if r["parent_id"] is not None else None
        (parent["children"] if parent is not None else roots).append(nodes[r["id"]])
    return roots
