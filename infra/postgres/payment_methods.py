"""The Postgres home of checkout's payment method tokens (``PaymentMethods`` port):
kept from checkout until the saga has decided the order's payment, then deleted.
Gateway tokens only (the edge refuses card data before anything gets here)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg_pool import ConnectionPool

DDL = """
CREATE TABLE IF NOT EXISTS public.checkout_payment_methods (
    order_id uuid PRIMARY KEY,
    token text NOT NULL,
    kept_at timestamptz NOT NULL DEFAULT now()
);
"""


class PostgresPaymentMethods:
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def keep(self, order_id: UUID, token: str) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO public.checkout_payment_methods (order_id, token) VALUES (%s, %s) "
                "ON CONFLICT (order_id) DO UPDATE SET token = EXCLUDED.token",
                (order_id, token),
            )

    def token_for(self, order_id: UUID) -> str | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT token FROM public.checkout_payment_methods WHERE order_id = %s",
                (order_id,),
            ).fetchone()
        return None if row is None else str(row[0])

    def forget(self, order_id: UUID) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "DELETE FROM public.checkout_payment_methods WHERE order_id = %s", (order_id,)
            )
