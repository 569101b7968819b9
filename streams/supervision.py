"""The one supervised loop every background worker of a process runs in (log
followers, the projection watchdog, the LISTEN connection, the sweep of abandoned
authentications, the product cache follower, the search indexer), and the one list
of them (``LOOPS``) that ``/health`` reads.

A loop repeats a step. A step that raises is logged, kept for ``/health`` and
retried after a backoff that doubles up to a ceiling; nothing that a step raises
ends the thread, so a database, Redis or broker that goes away and comes back is
survived without a restart: the step resumes from the positions in the database.
What counts as a dependency being away (``TRANSIENT``) is also what the HTTP layer
answers 503 for, and what runners retry without dead-lettering an event.

Outside this helper by design: the scaled mode's asyncio roles. The relay's per-log
tasks share one event loop with aiokafka and give up after a few failures for the
container's supervisor to restart them; the worker's faust agents must retry inside
the agent that holds the events' acks; the role heartbeat must beat from the event
loop it vouches for (a thread would beat on while the loop hangs). They use
``backoff`` for their pauses.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import psycopg
import psycopg_pool
import redis
from eventsourcing import persistence

from commands import actors
from commands.ordering.payment_gateway import GatewayUnavailable
from domain.actors import Actor

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


@dataclass(frozen=True)
class LoopState:
    """How one piece of a process's background work stands, for ``/health``."""

    name: str
    running: bool
    last_error: str | None
    """The last failure, while failures go on; None once a try worked."""
    since: float | None
    """When the failures in a row began (seconds since the epoch); None while well."""


class Watched(Protocol):
    """What ``Loops`` lists: a ``Supervised`` loop, or work one of them tends (the
    projections the embedded runner's watchdog restarts)."""

    def state(self) -> LoopState: ...


class Loops:
    """The one list of a process's background work: every ``Supervised`` loop is on
    it from ``start`` to ``stop``; ``/health`` and the container read it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: list[Watched] = []

    def add(self, watched: Watched) -> None:
        with self._lock:
            if all(w is not watched for w in self._watched):
                self._watched.append(watched)

    def remove(self, watched: Watched) -> None:
        with self._lock:
            self._watched = [w for w in self._watched if w is not watched]

    def states(self) -> list[LoopState]:
        with self._lock:
            watched = list(self._watched)
        return [w.state() for w in watched]

    def errors(self) -> dict[str, str]:
        """What is failing now, by name."""
        return failing(self.states())


def failing(states: list[LoopState]) -> dict[str, str]:
    """The last error of each of ``states`` that is failing, by name."""
    return {s.name: s.last_error for s in states if s.last_error is not None}


LOOPS = Loops()
"""This process's background work."""


@dataclass
class FailureStreak:
    """Failures in a row: how many, the last one, since when, and the backoff before
    the next try. A ``Supervised`` loop keeps one; so does each projection the
    embedded runner's watchdog restarts."""

    first_backoff: float = FIRST_BACKOFF
    max_backoff: float = MAX_BACKOFF
    failures: int = 0
    last_error: str | None = None
    since: float | None = None

    def failed(self, error: Exception | str) -> float:
        """Count a failure; returns the seconds to wait before the next try."""
        self.failures += 1
        self.last_error = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        if self.since is None:
            self.since = time.time()
        return backoff(self.failures, self.first_backoff, self.max_backoff)

    def recovered(self) -> None:
        self.failures, self.last_error, self.since = 0, None, None


class Supervised:
    """Runs ``step`` in a daemon thread until stopped. ``step`` answers True when it
    is idle (caught up): the loop then waits ``interval`` or until woken; False runs
    it again at once. On ``loops`` (the process's list) from ``start`` to ``stop``."""

    def __init__(
        self,
        name: str,
        step: Callable[[], bool],
        interval: float,
        *,
        wake: threading.Event | None = None,
        max_backoff: float = MAX_BACKOFF,
        loops: Loops = LOOPS,
    ) -> None:
        self.name = name
        self._actor = Actor.system(name)
        self._step = step
        self._interval = interval
        self._wake = wake or threading.Event()
        self._streak = FailureStreak(max_backoff=max_backoff)
        self._loops = loops
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._loops.add(self)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._loops.remove(self)

    def wake(self) -> None:
        self._wake.set()

    def recovered(self) -> None:
        """For a step that runs long (a connection's whole life): it works again."""
        self._streak.recovered()

    @property
    def failures(self) -> int:
        return self._streak.failures

    @property
    def last_error(self) -> str | None:
        return self._streak.last_error

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def alive(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def state(self) -> LoopState:
        streak = self._streak
        return LoopState(self.name, self.alive, streak.last_error, streak.since)

    def _run(self) -> None:
        # The thread's own context: whatever a loop saves names the loop as its actor.
        actors.set_source(lambda: self._actor)
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                idle = self._step()
            except Exception as error:  # noqa: BLE001 - kept for /health, logged, retried
                pause = self._streak.failed(error)
                log.warning("%s failed (%s); retrying in %.1fs", self.name, self.last_error, pause)
                self._stopping.wait(pause)
                continue
            self.recovered()
            if idle:
                self._wake.wait(self._interval)
