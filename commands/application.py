"""What every bounded context's Application shares: saving with a position to hand
back, and the bounded retry of optimistic-concurrency conflicts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import ParamSpec, TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from commands.errors import ConcurrencyConflict
from domain.positions import Position

CONFLICT_ATTEMPTS = 4

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Written:
    """The id of what a command created or changed, and the log position it wrote
    (None when the command changed nothing)."""

    id: UUID
    position: Position | None


class ContextApplication(Application[UUID]):
    """One bounded context's event store: its own table (``<name>_events``)."""

    def save_all(self, *aggregates: Aggregate) -> Position | None:
        recordings = self.save(*aggregates)
        if not recordings:
            return None
        return Position(self.name, max(r.notification.id for r in recordings))


def retry_on_conflict(handler: Callable[P, R]) -> Callable[P, R]:
    """Load-decide-save again when another writer saved the same aggregate first;
    after a few attempts, answer 409."""

    @wraps(handler)
    def retrying(*args: P.args, **kwargs: P.kwargs) -> R:
        for _ in range(CONFLICT_ATTEMPTS - 1):
            try:
                return handler(*args, **kwargs)
            except IntegrityError:
                continue
        try:
            return handler(*args, **kwargs)
        except IntegrityError as error:
            raise ConcurrencyConflict(
                "the resource was changed by another request at the same time; retry"
            ) from error

    return retrying
