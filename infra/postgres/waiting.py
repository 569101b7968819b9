"""The write side's ``ProjectionWaiter``: polls a projection's tracked positions."""

from __future__ import annotations

import time
from typing import Any

from psycopg_pool import ConnectionPool

from domain.positions import Position
from projections.positions import reached, tracked_position

_FIRST_POLL, _MAX_POLL = 0.002, 0.05


class PollingWaiter:
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def wait(self, projection: str, positions: list[Position], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        pause = _FIRST_POLL
        logs = {p.log for p in positions}
        while True:
            with self._pool.connection() as conn:
                tracked = {log: tracked_position(conn, projection, log) for log in logs}
            if reached(tracked, positions):
                return True
            if time.monotonic() + pause > deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, _MAX_POLL)
