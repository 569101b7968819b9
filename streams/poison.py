"""Poison events: what a runner does with an event a projection or policy cannot
apply, and how a dead letter is applied again (``shop dlq replay``).

Every runner (the embedded follower, catch-up and rebuild, the Kafka workers) hands
its pulls to ``apply_guarded``. A pull is applied as one batch; if that fails on a
dependency (``TRANSIENT``) the error goes up and the runner retries later, losing
nothing. Any other failure is looked for event by event: the event that fails is
retried on later attempts (a failure the classification missed may pass) and
dead-lettered at its ``attempts``-th failure, with the projection's position moved
past it in the same transaction, so the rest of the log flows on. See
``projections.dead_letters`` for what waits behind a letter.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent, Tracking, TrackingRecorder
from eventsourcing.projection import Projection

from commands.actors import acting_as
from domain.actors import Actor
from projections import dead_letters
from projections.dead_letters import DeadLetter
from projections.engine import Delivery, Undecodable, View, ViewProjection, apply_batch
from streams.event_traces import batch_span, traceparent_of
from streams.supervision import TRANSIENT

log = logging.getLogger(__name__)

ATTEMPTS = 3
"""Failures of one event before it is dead-lettered (the runner backs off between)."""


class PoisonSuspected(Exception):
    """An event failed, fewer times than the attempts allowed: retried later."""


@dataclass
class Failures:
    """How often each event has failed, per projection: kept by the runner across
    restarts of the projection, so that backoff and attempts add up."""

    attempts: int = ATTEMPTS
    counts: dict[tuple[str, str, int], int] = field(default_factory=dict)

    def failed(self, projection: str, tracking: Tracking) -> int:
        key = (projection, tracking.application_name, tracking.notification_id)
        self.counts[key] = self.counts.get(key, 0) + 1
        return self.counts[key]

    def forget(self, projection: str, tracking: Tracking) -> None:
        self.counts.pop((projection, tracking.application_name, tracking.notification_id), None)


def decoded(app: Application[Any], stored: StoredEvent, position: int) -> Delivery:
    """A delivery of the stored event at ``position`` of the app's log; an
    ``Undecodable`` one rather than raising."""
    try:
        event: Any = app.mapper.to_domain_event(stored)
    except Exception as error:  # noqa: BLE001 - dead-lettered with the error by every view
        event = Undecodable(stored.originator_id, f"{type(error).__name__}: {error}")
    return event, Tracking(app.name, position)


def apply_guarded(
    view: TrackingRecorder,
    projection: Projection[Any],
    log_name: str,
    deliveries: Sequence[Delivery],
    failures: Failures,
) -> None:
    if not deliveries:
        return
    name = view.projection_name if isinstance(view, View) else projection.name
    with (
        batch_span(
            f"apply {name}",
            (traceparent_of(event) for event, _ in deliveries),
            {
                "eventshop.projection": name,
                "eventshop.log": log_name,
                "eventshop.events": len(deliveries),
                "eventshop.first_position": deliveries[0][1].notification_id,
                "eventshop.last_position": deliveries[-1][1].notification_id,
            },
        ),
        acting_as(Actor.system(name)),
    ):  # what a policy saves names it as the actor
        _apply_guarded(view, projection, log_name, deliveries, failures)


def _apply_guarded(
    view: TrackingRecorder,
    projection: Projection[Any],
    log_name: str,
    deliveries: Sequence[Delivery],
    failures: Failures,
) -> None:
    try:
        apply_batch(view, projection, log_name, deliveries)
        return
    except TRANSIENT:
        raise
    except Exception:
        if not isinstance(view, View):
            raise
    name = view.projection_name
    for delivery in deliveries:
        event, tracking = delivery
        try:
            apply_batch(view, projection, log_name, [delivery])
            failures.forget(name, tracking)
        except TRANSIENT:
            raise
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            count = failures.failed(name, tracking)
            log.error(
                "%s failed on %s:%d (%d): %s",
                name,
                log_name,
                tracking.notification_id,
                count,
                reason,
            )
            if count < failures.attempts:
                raise PoisonSuspected(reason) from error
            view.dead_letter(tracking, event.originator_id, reason)
            failures.forget(name, tracking)


@dataclass(frozen=True)
class Replayed:
    letter: DeadLetter
    failure: str | None
    """None: applied and closed; otherwise why it stays open."""


def replay(
    letters: Sequence[DeadLetter],
    app: Application[Any],
    view: View,
    projection: Projection[Any],
) -> list[Replayed]:
    """Apply one projection's open letters of one log again, oldest first; once one
    of an aggregate's letters fails, its later ones stay open behind it. A view's
    projection writes its changes past its tracking guard (its position is past the
    event already) in the transaction that closes the letter, holding the
    projection's exclusive lock (no live batch of it meanwhile). A policy's steps
    are idempotent, keyed by the event: they run first, then the letter is closed."""
    outcomes: list[Replayed] = []
    blocked: set[UUID] = set()
    for letter in letters:
        if letter.originator_id in blocked:
            outcomes.append(Replayed(letter, f"waits behind a letter of {letter.originator_id}"))
            continue
        try:
            event = _event(letter, app)
            if not isinstance(projection, ViewProjection):
                with acting_as(Actor.system(letter.projection)):
                    projection.process_event(event, Tracking(letter.log, letter.position))
            with view.datastore.transaction(commit=True) as cursor:
                dead_letters.lock_exclusively(cursor, letter.projection)
                if dead_letters.mark_replayed(cursor, letter) and isinstance(
                    projection, ViewProjection
                ):
                    projection.apply(event, cursor)
        except TRANSIENT:
            raise
        except Exception as error:  # noqa: BLE001 - reported to the operator, letter kept open
            blocked.add(letter.originator_id)
            outcomes.append(Replayed(letter, f"{type(error).__name__}: {error}"))
            continue
        outcomes.append(Replayed(letter, None))
    return outcomes


def _event(letter: DeadLetter, app: Application[Any]) -> Any:
    notifications = app.recorder.select_notifications(start=letter.position, limit=1)
    if not notifications or notifications[0].id != letter.position:
        raise LookupError(f"{letter.log}:{letter.position} is not in the event store")
    return app.mapper.to_domain_event(notifications[0])
