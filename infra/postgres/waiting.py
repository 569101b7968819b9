"""The write side's ``ProjectionWaiter``: polls a projection's tracked positions."""

from __future__ import annotations

from typing import Any

from psycopg_pool import ConnectionPool

from domain.positions import Position
from projections.positions import reached_now, wait_until


class PollingWaiter:
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def wait(self, projection: str, positions: list[Position], timeout: float) -> bool:
        def done() -> bool:
            with self._pool.connection() as conn:
                return reached_now(conn, projection, positions)

        return wait_until(done, timeout)
