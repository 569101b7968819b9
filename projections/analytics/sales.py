"""The ``analytics_sales`` view: it follows the ordering and catalog logs.

Facts, not running totals: one row per order (its currency, total, units, what was
captured and refunded, whether and how it was cancelled, rejected or returned) and
one per order line, plus the products' sellers and categories and the category
names. The queries (``projections.analytics.sales_queries``) aggregate them per
day, ISO week or month, so a figure of a past day changes when an order of that
day is later refunded or cancelled, and the two logs may be applied in any order
(a rebuild catches up one log after the other): nothing here joins across logs at
write time.

Erasure (ADR 0024): the facts keep the customer's id, no name, email or address;
but a shopper's cancellation reason is free text they wrote, which reads as
``ERASED_TEXT`` once they are erased. The view follows the users log for
``User.Erased`` and remembers erasures (``analytics_erased_customers``), so that a
cancellation applied after one is written blanked too: the only write here that
looks across logs, which is why the view is ``serialised``.

What counts as a sale: an order that was confirmed (payment authorized, or nothing
to pay) and not cancelled before any money was captured. An order cancelled after
capture stays a sale; its refund takes it out of the net revenue.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL

from domain.catalog import Product
from domain.categories import Category
from domain.orders import Order
from domain.users import ERASED_TEXT, User
from projections.catalog.shared_tables import CATEGORY_COLUMNS, apply_category
from projections.engine import View, ViewProjection


class SalesView(View):
    name = "analytics_sales"
    follows = ("ordering", "catalog", "users")
    serialised = True  # an erasure and a cancellation take turns (module docstring)
    tables = {
        "analytics_orders": """
            order_id uuid PRIMARY KEY,
            customer_id uuid NOT NULL,
            currency text NOT NULL,
            total numeric NOT NULL,
            units integer NOT NULL,
            placed_at timestamptz NOT NULL,
            confirmed boolean NOT NULL DEFAULT false,
            is_sale boolean NOT NULL DEFAULT false,
            captured numeric NOT NULL DEFAULT 0,
            refunded numeric NOT NULL DEFAULT 0,
            refunds integer NOT NULL DEFAULT 0,
            cancelled_at timestamptz,
            cancellation_reason text,
            cancelled_by_admin boolean,
            rejected_at timestamptz,
            rejection_reason text,
            returned_at timestamptz
        """,
        "analytics_order_lines": """
            order_id uuid NOT NULL,
            sku text NOT NULL,
            product_id uuid NOT NULL,
            quantity integer NOT NULL,
            currency text NOT NULL,
            amount numeric NOT NULL,
            placed_at timestamptz NOT NULL,
            PRIMARY KEY (order_id, sku)
        """,
        "analytics_products": """
            product_id uuid PRIMARY KEY,
            seller_id uuid NOT NULL,
            name text NOT NULL,
            category_ids uuid[] NOT NULL DEFAULT ARRAY[]::uuid[]
        """,
        "analytics_categories": CATEGORY_COLUMNS,
        "analytics_erased_customers": """
            customer_id uuid PRIMARY KEY
        """,
    }
    indexes = [
        "CREATE INDEX IF NOT EXISTS analytics_orders_placed ON {schema}.analytics_orders "
        "(placed_at, currency)",
        "CREATE INDEX IF NOT EXISTS analytics_lines_placed ON {schema}.analytics_order_lines "
        "(placed_at, product_id)",
        "CREATE INDEX IF NOT EXISTS analytics_products_seller ON {schema}.analytics_products "
        "(seller_id)",
        # An erasure finds the customer's orders (ADR 0024).
        "CREATE INDEX IF NOT EXISTS analytics_orders_customer ON {schema}.analytics_orders "
        "(customer_id)",
    ]

    @staticmethod
    def erase_customer(cursor: Cursor[DictRow], customer_id: UUID) -> None:
        """Blank the customer's own cancellation reasons; again, nothing."""
        cursor.execute(
            "INSERT INTO analytics_erased_customers VALUES (%s) ON CONFLICT DO NOTHING",
            (customer_id,),
        )
        cursor.execute(
            "UPDATE analytics_orders SET cancellation_reason = %s "
            "WHERE customer_id = %s AND NOT cancelled_by_admin",
            (ERASED_TEXT, customer_id),
        )

    @staticmethod
    def customer_erased(cursor: Cursor[DictRow], order_id: UUID) -> bool:
        cursor.execute(
            "SELECT 1 FROM analytics_orders o JOIN analytics_erased_customers e "
            "USING (customer_id) WHERE o.order_id = %s",
            (order_id,),
        )
        return cursor.fetchone() is not None


class SalesProjection(ViewProjection[SalesView]):
    name = "analytics_sales"

    def apply(self, event: Any, cursor: Cursor[DictRow]) -> None:
        if isinstance(event, User.Erased):
            self.view.erase_customer(cursor, event.originator_id)
        elif isinstance(event, Order.Event):
            self._order(event, cursor)
        elif isinstance(event, Product.Event):
            self._product(event, cursor)
        elif isinstance(event, Category.Event):
            apply_category(cursor, event, "analytics_categories")

    def _order(self, event: Any, cursor: Cursor[DictRow]) -> None:
        order_id = event.originator_id
        match event:
            case Order.Placed():
                currency = event.total["currency"]
                cursor.execute(
                    "INSERT INTO analytics_orders (order_id, customer_id, currency, total, "
                    "units, placed_at) VALUES (%s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (order_id) DO NOTHING",
                    (
                        order_id,
                        event.customer_id,
                        currency,
                        Decimal(event.total["amount"]),
                        sum(int(line["quantity"]) for line in event.lines),
                        event.at,
                    ),
                )
                cursor.executemany(
                    "INSERT INTO analytics_order_lines VALUES (%s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT DO NOTHING",
                    [
                        (
                            order_id,
                            line["sku"],
                            line["product_id"],
                            int(line["quantity"]),
                            currency,
                            Decimal(line["unit_price"]["amount"]) * int(line["quantity"]),
                            event.at,
                        )
                        for line in event.lines
                    ],
                )
            case Order.Confirmed() | Order.ConfirmedWithoutPayment():
                _set(cursor, order_id, "confirmed = true, is_sale = true")
            case Order.Rejected():
                _set(
                    cursor,
                    order_id,
                    "rejected_at = %s, rejection_reason = %s",
                    event.at,
                    event.reason,
                )
            case Order.Cancelled():
                erased = not event.by_admin and self.view.customer_erased(cursor, order_id)
                # Cancelled before any capture: no money moved, no sale.
                _set(
                    cursor,
                    order_id,
                    "cancelled_at = %s, cancellation_reason = %s, cancelled_by_admin = %s, "
                    "is_sale = is_sale AND captured > 0",
                    event.at,
                    ERASED_TEXT if erased else event.reason,
                    event.by_admin,
                )
            case Order.Returned():
                _set(cursor, order_id, "returned_at = %s", event.at)
            case Order.PaymentCaptured():
                _set(cursor, order_id, "captured = captured + %s", Decimal(event.amount["amount"]))
            case Order.Refunded():
                _set(
                    cursor,
                    order_id,
                    "refunded = refunded + %s, refunds = refunds + 1",
                    Decimal(event.amount["amount"]),
                )

    def _product(self, event: Any, cursor: Cursor[DictRow]) -> None:
        match event:
            case Product.Created():
                cursor.execute(
                    "INSERT INTO analytics_products (product_id, seller_id, name) "
                    "VALUES (%s, %s, %s) ON CONFLICT (product_id) DO NOTHING",
                    (event.originator_id, event.seller_id, event.name),
                )
            case Product.DetailsUpdated() if "name" in event.changes:
                cursor.execute(
                    "UPDATE analytics_products SET name = %s WHERE product_id = %s",
                    (event.changes["name"], event.originator_id),
                )
            case Product.Categorised():
                cursor.execute(
                    "UPDATE analytics_products SET category_ids = %s WHERE product_id = %s",
                    (list(event.category_ids), event.originator_id),
                )


def _set(cursor: Cursor[DictRow], order_id: Any, assignments: str, *values: Any) -> None:
    cursor.execute(
        SQL("UPDATE analytics_orders SET {0} WHERE order_id = %s").format(
            SQL(assignments)  # our own constant text, never input
        ),
        (*values, order_id),
    )
