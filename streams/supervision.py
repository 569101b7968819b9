"""The one supervised loop every background worker of a process runs in (log
followers, the projection watchdog, the LISTEN connection, the sweep of abandoned
authentications, the product cache follower, the search indexer).

A loop repeats a step. A step that raises is logged, kept for ``/health`` and
retried after a backoff that doubles up to a ceiling; nothing that a step raises
ends the thread, so a database, Redis or broker that goes away and comes back is
survived without a restart: the step resumes from the positions in the database.
What counts as a dependency being away (``TRANSIENT``) is also what the HTTP layer
answers 503 for, and what runners retry without dead-lettering an event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psycopg
import psycopg_pool
import redis
from eventsourcing import persistence

from commands.ordering.payment_gateway import GatewayUnavailable

log = logging.getLogger(__name__)

TRANSIENT: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg_pool.PoolTimeout,
    persistence.OperationalError,
    persistence.InterfaceError,
    redis.ConnectionError,
    redis.TimeoutError,
    GatewayUnavailable,
)
"""A dependency that is down or timed out, not a fault of the work at hand."""
FIRST_BACKOFF = 0.2
MAX_BACKOFF = 30.0


def backoff(failures: int, first: float = FIRST_BACKOFF, ceiling: float = MAX_BACKOFF) -> float:
    """Seconds to wait after ``failures`` failures in a row."""
    return float(min(ceiling, first * 2 ** max(0, failures - 1)))


class Supervised:
    """Runs ``step`` in a daemon thread until stopped. ``step`` answers True when it
    is idle (caught up): the loop then waits ``interval`` or until woken; False runs
    it again at once."""

    def __init__(
        self,
        name: str,
        step: Callable[[], bool],
        interval: float,
        *,
        wake: threading.Event | None = None,
        max_backoff: float = MAX_BACKOFF,
    ) -> None:
        self.name = name
        self._step = step
        self._interval = interval
        self._wake = wake or threading.Event()
        self._max_backoff = max_backoff
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0
        self.last_error: str | None = None
        self.failed_at: float | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def wake(self) -> None:
        self._wake.set()

    def recovered(self) -> None:
        """For a step that runs long (a connection's whole life): it works again."""
        self.failures, self.last_error = 0, None

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                idle = self._step()
            except Exception as error:  # noqa: BLE001 - kept for /health, logged, retried
                self.failures += 1
                self.last_error = f"{type(error).__name__}: {error}"
                self.failed_at = time.time()
                pause = backoff(self.failures, ceiling=self._max_backoff)
                log.warning("%s failed (%s); retrying in %.1fs", self.name, self.last_error, pause)
                self._stopping.wait(pause)
                continue
            self.recovered()
            if idle:
                self._wake.wait(self._interval)
