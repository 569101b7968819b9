"""The periodic sweep of abandoned payment authentications
(``commands/ordering/authentication_timeouts.py``): a supervised loop beside the projections, in
whichever process runs them. Orders awaiting authentication are read from the
orders read model, so nothing is lost to a restart."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg_pool import ConnectionPool

from commands.ordering.authentication_timeouts import AbandonedAuthentications
from domain.order_status import OrderStatus
from streams.supervision import Supervised

BATCH = 100
MAX_INTERVAL = 60.0


class OrdersAwaitingAuthentication:
    """``AwaitingAuthentication`` over ``read.orders`` (the oldest first)."""

    def __init__(self, pool: ConnectionPool[Connection[Any]]) -> None:
        self._pool = pool

    def since_before(self, moment: datetime) -> Iterable[UUID]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT order_id FROM read.orders WHERE status = %s AND updated_at < %s "
                "ORDER BY updated_at LIMIT %s",
                (OrderStatus.AWAITING_AUTHENTICATION.value, moment, BATCH),
            ).fetchall()
        return [row[0] for row in rows]


def sweeper(sweep: AbandonedAuthentications, interval: float) -> Supervised:
    """Runs ``sweep`` every ``interval`` seconds in a supervised loop (a failure is
    retried with backoff, then on schedule)."""

    def step() -> bool:
        sweep.sweep()
        return True

    return Supervised("authentication_sweeper", step, interval)


def sweep_interval(timeout_seconds: float) -> float:
    """Often enough that an abandoned order waits at most about a quarter more."""
    return min(MAX_INTERVAL, max(1.0, timeout_seconds / 4))
