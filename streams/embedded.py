"""The embedded runner: a process follows each event store directly (Postgres
LISTEN/NOTIFY) and keeps every projection and policy current.

Per projection it catches up in batches, then joins one ``LogFollower`` per upstream
log. A follower listens to its log once for every projection that follows it: each
pull is read and decoded once, then handed to each projection as one batch (one
transaction and one tracking write per view and pull, ``View.batch``), so the cost
of live processing falls per event as the write rate rises. A watchdog restarts a
projection that failed (with backoff; the error is kept for status) and moves a
projection onto a new generation when a rebuild has swapped one in.

Followers, the watchdog and the LISTEN connection each run in a ``Supervised``
loop: a database restart or outage is survived, each resumes by itself when the
database is back. The loops and each projection are on the process's list of its
background work (``streams.supervision.LOOPS``), which ``/health`` reads. An event
a projection cannot apply is dead-lettered (``streams.poison``) after a few
attempts, and the projection goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import TrackingRecorder
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresRecorder
from eventsourcing.projection import Projection
from eventsourcing.utils import EnvType

from projections.engine import Delivery
from streams.pg_listener import ChannelListener
from streams.poison import Failures, apply_guarded, decoded
from streams.replay import catch_up
from streams.supervision import LOOPS, FailureStreak, Loops, LoopState, Supervised, failing

log = logging.getLogger(__name__)

WATCH_INTERVAL = 0.5
FIRST_RESTART = 2.0
"""Seconds before a failed projection is first restarted (doubling up to ``MAX_BACKOFF``)."""
MAX_BACKOFF = 30.0
PAGE_SIZE = 500
"""Notifications read per pull (and so the largest live batch)."""
POLL_INTERVAL = 1.0
"""Pull even without a notification this often: a missed NOTIFY delays, never loses."""
MIN_PULL_INTERVAL = 0.005
"""Pulls start at least this far apart: a quiet log is followed at once, a busy one
in batches of what this interval brings (fewer transactions per event), at the
price of at most this much more lag."""


class ProjectionPart(StrEnum):
    """Which projections a process runs: all of them, or one of two parts that two
    processes run side by side."""

    ALL = "all"
    FOREGROUND = "foreground"
    """The views commands wait for and the checkout saga."""
    BACKGROUND = "background"
    """``ProjectionSpec.background``: notifications, analytics, the audit chain."""

    def runs(self, spec: ProjectionSpec) -> bool:
        return self is ProjectionPart.ALL or spec.background == (self is ProjectionPart.BACKGROUND)


@dataclass(frozen=True)
class ProjectionSpec:
    """How to build one projection (or policy) and what it follows."""

    name: str
    tables: list[str]
    """The read model's tables, served through ``read.<table>`` views."""
    upstream: tuple[type[Application[Any]], ...]
    make_view: Callable[[int], TrackingRecorder]
    """Generation -> the view object (tables created)."""
    make_projection: Callable[[TrackingRecorder], Projection[Any]]
    rebuildable: bool = True
    """False for policies: replaying them would repeat their side effects."""
    background: bool = False
    """Work no command's answer waits for (notifications, analytics): it may run in
    a process of its own (``shop projections run --part background``), so that the
    checkout saga and the views a shopper reads never queue behind it."""


@dataclass
class _Member:
    """A projection as its followers see it: where it has got to in each log."""

    name: str
    view: TrackingRecorder
    projection: Projection[Any]
    positions: dict[str, int]
    failures: Failures
    error: str | None = None

    def apply(self, log_name: str, deliveries: Sequence[Delivery]) -> None:
        apply_guarded(self.view, self.projection, log_name, deliveries, self.failures)
        self.positions[log_name] = deliveries[-1][1].notification_id


class LogFollower:
    """Follows one application's log for all the projections that follow it."""

    def __init__(
        self,
        app_class: type[Application[Any]],
        env: EnvType,
        listener: ChannelListener,
        loops: Loops = LOOPS,
    ) -> None:
        # Only this follower's thread reads through it: one connection, no overflow.
        self.app = app_class({**env, "POSTGRES_MAX_OVERFLOW": "0"})
        self.name = self.app.name
        self._listener = listener
        self._members: dict[str, _Member] = {}
        self._lock = threading.Lock()
        """Held while a member is changed or fed, so a member leaves between batches."""
        self._wake = threading.Event()
        self._subscribed = False
        self._pulled_at = 0.0
        recorder = self.app.recorder
        assert isinstance(recorder, PostgresApplicationRecorder)
        self._channel = recorder.channel_name
        # All notifications received during a pull come as one wake: one pull.
        self.loop = Supervised(
            f"follow-{self.name}", self._step, POLL_INTERVAL, wake=self._wake, loops=loops
        )
        self.loop.start()

    def join(self, member: _Member) -> None:
        with self._lock:
            self._members[member.name] = member
        self._wake.set()

    def leave(self, name: str) -> None:
        with self._lock:
            self._members.pop(name, None)

    def stop(self) -> None:
        self.loop.stop()
        self._listener.unsubscribe(self._channel, self._wake)
        self.app.close()

    def follows(self, member: _Member) -> bool:
        with self._lock:
            return self._members.get(member.name) is member

    def _step(self) -> bool:
        if not self._subscribed:
            self._listener.subscribe(self._channel, self._wake)
            self._subscribed = True
        time.sleep(max(0.0, self._pulled_at + MIN_PULL_INTERVAL - time.monotonic()))
        self._pulled_at = time.monotonic()
        return not self._pull()

    def _pull(self) -> bool:
        """Read the next page after the member that is furthest behind and feed it to
        every member; True when the page was full (more may be waiting). A member
        that fails leaves (the watchdog restarts it); a failed read is retried by
        the loop, the members untouched."""
        with self._lock:
            members = list(self._members.values())
        if not members:
            return False
        start = min(m.positions[self.name] for m in members)
        notifications = self.app.recorder.select_notifications(
            start=start, limit=PAGE_SIZE, inclusive_of_start=False
        )
        if not notifications:
            return False
        deliveries = [decoded(self.app, n, n.id) for n in notifications]
        for member in members:
            with self._lock:
                if self._members.get(member.name) is not member:
                    continue  # it left meanwhile
                position = member.positions[self.name]
                pending = [d for d in deliveries if d[1].notification_id > position]
                if not pending:
                    continue
                try:
                    member.apply(self.name, pending)
                except Exception as error:  # noqa: BLE001 - kept for status, restarted
                    member.error = f"{type(error).__name__}: {error}"
                    del self._members[member.name]
        return len(notifications) == PAGE_SIZE


@dataclass
class _Running:
    """A projection as the watchdog tends it (and ``/health`` lists it)."""

    name: str
    generation: int | None
    member: _Member | None = None
    streak: FailureStreak = field(default_factory=lambda: FailureStreak(FIRST_RESTART, MAX_BACKOFF))
    retry_at: float = 0.0

    def state(self) -> LoopState:
        streak = self.streak
        return LoopState(self.name, self.member is not None, streak.last_error, streak.since)


@dataclass
class EmbeddedRunner:
    specs: list[ProjectionSpec]
    app_env: EnvType
    active_generations: Callable[[], dict[str, int]]
    """Reads the generation registry (a rebuild elsewhere may have changed it)."""
    ensure_generation: Callable[[ProjectionSpec], int]
    """The generation to serve, created and activated if there is none yet."""
    conninfo: str
    """For the one LISTEN connection every follower shares."""
    poison: Failures = field(default_factory=Failures)
    loops: Loops = LOOPS
    """Where its loops and projections are listed (the process's list)."""
    _running: dict[str, _Running] = field(default_factory=dict)
    _followers: dict[type[Application[Any]], LogFollower] = field(default_factory=dict)
    _watchdog: Supervised | None = None
    _listener: ChannelListener | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        """Catch each projection up and follow its logs. Never raises for a
        projection that cannot start (the database away, say): the watchdog
        retries it with backoff, and ``errors`` says why."""
        self._listener = ChannelListener(self.conninfo, self.loops)
        with self._lock:
            for spec in self.specs:
                running = self._running[spec.name] = _Running(spec.name, generation=None)
                self.loops.add(running)
                self._tend(spec, running, {})
        self._watchdog = Supervised(
            "projection-watchdog", self._watch, WATCH_INTERVAL, loops=self.loops
        )
        self._watchdog.start()

    def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.stop()
        with self._lock:
            for spec in self.specs:
                running = self._running[spec.name]
                self._close(spec, running)
                self.loops.remove(running)
            for follower in self._followers.values():
                follower.stop()
            self._followers.clear()
        if self._listener is not None:
            self._listener.stop()

    def errors(self) -> dict[str, str]:
        """What of this runner is failing now: each projection that has not recovered
        from its last failure, and each loop retrying one (its part of ``loops``)."""
        with self._lock:
            watched: list[_Running | Supervised] = list(self._running.values())
            watched += [f.loop for f in self._followers.values()]
        watched += [
            loop for loop in (self._watchdog, self._listener and self._listener.loop) if loop
        ]
        return failing([w.state() for w in watched])

    def _start(self, spec: ProjectionSpec, generation: int) -> _Member:
        view = spec.make_view(generation)
        projection = spec.make_projection(view)
        positions: dict[str, int] = {}
        # Every log first, so that no follower feeds the view during a batch.
        for app_class in spec.upstream:
            app = app_class(self.app_env)
            try:
                positions[app.name] = catch_up(app, view, projection, failures=self.poison)
            finally:
                app.close()
        member = _Member(spec.name, view, projection, positions, self.poison)
        for app_class in spec.upstream:
            self._follower(app_class).join(member)
        return member

    def _follower(self, app_class: type[Application[Any]]) -> LogFollower:
        follower = self._followers.get(app_class)
        if follower is None:
            assert self._listener is not None, "started"
            follower = LogFollower(app_class, self.app_env, self._listener, self.loops)
            self._followers[app_class] = follower
        return follower

    def _watch(self) -> bool:
        generations = self.active_generations()
        for spec in self.specs:
            with self._lock:
                self._tend(spec, self._running[spec.name], generations)
        return True

    def _tend(self, spec: ProjectionSpec, running: _Running, generations: dict[str, int]) -> None:
        now = time.monotonic()
        if running.member is not None:
            error = self._failure(spec, running.member)
            target = generations.get(spec.name, running.generation)
            if error is None and (target == running.generation or not spec.rebuildable):
                running.streak.recovered()
                return
            self._close(spec, running)
            running.generation = target if spec.rebuildable else running.generation
            if error is not None:
                self._failed(spec, running, error, now)
        if now < running.retry_at:
            return
        try:
            if running.generation is None:
                running.generation = self.ensure_generation(spec)
            running.member = self._start(spec, running.generation)
        except Exception as error:  # noqa: BLE001 - kept for status, retried with backoff
            self._failed(spec, running, error, now)

    @staticmethod
    def _failed(
        spec: ProjectionSpec, running: _Running, error: Exception | str, now: float
    ) -> None:
        pause = running.streak.failed(error)
        running.retry_at = now + pause
        log.error(
            "projection %s failed (%s); restarting in %.0fs",
            spec.name,
            running.streak.last_error,
            pause,
        )

    def _failure(self, spec: ProjectionSpec, member: _Member) -> str | None:
        for app_class in spec.upstream:
            follower = self._followers.get(app_class)
            if follower is None or not follower.follows(member):
                return member.error or "stopped"
        return member.error

    def _close(self, spec: ProjectionSpec, running: _Running) -> None:
        member, running.member = running.member, None
        if member is None:
            return
        for app_class in spec.upstream:
            follower = self._followers.get(app_class)
            if follower is not None:
                follower.leave(member.name)
        if isinstance(member.view, PostgresRecorder):
            member.view.datastore.close()
