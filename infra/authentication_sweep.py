"""The periodic sweep of abandoned payment authentications
(``commands/authentication_timeouts.py``): a thread beside the projections, in
whichever process runs them. Orders awaiting authentication are read from the
orders read model, so nothing is lost to a restart."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import PersistenceError
from psycopg import Connection
from psycopg import Error as DatabaseError
from psycopg_pool import ConnectionPool

from commands.authentication_timeouts import AbandonedAuthentications
from domain.orders import OrderStatus

log = logging.getLogger(__name__)

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


class AuthenticationSweeper:
    """Runs ``sweep`` every ``interval`` seconds until stopped."""

    def __init__(self, sweep: AbandonedAuthentications, interval: float) -> None:
        self._sweep = sweep
        self._interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="authentication-sweeper", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self._sweep.sweep()
                self.last_error = None
            except (DatabaseError, PersistenceError) as error:  # try again next time
                self.last_error = f"{type(error).__name__}: {error}"
                log.exception("the sweep of abandoned authentications failed")


def sweep_interval(timeout_seconds: float) -> float:
    """Often enough that an abandoned order waits at most about a quarter more."""
    return min(MAX_INTERVAL, max(1.0, timeout_seconds / 4))
