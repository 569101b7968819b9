"""The ``analytics_stock`` view: it follows the inventory and catalog logs.

Its own copy of stock per SKU (``shared_tables.apply_stock``), and from it the
stock events: a *stock-out* when the available stock (on hand less reserved) falls
from above zero to zero or below, a *restock* when it rises above zero after one, and
every *low-stock* alert the inventory raised. Units shipped per SKU and day (a
reservation committed at shipment: what left the warehouse) give the recent sales
rate behind the days of cover. The SKU's product and seller come from the catalog
log, for the sellers' own view.
"""

from __future__ import annotations

from datetime import UTC
from enum import StrEnum
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow

from domain.catalog import Product
from domain.inventory import StockItem, stock_item_id
from projections.catalog.shared_tables import RESERVATION_COLUMNS, apply_stock
from projections.engine import View, ViewProjection


class StockEvent(StrEnum):
    STOCK_OUT = "stock_out"
    RESTOCKED = "restocked"
    LOW_STOCK = "low_stock"


class StockAnalyticsView(View):
    name = "analytics_stock"
    follows = ("inventory", "catalog")
    tables = {
        "analytics_stock_levels": """
            item_id uuid PRIMARY KEY,
            sku text NOT NULL,
            on_hand integer NOT NULL,
            reserved integer NOT NULL,
            available integer GENERATED ALWAYS AS (on_hand - reserved) STORED,
            out boolean NOT NULL DEFAULT false,
            updated_at timestamptz
        """,
        "analytics_stock_reservations": RESERVATION_COLUMNS,
        "analytics_stock_owners": """
            item_id uuid PRIMARY KEY,
            sku text NOT NULL,
            product_id uuid NOT NULL,
            seller_id uuid NOT NULL
        """,
        "analytics_stock_events": """
            item_id uuid NOT NULL,
            version integer NOT NULL,
            sku text NOT NULL,
            kind text NOT NULL,
            at timestamptz NOT NULL,
            available integer NOT NULL,
            threshold integer,
            PRIMARY KEY (item_id, version)
        """,
        "analytics_stock_shipped": """
            item_id uuid NOT NULL,
            day date NOT NULL,
            units integer NOT NULL,
            PRIMARY KEY (item_id, day)
        """,
    }
    indexes = [
        "CREATE INDEX IF NOT EXISTS analytics_stock_events_at ON {schema}.analytics_stock_events "
        "(at, item_id, version)",
        "CREATE INDEX IF NOT EXISTS analytics_stock_owners_seller "
        "ON {schema}.analytics_stock_owners (seller_id, sku)",
    ]


class StockAnalyticsProjection(ViewProjection[StockAnalyticsView]):
    name = "analytics_stock"

    def apply(self, event: Any, cursor: Cursor[DictRow]) -> None:
        match event:
            case Product.Created():
                cursor.execute(
                    "INSERT INTO analytics_stock_owners VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (item_id) DO NOTHING",
                    (stock_item_id(event.sku), event.sku, event.originator_id, event.seller_id),
                )
            case StockItem.LowStockReached():
                self._record(cursor, event, StockEvent.LOW_STOCK, event.available, event.threshold)
            case StockItem.ReservationCommitted():
                cursor.execute(
                    "INSERT INTO analytics_stock_shipped SELECT item_id, %s, quantity "
                    "FROM analytics_stock_reservations WHERE item_id = %s AND reservation_id = %s "
                    "ON CONFLICT (item_id, day) DO UPDATE "
                    "SET units = analytics_stock_shipped.units + EXCLUDED.units",
                    (
                        event.timestamp.astimezone(UTC).date(),
                        event.originator_id,
                        event.reservation_id,
                    ),
                )
                self._move(cursor, event)
            case StockItem.Event():
                self._move(cursor, event)

    def _move(self, cursor: Cursor[DictRow], event: Any) -> None:
        before = _available(cursor, event.originator_id)
        if not apply_stock(cursor, event, "analytics_stock_levels", "analytics_stock_reservations"):
            return
        after = _available(cursor, event.originator_id)
        if before is None or after is None:
            return
        available, out = after
        if before[0] > 0 >= available:
            self._record(cursor, event, StockEvent.STOCK_OUT, available)
            _mark(cursor, event.originator_id, out=True)
        elif out and available > 0:  # the first stock received is no restock
            self._record(cursor, event, StockEvent.RESTOCKED, available)
            _mark(cursor, event.originator_id, out=False)

    @staticmethod
    def _record(
        cursor: Cursor[DictRow],
        event: Any,
        kind: StockEvent,
        available: int,
        threshold: int | None = None,
    ) -> None:
        cursor.execute(
            "INSERT INTO analytics_stock_events SELECT %s, %s, sku, %s, %s, %s, %s "
            "FROM analytics_stock_levels WHERE item_id = %s ON CONFLICT DO NOTHING",
            (
                event.originator_id,
                event.originator_version,
                kind.value,
                event.timestamp,
                available,
                threshold,
                event.originator_id,
            ),
        )


def _available(cursor: Cursor[DictRow], item_id: UUID) -> tuple[int, bool] | None:
    """The SKU's available stock, and whether it is out since a stock-out."""
    cursor.execute(
        "SELECT available, out FROM analytics_stock_levels WHERE item_id = %s", (item_id,)
    )
    row = cursor.fetchone()
    return None if row is None else (int(row["available"]), bool(row["out"]))


def _mark(cursor: Cursor[DictRow], item_id: UUID, *, out: bool) -> None:
    cursor.execute("UPDATE analytics_stock_levels SET out = %s WHERE item_id = %s", (out, item_id))
