"""The aggregates the notifier reads, kept as of the events it has applied, so that
deciding on an event costs no replay of the aggregate's history.

The notifier follows these logs in order: each event it is given moves the cached
aggregate forward by that one event (``mutate``), the way the repository would have
rebuilt it. A miss, a gap (an event it was not given) or an older event (a batch
retried after a failure) reads the repository instead. The cache holds the logs'
state, never the notifier's: a rolled-back batch leaves it right, as the events
are committed whether or not the notifier's decision on them was."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application

MAX_CACHED = 20_000
"""Aggregates kept per log: a few MB; the least recently used go first."""


class AggregateStates:
    def __init__(self, app: Application[Any], max_cached: int = MAX_CACHED) -> None:
        self._app = app
        self._max = max_cached
        self._cached: OrderedDict[UUID, Any] = OrderedDict()

    def at(self, event: Any) -> Any:
        """The aggregate as ``event`` left it."""
        aggregate_id, version = event.originator_id, event.originator_version
        cached = self._cached.get(aggregate_id)
        if cached is not None and cached.version == version:
            aggregate = cached
        elif cached is not None and cached.version == version - 1:
            aggregate = event.mutate(cached)
        elif cached is None and version == 1:
            aggregate = event.mutate(None)  # the created event: nothing to read
        else:
            aggregate = self._app.repository.get(aggregate_id, version=version)
            if cached is not None and cached.version > version:
                return aggregate  # an old event again: the newer state stays cached
        self._keep(aggregate_id, aggregate)
        return aggregate

    def advance(self, event: Any) -> None:
        """Move a cached aggregate on by ``event`` (one the notifier needs nothing
        from), so that ``latest`` stays true; one it missed events of is dropped."""
        cached = self._cached.get(event.originator_id)
        if cached is None and event.originator_version == 1:
            self._keep(event.originator_id, event.mutate(None))  # next, its later events
            return
        if cached is None or cached.version >= event.originator_version:
            return
        if cached.version == event.originator_version - 1:
            event.mutate(cached)
        else:
            del self._cached[event.originator_id]

    def latest(self, aggregate_id: UUID) -> Any | None:
        """The newest state the notifier knows of (read once, then moved forward by
        the events it applies); None when there is no such aggregate."""
        cached = self._cached.get(aggregate_id)
        if cached is not None:
            self._cached.move_to_end(aggregate_id)
            return cached
        try:
            aggregate: Any = self._app.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        self._keep(aggregate_id, aggregate)
        return aggregate

    def _keep(self, aggregate_id: UUID, aggregate: Any) -> None:
        self._cached[aggregate_id] = aggregate
        self._cached.move_to_end(aggregate_id)
        if len(self._cached) > self._max:
            self._cached.popitem(last=False)
