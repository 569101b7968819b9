"""What every bounded context's Application shares: saving with a position to hand
back, and the bounded retry of optimistic-concurrency conflicts."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import ParamSpec, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Recording

from commands.actors import stamp_actor
from commands.errors import ConcurrencyConflict
from commands.tracing import stamp, tracer, tracing_on
from domain.positions import Position

CONFLICT_ATTEMPTS = 4

P = ParamSpec("P")
R = TypeVar("R")
A = TypeVar("A", bound=Aggregate)


@dataclass(frozen=True)
class Written:
    """The id of what a command created or changed, and the log position it wrote
    (None when the command changed nothing); ``also``: the positions of other logs
    it wrote to first (a shipment's capture), so that its token covers every view
    showing its effect."""

    id: UUID
    position: Position | None
    also: tuple[Position | None, ...] = ()

    @property
    def positions(self) -> list[Position]:
        return [p for p in (self.position, *self.also) if p is not None]


class ContextApplication(Application[UUID]):
    """One bounded context's event store: its own table (``<name>_events``)."""

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        # Every save's events pass here, in hand before the mapper encodes them: the
        # actor kept on each event; one span per write to the store, and its trace
        # context kept on each event.
        events = processing_event.events
        stamp_actor(events)
        if not tracing_on():
            return super()._record(processing_event)
        with tracer.start_as_current_span(
            f"save {self.name}",
            attributes={"eventshop.log": self.name, "eventshop.events": len(events)},
        ):
            stamp(events)
            return super()._record(processing_event)

    def save_all(self, *aggregates: Aggregate) -> Position | None:
        recordings = self.save(*aggregates)
        if not recordings:
            return None
        return Position(self.name, max(r.notification.id for r in recordings))

    def find(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """The aggregate, or None when there is none of this class with this id."""
        try:
            aggregate: object = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, cls) else None


def retrying_conflicts(
    attempts: int = CONFLICT_ATTEMPTS, backoff_seconds: float = 0.0
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Load-decide-save again when another writer saved the same aggregate first;
    after ``attempts``, answer 409. With ``backoff_seconds``, losers pause a random
    time (doubling up to 25x) so that they do not collide again in lockstep."""

    def decorate(handler: Callable[P, R]) -> Callable[P, R]:
        @wraps(handler)
        def retrying(*args: P.args, **kwargs: P.kwargs) -> R:
            for attempt in range(attempts):
                try:
                    return handler(*args, **kwargs)
                except IntegrityError as error:
                    if attempt == attempts - 1:
                        raise ConcurrencyConflict(
                            "the resource was changed by other requests at the same time; retry"
                        ) from error
                    if backoff_seconds:
                        ceiling = backoff_seconds * min(25, 2**attempt)
                        time.sleep(random.uniform(0, ceiling))  # noqa: S311 - jitter, not secrecy
            raise AssertionError("unreachable")

        return retrying

    return decorate


retry_on_conflict = retrying_conflicts()
