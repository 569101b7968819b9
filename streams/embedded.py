"""The embedded runner: the ``shop run`` process follows each event store directly
(Postgres LISTEN/NOTIFY through ``eventsourcing.projection``) and keeps every
projection and policy current.

Per projection it catches up in batches, then hands over to a library
``ProjectionRunner`` per upstream log. A watchdog restarts a runner that failed
(with backoff; the error is kept for status) and moves a projection onto a new
generation when a rebuild has swapped one in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import TrackingRecorder
from eventsourcing.projection import BaseProjectionRunner, Projection
from eventsourcing.utils import EnvType

from projections.engine import View
from streams.replay import catch_up

log = logging.getLogger(__name__)

WATCH_INTERVAL = 0.5
MAX_BACKOFF = 30.0


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


@dataclass
class _Running:
    generation: int
    runners: list[BaseProjectionRunner[Any]]
    failures: int = 0
    retry_at: float = 0.0
    last_error: str | None = None


@dataclass
class EmbeddedRunner:
    specs: list[ProjectionSpec]
    app_env: EnvType
    active_generations: Callable[[], dict[str, int]]
    """Reads the generation registry (a rebuild elsewhere may have changed it)."""
    ensure_generation: Callable[[ProjectionSpec], int]
    """The generation to serve, created and activated if there is none yet."""
    _running: dict[str, _Running] = field(default_factory=dict)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _watchdog: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for spec in self.specs:
            generation = self.ensure_generation(spec)
            self._running[spec.name] = _Running(generation, self._start(spec, generation))
        self._watchdog = threading.Thread(
            target=self._watch, name="projection-watchdog", daemon=True
        )
        self._watchdog.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._watchdog is not None:
            self._watchdog.join()
        with self._lock:
            for running in self._running.values():
                self._close(running)

    def errors(self) -> dict[str, str]:
        """The last failure of each projection that has failed since start."""
        with self._lock:
            return {n: r.last_error for n, r in self._running.items() if r.last_error}

    def _start(self, spec: ProjectionSpec, generation: int) -> list[BaseProjectionRunner[Any]]:
        view = spec.make_view(generation)
        projection = spec.make_projection(view)
        if isinstance(view, View):
            # Every log first, so that no live runner feeds the view during a batch.
            for app_class in spec.upstream:
                app = app_class(self.app_env)
                try:
                    catch_up(app, view, projection)
                finally:
                    app.close()
        runners: list[BaseProjectionRunner[Any]] = []
        for app_class in spec.upstream:
            runner: BaseProjectionRunner[Any] = BaseProjectionRunner(
                projection=projection,
                application_class=app_class,
                tracking_recorder=view,
                topics=(),
                env=self.app_env,
            )
            runner.__enter__()
            runners.append(runner)
        return runners

    def _watch(self) -> None:
        while not self._stopping.wait(WATCH_INTERVAL):
            generations = self.active_generations()
            for spec in self.specs:
                with self._lock:
                    self._tend(spec, self._running[spec.name], generations)

    def _tend(self, spec: ProjectionSpec, running: _Running, generations: dict[str, int]) -> None:
        now = time.monotonic()
        if running.runners:
            error = self._failure(running)
            target = generations.get(spec.name, running.generation)
            if error is None and (target == running.generation or not spec.rebuildable):
                return
            self._close(running)
            running.generation = target if spec.rebuildable else running.generation
            if error is not None:
                self._failed(spec, running, error, now)
        if now < running.retry_at:
            return
        try:
            running.runners = self._start(spec, running.generation)
        except Exception as error:  # noqa: BLE001 - kept for status, retried with backoff
            self._failed(spec, running, f"{type(error).__name__}: {error}", now)

    @staticmethod
    def _failed(spec: ProjectionSpec, running: _Running, error: str, now: float) -> None:
        running.failures += 1
        running.last_error = error
        running.retry_at = now + min(MAX_BACKOFF, 2.0 ** min(running.failures, 5))
        log.error(
            "projection %s failed (%s); restarting in %.0fs",
            spec.name,
            error,
            running.retry_at - now,
        )

    @staticmethod
    def _failure(running: _Running) -> str | None:
        for runner in running.runners:
            if runner.is_interrupted.is_set():
                try:
                    runner.run_forever(timeout=0)
                except Exception as error:  # noqa: BLE001 - reported, then restarted
                    return f"{type(error).__name__}: {error}"
                return "stopped"
        return None

    @staticmethod
    def _close(running: _Running) -> None:
        for runner in running.runners:
            try:
                runner.__exit__(None, None, None)
            except Exception:
                log.debug("runner closed with an error", exc_info=True)
        running.runners = []
