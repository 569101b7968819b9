"""The ``catalog_categories`` view: it follows the catalog log; the tree, with each
category's path from the root (``path``: root first, itself last)."""

from __future__ import annotations

from typing import Any

from psycopg import Cursor
from psycopg.rows import DictRow

from projections.catalog.shared_tables import CATEGORY_COLUMNS, apply_category
from projections.engine import View, ViewProjection


class CatalogCategoriesView(View):
    name = "catalog_categories"
    follows = ("catalog",)
    tables = {"catalog_categories": CATEGORY_COLUMNS}
    indexes = [
        "CREATE INDEX IF NOT EXISTS catalog_categories_path ON {schema}.catalog_categories "
        "USING gin (path)",
        "CREATE INDEX IF NOT EXISTS catalog_categories_parent ON {schema}.catalog_categories "
        "(parent_id)",
    ]


class CatalogCategoriesProjection(ViewProjection[CatalogCategoriesView]):
    name = "catalog_categories"

    def apply(self, event: Any, cursor: Cursor[DictRow]) -> None:
        apply_category(cursor, event, "catalog_categories")
