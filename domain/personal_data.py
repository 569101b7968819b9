"""Personal data in the events: which fields hold it, whose it is, and what each
field reads as once its data subject is erased (ADR 0024).

The event store seals these fields, each under a key of its own data subject,
before it writes an event (``infra.postgres.sealing_mapper``); erasing a subject
deletes the key, so that its data can no longer be read anywhere the events went
(the store, backups of it, the Kafka topics), while amounts, ids and times stay in
clear and every figure still balances. A field whose key is gone reads as its
``erased`` value, and the read models blank what they derived to the same values
when they see ``User.Erased``, so that a rebuild from the log equals the live view.

Besides these fields, the client address in every event's actor (``domain.actors``)
is the acting user's personal data: it is sealed under the actor's key, or, when
the request was anonymous (a registration, a login), under the subject the event
names here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.orders import Order
from domain.sessions import Session
from domain.users import ERASED_TEXT, EmailIndex, User, erased_email


def _always(value: Any) -> Callable[[UUID], Any]:
    return lambda _subject: value


@dataclass(frozen=True)
class PersonalFields:
    """The personal fields of one kind of event (or of an aggregate's snapshot)."""

    subject: str
    """The attribute naming the data subject: ``originator_id`` for the user's own
    events, ``customer_id`` of an order, ``user_id`` of an email claim or a session."""
    erased: Mapping[str, Callable[[UUID], Any]] = field(default_factory=dict)
    """Field name -> its value once the subject is erased (from the subject's id:
    an erased email address stays unique). Empty for an event with no personal
    field of its own that still names whose the actor's address is."""

    def subject_of(self, state: Mapping[str, Any]) -> UUID | None:
        value = state.get(self.subject)
        return value if isinstance(value, UUID) else None


ERASED_USER: Mapping[str, Callable[[UUID], Any]] = {
    "email": erased_email,
    "name": _always(ERASED_TEXT),
    "phone": _always(None),
    "addresses": _always([]),
}
"""A user's personal attributes as they read once erased (``User.Erased`` sets the
same)."""

_USER_EVENTS = [
    cls for cls in vars(User).values() if isinstance(cls, type) and issubclass(cls, User.Event)
]

EVENT_FIELDS: Mapping[type, PersonalFields] = {
    **{cls: PersonalFields("originator_id") for cls in _USER_EVENTS},
    User.Registered: PersonalFields(
        "originator_id", {"email": erased_email, "name": _always(ERASED_TEXT)}
    ),
    # A profile change carries name, phone, addresses and preferences together:
    # sealed whole, it replays as no change once erased.
    User.ProfileUpdated: PersonalFields("originator_id", {"changes": _always({})}),
    EmailIndex.Claimed: PersonalFields("user_id", {"email": erased_email}),
    Session.Started: PersonalFields("user_id"),
    Order.Placed: PersonalFields("customer_id", {"shipping_address": _always({})}),
}
"""Event class -> its personal fields."""

SNAPSHOT_FIELDS: Mapping[type[Aggregate], PersonalFields] = {
    User: PersonalFields("originator_id", ERASED_USER),
    Order: PersonalFields("customer_id", {"shipping_address": _always({})}),
}
"""Aggregate class -> the personal attributes in its snapshots' state (the subject
read from the snapshot, or from the state)."""

ERASURES: Mapping[type, PersonalFields] = {User.Erased: PersonalFields("originator_id")}
"""Events that erase their subject: whoever decodes one forgets the subject's key
at once, rather than when its cached copy expires."""
