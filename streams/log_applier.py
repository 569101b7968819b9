"""Applies one log's relayed events to every projection and policy that follows it,
in the log's order: the stream worker's core, free of faust (which feeds it).

Events come in through ``offer`` (any order, copies included) and wait in a
``Resequencer``; each ``step`` hands every read model the run of events that follows
its tracked position, in one transaction per read model (``View.batch``), with the
same projection objects the embedded runner uses (built by the same
``ProjectionSpec``). An event comes back to be acknowledged once every read model
has applied it. A step holds a Postgres advisory lock on the log, so that while a
rebalance moves the log between workers two steps never apply it at once.

- A poison event (a projection raises): ``streams.poison`` retries it on later steps
  and dead-letters it (in the read model's database, with the tracking that moves
  past it), so the log flows on.
- A gap that Kafka does not fill within ``gap_timeout`` (messages gone: retention,
  a broker that lost its data, a read model behind what the group has consumed) is
  read from the event store, which is the source of truth. So is a gap behind which
  ``max_held`` events wait, whatever the time: that bounds the worker's memory.
- A rebuild that swapped in a new generation: the new view is caught up from the
  event store at once, then follows with the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import TrackingRecorder
from eventsourcing.postgres import PostgresRecorder
from eventsourcing.projection import Projection

from projections.engine import Delivery
from streams.embedded import ProjectionSpec
from streams.kafka_codec import RelayedEvent
from streams.poison import Failures, apply_guarded, decoded
from streams.resequencer import Ack, Resequencer

log = logging.getLogger(__name__)

LOCK_NAMESPACE = 0x5E1A8
BATCH_LIMIT = 2000
STORE_PAGE = 2000


@dataclass
class _Target:
    spec: ProjectionSpec
    generation: int
    view: TrackingRecorder
    projection: Projection[Any]
    stalled_since: float | None = None


class LogApplier:
    def __init__(
        self,
        app: Application[Any],
        specs: Sequence[ProjectionSpec],
        active_generations: Callable[[], dict[str, int]],
        ensure_generation: Callable[[ProjectionSpec], int],
        conninfo: str,
        gap_timeout: float,
        max_held: int,
    ) -> None:
        self.app = app
        self.log = app.name
        self.specs = [s for s in specs if any(a.name == app.name for a in s.upstream)]
        self._active_generations = active_generations
        self._ensure_generation = ensure_generation
        self._conninfo = conninfo
        self._gap_timeout = gap_timeout
        self._max_held = max_held
        self._targets: dict[str, _Target] = {}
        self._pending = Resequencer()
        self._applied_by_all = 0
        self._lock_conn: psycopg.Connection[Any] | None = None
        self._poison = Failures()

    def offer(self, event: RelayedEvent, ack: Ack) -> list[Ack]:
        """Take an event (or a copy); returns the acks due now."""
        return self._pending.offer(event, ack, self._applied_by_all)

    @property
    def held(self) -> int:
        return len(self._pending)

    def step(self) -> list[Ack]:
        """Apply what can be applied; returns the acks now due. Raises when a read
        model could not go on (the database away, or an event failing fewer times
        than its attempts): call again later, nothing is lost."""
        with self._locked():
            self._follow_generations()
            for target in self._targets.values():
                self._advance(target)
            self._applied_by_all = min(
                (self._position(t) for t in self._targets.values()), default=0
            )
            return self._pending.release(self._applied_by_all)

    def close(self) -> None:
        for target in self._targets.values():
            _close_view(target.view)
        self._targets.clear()
        if self._lock_conn is not None:
            self._lock_conn.close()
            self._lock_conn = None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if self._lock_conn is None or self._lock_conn.closed:
            self._lock_conn = psycopg.connect(self._conninfo, autocommit=True)
        conn = self._lock_conn
        conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (LOCK_NAMESPACE, self.log))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LOCK_NAMESPACE, self.log))

    @contextmanager
    def _ddl_turn(self) -> Iterator[None]:
        """Workers start together, and concurrent CREATE ... IF NOT EXISTS can fail."""
        assert self._lock_conn is not None
        self._lock_conn.execute("SELECT pg_advisory_lock(%s, 0)", (LOCK_NAMESPACE,))
        try:
            yield
        finally:
            self._lock_conn.execute("SELECT pg_advisory_unlock(%s, 0)", (LOCK_NAMESPACE,))

    def _make_view(self, spec: ProjectionSpec, generation: int) -> TrackingRecorder:
        with self._ddl_turn():
            return spec.make_view(generation)

    def _position(self, target: _Target) -> int:
        return target.view.max_tracking_id(self.log) or 0

    def _advance(self, target: _Target) -> None:
        while True:
            position = self._position(target)
            run = self._pending.chain(position, BATCH_LIMIT)
            if not run:
                if self._filled_gap(target, position):
                    continue
                return
            target.stalled_since = None
            _apply(target, [decoded(self.app, e.stored, e.position) for e in run], self._poison)

    def _filled_gap(self, target: _Target, position: int) -> bool:
        """True when a gap that waited past the timeout, or that holds back too many
        events, was read from the store."""
        gap_end = self._pending.waiting_after(position)
        if gap_end is None:
            target.stalled_since = None
            return False
        now = time.monotonic()
        if target.stalled_since is None:
            target.stalled_since = now
        waited = now - target.stalled_since
        if waited < self._gap_timeout and len(self._pending) < self._max_held:
            return False
        log.warning(
            "%s: events %s:%d..%d did not come from Kafka; reading them from the store",
            target.spec.name,
            self.log,
            position + 1,
            gap_end,
        )
        self._from_store(target, position, gap_end)
        target.stalled_since = None
        return True

    def _from_store(self, target: _Target, position: int, until: int) -> None:
        while position < until:
            notifications = self.app.recorder.select_notifications(
                start=position, limit=STORE_PAGE, stop=until, inclusive_of_start=False
            )
            if not notifications:
                return
            _apply(target, [decoded(self.app, n, n.id) for n in notifications], self._poison)
            position = notifications[-1].id

    def _follow_generations(self) -> None:
        """Build each read model's view at its active generation, and move onto a new
        generation when a rebuild swapped one in (catching it up from the store)."""
        active = self._active_generations()
        for spec in self.specs:
            current = self._targets.get(spec.name)
            generation = active.get(spec.name)
            if generation is None:
                with self._ddl_turn():
                    generation = self._ensure_generation(spec)
            if current is not None and (current.generation == generation or not spec.rebuildable):
                continue
            view = self._make_view(spec, generation)
            target = _Target(spec, generation, view, spec.make_projection(view))
            if current is not None:
                _close_view(current.view)
                head = self.app.recorder.max_notification_id() or 0
                self._from_store(target, self._position(target), head)
                log.info("%s: now on generation %d", spec.name, generation)
            self._targets[spec.name] = target


def _apply(target: _Target, deliveries: list[Delivery], poison: Failures) -> None:
    log_name = deliveries[0][1].application_name
    apply_guarded(target.view, target.projection, log_name, deliveries, poison)


def _close_view(view: TrackingRecorder) -> None:
    if isinstance(view, PostgresRecorder):
        view.datastore.close()
