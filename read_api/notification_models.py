"""What the admin delivery log answers (``read_api.notification_admin``), for the
OpenAPI document; each answer is validated against its model, key by key."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from domain.notifications import Category, Channel, Kind
from read_api.catalog_models import Answer
from read_api.ordering_models import NextCursor


class DeliveryAttempt(Answer):
    number: int = Field(description="1 for the first attempt")
    started_at: datetime
    finished_at: datetime | None = Field(description="Null: in flight, or its worker died")
    outcome: str | None = Field(examples=["sent", "failed", "suppressed", "retrying"])
    provider_message_id: str | None
    error: str | None


class Delivery(Answer):
    """The notification on one channel to one address."""

    id: UUID
    channel: Channel
    address: str = Field(description="Email, E.164 number, device id (push), user id (in-app)")
    state: str = Field(examples=["queued", "sending", "retrying", "sent", "failed", "suppressed"])
    attempts: int = Field(description="Attempts made so far")
    not_before: datetime = Field(description="Not sent before (quiet hours, a retry's backoff)")
    provider_message_id: str | None
    last_error: str | None
    history: list[DeliveryAttempt] = Field(description="Every attempt, oldest first")


class Notification(Answer):
    """One decision: who hears what, because of which event."""

    id: UUID
    kind: Kind
    category: Category
    trigger: str = Field(description="The event it was decided from")
    user_id: UUID | None
    order_id: UUID | None
    locale: str
    decided_at: datetime
    deliveries: list[Delivery]


class NotificationPage(Answer):
    items: list[Notification] = Field(description="Newest first")
    next_cursor: NextCursor
