"""The operator's resend (``commands.notifications.resending.Resends``): the delivery
log's own ``resend``, and the delivery's state to say why one was refused."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg_pool import ConnectionPool

from infra.postgres.notifications import PostgresDeliveryLog


class PostgresResends:
    def __init__(self, log: PostgresDeliveryLog, pool: ConnectionPool[Any]) -> None:
        self._log = log
        self._pool = pool

    def resend(self, delivery_id: UUID, at: datetime) -> bool:
        return self._log.resend(delivery_id, at)

    def state_of(self, delivery_id: UUID) -> str | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT state FROM notify.deliveries WHERE id = %s", (delivery_id,)
            ).fetchone()
        return None if row is None else str(row[0])
