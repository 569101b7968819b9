"""What the notifications area needs from the outside world: a sender per channel,
the queue of deliveries, the store of their state, the devices that get push, the
suppression list, and each store's forgetting of an erased person. The adapters
live in infra/ (SES, SMTP, SNS, Web Push, SQS, Postgres, the local mailbox); each is
tested against a real protocol server."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from psycopg import Cursor

from domain.devices import RegisteredDevice
from domain.notifications import Channel, Kind


@dataclass(frozen=True)
class Content:
    """A notification rendered for one channel. Email: subject, text and html. SMS:
    text. Push and in-app: subject is the title, text the body."""

    subject: str = ""
    text: str = ""
    html: str = ""
    link: str | None = None


@dataclass(frozen=True)
class Outgoing:
    """One delivery: a notification on one channel to one address."""

    delivery_id: UUID
    notification_id: UUID
    kind: Kind
    channel: Channel
    user_id: UUID | None
    address: str
    """An email address, an E.164 number, a device id (push) or a user id (in-app)."""
    content: Content
    created_at: datetime
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra email headers (List-Unsubscribe and List-Unsubscribe-Post on marketing)."""


class PermanentFailure(Exception):
    """The provider refused for good (invalid address, disabled endpoint): no retry."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DeviceGone(PermanentFailure):
    """The push service no longer knows the device (404/410, a disabled endpoint):
    the device is removed."""


class TransientFailure(Exception):
    """Throttling, a 5xx, a timeout: retried with backoff, up to a bound."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Sender(Protocol):
    """One channel's delivery. Returns the provider's message id; raises
    ``PermanentFailure`` or ``TransientFailure``."""

    def send(self, outgoing: Outgoing) -> str: ...


@runtime_checkable
class BatchSender(Sender, Protocol):
    """A sender that takes a batch in one call (the local adapters: one statement):
    all sent, in order, or the exception for all of them."""

    def send_many(self, outgoings: Sequence[Outgoing]) -> list[str]: ...


@dataclass(frozen=True)
class Device:
    id: UUID
    user_id: UUID
    platform: str
    """``webpush``, or a mobile platform on Amazon SNS (``apns``, ``fcm``)."""
    token: str
    """The Web Push subscription (JSON: endpoint and keys) or the mobile device token."""
    endpoint_arn: str | None = None
    """The SNS platform endpoint made for a mobile device."""


class Devices(Protocol):
    def register(self, device: Device) -> Device:
        """Store (or, same user and token, return the existing)."""

    def get(self, device_id: UUID) -> Device | None: ...

    def of_user(self, user_id: UUID) -> list[Device]: ...

    def set_endpoint(self, device_id: UUID, endpoint_arn: str) -> None: ...

    def remove(self, device_id: UUID, user_id: UUID | None = None) -> bool:
        """Remove (only the user's own when ``user_id`` is given); False if absent."""


class DeviceRegistry(Protocol):
    """The devices store as their owner sees it (the ``/me/devices`` endpoints)."""

    def enrol(self, device: Device, at: datetime) -> tuple[Device, RegisteredDevice]: ...

    def registered(self, user_id: UUID) -> list[RegisteredDevice]: ...

    def remove(self, device_id: UUID, user_id: UUID | None = None) -> bool: ...


class Suppressions(Protocol):
    def suppressed_among(self, addresses: Sequence[str]) -> dict[str, bool]:
        """The suppressed ones of ``addresses`` (lower-cased), each to whether only
        marketing is stopped: a hard bounce stops all mail, a complaint or an
        unsubscribe only marketing."""

    def suppress(self, address: str, reason: str, marketing_only: bool) -> None: ...


@dataclass(frozen=True)
class Job:
    """A delivery taken off the queue: ``receipt`` is the queue's handle for it."""

    delivery_id: UUID
    receipt: str


class DeliveryQueue(Protocol):
    """Deliveries waiting to go: the deliveries table itself (``FOR UPDATE SKIP
    LOCKED``) in the embedded mode, Amazon SQS in the scaled mode."""

    def take(self, channel: Channel, limit: int, wait_seconds: float) -> list[Job]:
        """Up to ``limit`` due deliveries of one channel (each channel is worked by a
        loop of its own, so a slow or failing one never holds back the others),
        waiting up to ``wait_seconds`` for the first."""

    def finish(self, job: Job) -> None:
        """Done with for good (sent, failed, or a copy of a finished one)."""

    def retry(self, job: Job, delay_seconds: float) -> None:
        """Offer again after ``delay_seconds``."""

    def depth(self) -> dict[Channel, int]:
        """Deliveries waiting, per channel (approximately, on SQS)."""


@dataclass(frozen=True)
class Pending:
    """A delivery's state when a worker picks it up."""

    delivery_id: UUID
    notification_id: UUID
    kind: Kind
    channel: Channel
    user_id: UUID | None
    address: str
    locale: str
    context: Mapping[str, object]
    state: str
    attempts: int
    not_before: datetime
    created_at: datetime


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: ``sent``, ``failed``, ``suppressed``, or
    ``retrying`` (then ``retry_at``)."""

    delivery_id: UUID
    attempt: int
    outcome: str
    provider_message_id: str | None = None
    error: str | None = None
    retry_at: datetime | None = None


class DeliveryLog(Protocol):
    """The state of every delivery and each attempt at it (Postgres). Batched: a
    worker records the intents of a batch in one transaction, sends, then records
    the outcomes in another."""

    def pending(self, delivery_ids: Sequence[UUID]) -> list[Pending]:
        """The deliveries still to be made among ``delivery_ids`` (final ones left out)."""

    def start_attempts(self, delivery_ids: Sequence[UUID], at: datetime) -> dict[UUID, int]:
        """Record the intent (state ``sending``, one more attempt) before the send;
        returns each attempt's number."""

    def record_outcomes(self, outcomes: Sequence[Outcome], at: datetime) -> None: ...


@runtime_checkable
class Forgetting(Protocol):
    """A store of the notifications area that holds something personal of the people
    it notified (their addresses, the texts rendered for them, their devices): once
    a person is erased (``User.Erased``, ADR 0024), it deletes or blanks all of it.
    Idempotent: forgetting again (a redelivered event) changes nothing."""

    def forget(self, user_id: UUID, cursor: Cursor[Any]) -> None:
        """Forget ``user_id``; a Postgres store in ``cursor``'s transaction (the
        notifier's, with its tracking and the decisions of the same batch), another
        store on its own."""
