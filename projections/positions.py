"""How far each projection has got: the basis of read-your-writes and of lag figures,
and the one wait for a position to be reached (``wait_until``, ``wait_until_async``):
the write side's waiter, the read API's read-your-writes and the search index's
catch-up all poll through it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg.sql import SQL, Identifier

from domain.positions import Position
from projections.generations import READ_SCHEMA, tracking_view

FIRST_POLL = 0.002
MAX_POLL = 0.05
"""A wait polls after 2 ms, then ever less often (doubling) up to every 50 ms."""


def _tracked_sql(projection: str) -> SQL | Any:
    return SQL("SELECT notification_id FROM {0}.{1} WHERE application_name = %s").format(
        Identifier(READ_SCHEMA), Identifier(tracking_view(projection))
    )


def tracked_position(conn: Connection[Any], projection: str, log: str) -> int:
    row = conn.execute(_tracked_sql(projection), (log,)).fetchone()
    return int(row[0]) if row else 0


async def tracked_position_async(conn: AsyncConnection[Any], projection: str, log: str) -> int:
    cursor = await conn.execute(_tracked_sql(projection), (log,))
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


def reached(tracked: dict[str, int], positions: list[Position]) -> bool:
    return all(tracked.get(p.log, 0) >= p.id for p in positions)


def reached_now(conn: Connection[Any], projection: str, positions: list[Position]) -> bool:
    """Whether ``projection`` has processed every one of ``positions``."""
    logs = {p.log for p in positions}
    return reached({log: tracked_position(conn, projection, log) for log in logs}, positions)


async def reached_now_async(
    conn: AsyncConnection[Any], projection: str, positions: list[Position]
) -> bool:
    logs = {p.log for p in positions}
    tracked = {log: await tracked_position_async(conn, projection, log) for log in logs}
    return reached(tracked, positions)


class _Polls:
    """The pauses between the polls of one wait: doubling from ``FIRST_POLL`` up to
    ``MAX_POLL``, none left once the next would end past the deadline."""

    def __init__(self, timeout: float) -> None:
        self._deadline = time.monotonic() + timeout
        self._pause = FIRST_POLL

    def next(self) -> float | None:
        pause = self._pause
        if time.monotonic() + pause > self._deadline:
            return None
        self._pause = min(pause * 2, MAX_POLL)
        return pause


def wait_until(done: Callable[[], bool], timeout: float) -> bool:
    """Poll ``done`` until it answers True (True) or ``timeout`` seconds pass (False).
    Each poll should take its connection for the poll only, never across the pauses."""
    polls = _Polls(timeout)
    while not done():
        pause = polls.next()
        if pause is None:
            return False
        time.sleep(pause)
    return True


async def wait_until_async(done: Callable[[], Awaitable[bool]], timeout: float) -> bool:
    """``wait_until`` on the event loop."""
    polls = _Polls(timeout)
    while not await done():
        pause = polls.next()
        if pause is None:
            return False
        await asyncio.sleep(pause)
    return True


@dataclass(frozen=True)
class ProjectionStatus:
    """Where a projection stands in one log it follows (lag counts ids, an upper
    bound on events: ids can have gaps)."""

    name: str
    log: str
    generation: int | None
    position: int
    head: int

    @property
    def lag(self) -> int:
        return max(0, self.head - self.position)
