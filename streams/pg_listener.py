"""One LISTEN connection per process for every event log it follows.

Each log's followers used to hold a connection of their own just to wait for
NOTIFY; a ``shop run`` follows ten logs (the checkout saga's partitions follow the
ordering log separately), so that was ten idle connections per process against a
server whose ``max_connections`` every process and worker shares. Here one thread
waits on one connection and wakes the followers of the channel that was notified.
A missed notification only delays: followers also pull on a timer.
"""

from __future__ import annotations

import threading
from collections import defaultdict

import psycopg
from psycopg.sql import SQL, Identifier

from streams.supervision import LOOPS, Loops, Supervised

TICK = 0.1
"""How long one wait for a notification blocks, so that new channels and stopping
are noticed."""
MAX_BACKOFF = 10.0
APPLICATION_NAME = "eventshop-listener"
"""How the connection shows in ``pg_stat_activity``."""


class ChannelListener:
    """Wakes the events subscribed to a channel whenever it is notified."""

    def __init__(self, conninfo: str, loops: Loops = LOOPS) -> None:
        self._conninfo = conninfo
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[threading.Event]] = defaultdict(set)
        self._listening: set[str] = set()
        self._changed = threading.Condition(self._lock)
        self.loop = Supervised(
            "pg-listener", self._session, 0.0, max_backoff=MAX_BACKOFF, loops=loops
        )
        self.loop.start()

    def subscribe(self, channel: str, wake: threading.Event, timeout: float = 30.0) -> None:
        """Returns once the channel is listened to: no later NOTIFY can be missed, so a
        pull after this returns sees, or is woken for, every later commit."""
        with self._changed:
            self._subscribers[channel].add(wake)
            if not self._changed.wait_for(
                lambda: channel in self._listening or self.loop.stopping, timeout
            ):
                raise TimeoutError(f"could not LISTEN to {channel} within {timeout} s")

    def unsubscribe(self, channel: str, wake: threading.Event) -> None:
        with self._lock:
            self._subscribers[channel].discard(wake)

    def stop(self) -> None:
        self.loop.stop()
        with self._changed:
            self._changed.notify_all()  # a subscriber still waiting gives up

    def _session(self) -> bool:
        """One connection's life: LISTEN to every channel until stopped or failed.
        Whatever was notified while it was down is pulled when it fails."""
        try:
            with psycopg.connect(
                self._conninfo, autocommit=True, application_name=APPLICATION_NAME
            ) as conn:
                self._listen(conn)
        finally:
            with self._lock:
                self._listening.clear()
            self._wake_all()
        return True

    def _listen(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        while not self.loop.stopping:
            with self._lock:
                new = set(self._subscribers) - self._listening
            for channel in new:
                conn.execute(SQL("LISTEN {0}").format(Identifier(channel)))
            if new:
                with self._changed:
                    self._listening |= new
                    self._changed.notify_all()
                self.loop.recovered()
            for notify in conn.notifies(timeout=TICK):
                with self._lock:
                    woken = list(self._subscribers.get(notify.channel, ()))
                for wake in woken:
                    wake.set()

    def _wake_all(self) -> None:
        with self._lock:
            woken = [wake for wakes in self._subscribers.values() for wake in wakes]
        for wake in woken:
            wake.set()
