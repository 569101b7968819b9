"""From "this person should hear about this" to a recorded decision: which channels
their preferences allow, the address on each, and when each may go (quiet hours).
Ids are derived from the triggering event, so deciding the same event twice gives
the same rows, which the store keeps once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from domain.notifications import RULES, Category, Channel, Kind, Preferences, undeliverable

_NAMESPACE = UUID("6f1d0e54-7c1a-4a57-9a43-2d1f5a0b7e21")


@dataclass(frozen=True)
class Notice:
    """What an event means for one person: the policy's output, before preferences."""

    kind: Kind
    user_id: UUID
    context: Mapping[str, Any]
    order_id: UUID | None = None
    email: str | None = None
    """An address to use instead of the account's (a link sent to the address it
    verifies)."""


@dataclass(frozen=True)
class Recipient:
    user_id: UUID
    name: str
    email: str
    phone: str | None
    active: bool
    preferences: Preferences
    devices: Sequence[UUID] = ()


@dataclass(frozen=True)
class Notification:
    id: UUID
    trigger: str
    kind: Kind
    category: Category
    user_id: UUID
    order_id: UUID | None
    locale: str
    context: Mapping[str, Any]
    decided_at: datetime


@dataclass(frozen=True)
class PlannedDelivery:
    id: UUID
    channel: Channel
    address: str
    not_before: datetime


@dataclass(frozen=True)
class Decision:
    notification: Notification
    deliveries: list[PlannedDelivery] = field(default_factory=list)


def decide(
    trigger: str,
    notice: Notice,
    recipient: Recipient,
    now: datetime,
    shop_url: str,
    channels: frozenset[Channel] = frozenset(Channel),
) -> Decision | None:
    """The notification and its deliveries on the ``channels`` this shop delivers
    on; None when nothing is to be sent (a deactivated account hears only about its
    deactivation)."""
    if not recipient.active and notice.kind is not Kind.ACCOUNT_DEACTIVATED:
        return None
    prefs = recipient.preferences
    rules = RULES[notice.kind]
    notification_id = uuid5(_NAMESPACE, f"{trigger}/{notice.kind}/{notice.user_id}")
    context = {
        "name": recipient.name,
        "shop_url": shop_url,
        "time_zone": prefs.time_zone,
        "locale": prefs.locale,
        **notice.context,
    }
    deliveries = [
        PlannedDelivery(
            id=uuid5(notification_id, f"{channel}/{address}"),
            channel=channel,
            address=address,
            not_before=prefs.send_at(notice.kind, channel, now),
        )
        for channel in Channel
        if channel in channels and prefs.allows(notice.kind, channel)
        for address in _addresses(channel, notice, recipient)
    ]
    return Decision(
        Notification(
            id=notification_id,
            trigger=trigger,
            kind=notice.kind,
            category=rules.category,
            user_id=notice.user_id,
            order_id=notice.order_id,
            locale=prefs.locale,
            context=context,
            decided_at=now,
        ),
        deliveries,
    )


def _addresses(channel: Channel, notice: Notice, recipient: Recipient) -> list[str]:
    match channel:
        case Channel.EMAIL:  # never an erased person's (``undeliverable``)
            email = notice.email or recipient.email
            return [] if undeliverable(email) else [email]
        case Channel.SMS:
            phone = recipient.phone
            return [phone] if phone and not undeliverable(phone) else []
        case Channel.PUSH:
            return [str(device) for device in recipient.devices]
        case Channel.IN_APP:
            return [str(recipient.user_id)]
