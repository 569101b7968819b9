"""The ``inventory_levels`` view: it follows the inventory and catalog logs; stock per
SKU with the product and seller it belongs to (for sellers' and admins' stock screens)."""

from __future__ import annotations

from typing import Any

from psycopg import Cursor
from psycopg.rows import DictRow

from domain.catalog import Product
from domain.inventory import StockItem, stock_item_id
from projections.catalog.shared_tables import RESERVATION_COLUMNS, apply_stock
from projections.engine import View, ViewProjection


class InventoryLevelsView(View):
    name = "inventory_levels"
    follows = ("inventory", "catalog")
    tables = {
        "inventory_levels": """
            item_id uuid PRIMARY KEY,
            sku text NOT NULL UNIQUE,
            product_id uuid,
            seller_id uuid,
            product_name text,
            on_hand integer NOT NULL,
            reserved integer NOT NULL,
            available integer GENERATED ALWAYS AS (on_hand - reserved) STORED,
            low_stock_threshold integer,
            low_since timestamptz,
            updated_at timestamptz
        """,
        "inventory_reservations": RESERVATION_COLUMNS,
    }
    indexes = [
        "CREATE INDEX IF NOT EXISTS inventory_levels_seller ON {schema}.inventory_levels "
        "(seller_id, sku)",
    ]


class InventoryLevelsProjection(ViewProjection[InventoryLevelsView]):
    """Stock per SKU. A product's row may come before its first stock event (a SKU
    with nothing received yet) or after (an admin received stock first)."""

    name = "inventory_levels"

    def apply(self, event: Any, cursor: Cursor[DictRow]) -> None:
        if apply_stock(cursor, event, "inventory_levels", "inventory_reservations"):
            # Low since the alert, until available stock rises above the threshold.
            cursor.execute(
                "UPDATE inventory_levels SET low_since = NULL WHERE item_id = %s "
                "AND low_since IS NOT NULL AND (low_stock_threshold IS NULL "
                "OR available > low_stock_threshold)",
                (event.originator_id,),
            )
            return
        match event:
            case StockItem.LowStockThresholdSet():
                cursor.execute(
                    "UPDATE inventory_levels SET low_stock_threshold = %s, updated_at = %s, "
                    "low_since = CASE WHEN %s::integer IS NOT NULL AND available <= %s "
                    "THEN low_since END WHERE item_id = %s",
                    (
                        event.threshold,
                        event.timestamp,
                        event.threshold,
                        event.threshold,
                        event.originator_id,
                    ),
                )
            case StockItem.LowStockReached():
                cursor.execute(
                    "UPDATE inventory_levels SET low_since = %s WHERE item_id = %s",
                    (event.timestamp, event.originator_id),
                )
            case Product.Created():
                cursor.execute(
                    "INSERT INTO inventory_levels (item_id, sku, product_id, seller_id, "
                    "product_name, on_hand, reserved) VALUES (%s, %s, %s, %s, %s, 0, 0) "
                    "ON CONFLICT (item_id) DO UPDATE SET product_id = EXCLUDED.product_id, "
                    "seller_id = EXCLUDED.seller_id, product_name = EXCLUDED.product_name",
                    (
                        stock_item_id(event.sku),
                        event.sku,
                        event.originator_id,
                        event.seller_id,
                        event.name,
                    ),
                )
            case Product.DetailsUpdated() if "name" in event.changes:
                cursor.execute(
                    "UPDATE inventory_levels SET product_name = %s WHERE product_id = %s",
                    (event.changes["name"], event.originator_id),
                )
