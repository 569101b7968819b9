"""Verified purchases for reviews (``commands.catalog.reviews.PurchaseHistory``): a delivered
order of the reviewer holding the product, from the orders read model."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg_pool import ConnectionPool


class OrdersPurchaseHistory:
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def order_proving_purchase(self, customer_id: UUID, product_id: UUID) -> str | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT order_id FROM read.orders WHERE customer_id = %s "
                "AND delivered_at IS NOT NULL AND product_ids @> ARRAY[%s]::uuid[] "
                "ORDER BY delivered_at LIMIT 1",
                (customer_id, product_id),
            ).fetchone()
        return None if row is None else str(row[0])
