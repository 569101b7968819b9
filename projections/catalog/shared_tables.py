"""Table shapes and event handlers that more than one catalog view shares: the
category tree (``catalog_categories``, and the copy ``catalog_products`` keeps to
filter by category), stock with its reservations (``inventory_levels``, and the side
tables of ``catalog_products``) and the rating histogram (``product_reviews``, and the
rating summaries of ``catalog_products``)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from domain.categories import Category
from domain.inventory import StockItem

CATEGORY_COLUMNS = """
    id uuid PRIMARY KEY,
    name text NOT NULL,
    parent_id uuid,
    path uuid[] NOT NULL,
    archived boolean NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
"""

RESERVATION_COLUMNS = """
    item_id uuid NOT NULL,
    reservation_id text NOT NULL,
    quantity integer NOT NULL,
    PRIMARY KEY (item_id, reservation_id)
"""


def apply_category(cursor: Cursor[DictRow], event: Any, table: str) -> bool:
    """Keep a category table (``CATEGORY_COLUMNS``) in step; False when the event is
    not a category event."""
    t = Identifier(table)
    match event:
        case Category.Created():
            cursor.execute(
                SQL(
                    "INSERT INTO {0} (id, name, parent_id, path, archived, created_at, updated_at) "
                    "SELECT %(id)s, %(name)s, %(parent)s, "
                    "coalesce((SELECT path FROM {0} WHERE id = %(parent)s), '{{}}') || %(id)s, "
                    "false, %(ts)s, %(ts)s ON CONFLICT (id) DO NOTHING"
                ).format(t),
                {
                    "id": event.originator_id,
                    "name": event.name,
                    "parent": event.parent_id,
                    "ts": event.timestamp,
                },
            )
        case Category.Renamed():
            cursor.execute(
                SQL("UPDATE {0} SET name = %s, updated_at = %s WHERE id = %s").format(t),
                (event.name, event.timestamp, event.originator_id),
            )
        case Category.Moved():
            # The subtree keeps its shape: every path through the moved category gets
            # the new parent's path in front of the moved category.
            cursor.execute(
                SQL(
                    "UPDATE {0} SET path = "
                    "coalesce((SELECT path FROM {0} WHERE id = %(parent)s), '{{}}') "
                    "|| path[array_position(path, %(id)s):] "
                    "WHERE path @> ARRAY[%(id)s]::uuid[]"
                ).format(t),
                {"id": event.originator_id, "parent": event.parent_id},
            )
            cursor.execute(
                SQL("UPDATE {0} SET parent_id = %s, updated_at = %s WHERE id = %s").format(t),
                (event.parent_id, event.timestamp, event.originator_id),
            )
        case Category.Archived():
            cursor.execute(
                SQL("UPDATE {0} SET archived = true, updated_at = %s WHERE id = %s").format(t),
                (event.timestamp, event.originator_id),
            )
        case _:
            return False
    return True


def apply_stock(cursor: Cursor[DictRow], event: Any, levels: str, reservations: str) -> bool:
    """Keep a stock table (item_id, sku, on_hand, reserved, updated_at) and its
    reservations in step; False when the event is not a stock movement."""
    lv, rs = Identifier(levels), Identifier(reservations)
    item, ts = event.originator_id, event.timestamp
    match event:
        case StockItem.Created():
            cursor.execute(
                SQL(
                    "INSERT INTO {0} (item_id, sku, on_hand, reserved, updated_at) "
                    "VALUES (%s, %s, 0, 0, %s) "
                    "ON CONFLICT (item_id) DO UPDATE SET updated_at = EXCLUDED.updated_at"
                ).format(lv),
                (item, event.sku, ts),
            )
        case StockItem.StockReceived():
            _move(cursor, lv, item, ts, on_hand=event.quantity)
        case StockItem.StockAdjusted():
            _move(cursor, lv, item, ts, on_hand=event.delta)
        case StockItem.StockReserved():
            cursor.execute(
                SQL("INSERT INTO {0} VALUES (%s, %s, %s)").format(rs),
                (item, event.reservation_id, event.quantity),
            )
            _move(cursor, lv, item, ts, reserved=event.quantity)
        case StockItem.ReservationReleased() | StockItem.ReservationCommitted():
            shipped = isinstance(event, StockItem.ReservationCommitted)
            cursor.execute(
                SQL(
                    "WITH r AS (DELETE FROM {1} WHERE item_id = %(item)s "
                    "AND reservation_id = %(rid)s RETURNING quantity) "
                    "UPDATE {0} l SET reserved = l.reserved - r.quantity, "
                    "on_hand = l.on_hand - CASE WHEN %(shipped)s THEN r.quantity ELSE 0 END, "
                    "updated_at = %(ts)s FROM r WHERE l.item_id = %(item)s"
                ).format(lv, rs),
                {"item": item, "rid": event.reservation_id, "shipped": shipped, "ts": ts},
            )
        case _:
            return False
    return True


def _move(
    cursor: Cursor[DictRow],
    levels: Identifier,
    item: UUID,
    ts: Any,
    *,
    on_hand: int = 0,
    reserved: int = 0,
) -> None:
    cursor.execute(
        SQL(
            "UPDATE {0} SET on_hand = on_hand + %s, reserved = reserved + %s, updated_at = %s "
            "WHERE item_id = %s"
        ).format(levels),
        (on_hand, reserved, ts, item),
    )


HISTOGRAM = SQL(
    "SELECT count(*)::integer AS n, coalesce(sum(rating), 0)::integer AS s, "
    "ARRAY[count(*) FILTER (WHERE rating = 1), count(*) FILTER (WHERE rating = 2), "
    "count(*) FILTER (WHERE rating = 3), count(*) FILTER (WHERE rating = 4), "
    "count(*) FILTER (WHERE rating = 5)]::integer[] AS h"
)
