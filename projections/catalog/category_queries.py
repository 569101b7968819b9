"""Queries over ``read.catalog_categories``, as the read API asks them."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row


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
