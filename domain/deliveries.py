"""Each final outcome of a notification's delivery, as an event: sent (with the
provider's message id), failed (with the reason) or suppressed. One aggregate per
outcome, its id derived from the delivery and the attempt, so the record of one
attempt is written once however often it is offered; a delivery sent again after a
crash (docs/adr/0017-notifications.md) has two ``sent`` outcomes, as it happened."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

FINAL_OUTCOMES = frozenset({"sent", "failed", "suppressed"})
_NAMESPACE = UUID("0f8b2a53-5c2e-4f0e-a7f4-3c1b8d9e6a10")


def outcome_id(delivery_id: UUID, attempt: int) -> UUID:
    return uuid5(_NAMESPACE, f"{delivery_id}/{attempt}")


class DeliveryOutcome(Aggregate):
    @staticmethod
    def create_id(delivery_id: UUID, attempt: int, **_: object) -> UUID:
        return outcome_id(delivery_id, attempt)

    class Recorded(Aggregate.Created):
        delivery_id: UUID
        attempt: int
        notification_id: UUID
        kind: str
        channel: str
        user_id: UUID | None
        outcome: str
        provider_message_id: str | None
        error: str | None
        decided_at: datetime
        finished_at: datetime

    @event(Recorded)
    def __init__(
        self,
        delivery_id: UUID,
        attempt: int,
        notification_id: UUID,
        kind: str,
        channel: str,
        user_id: UUID | None,
        outcome: str,
        provider_message_id: str | None,
        error: str | None,
        decided_at: datetime,
        finished_at: datetime,
    ) -> None:
        if outcome not in FINAL_OUTCOMES:
            raise ValueError(f"not a final outcome: {outcome!r}")
        self.delivery_id = delivery_id
        self.attempt = attempt
        self.notification_id = notification_id
        self.kind = kind
        self.channel = channel
        self.user_id = user_id
        self.outcome = outcome
        self.provider_message_id = provider_message_id
        self.error = error
        self.decided_at = decided_at
        self.finished_at = finished_at
