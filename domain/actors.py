"""Who did what: the actor each stored event names, and from where.

The write side stamps every event it saves with the actor of the command that made
it (``commands.actors``), as an extra attribute of the event (``actor``) that goes
into the stored state like any other. Event classes do not declare it: decorated
``@event`` methods take only the attributes they name, so aggregates replay as
before, and an event stored before actors were recorded simply has none. Whoever
reads it (a projection, the audit view, an export) asks ``actor_of(event)``, which
answers ``unknown`` for those.

The stored form is a plain mapping (events are a published contract, read by other
processes and kept forever): ``{"kind", "id", "request_id", "client_address"}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

ACTOR = "actor"
"""The event attribute holding the actor's mapping."""


class ActorKind(StrEnum):
    USER = "user"
    """An HTTP request: ``id`` is the principal of its bearer token, None for one
    sent without (a registration, a login, a guest's cart, a mailed link)."""
    SYSTEM = "system"
    """A policy or saga (``id``: its name), a background loop, the command line."""
    WEBHOOK = "webhook"
    """A payment provider's webhook (``id``: the provider)."""
    UNKNOWN = "unknown"
    """Stored before actors were recorded, or saved outside any edge that names one."""


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    id: str | None = None
    request_id: str | None = None
    client_address: str | None = None

    def as_mapping(self) -> dict[str, str | None]:
        return {
            "kind": self.kind.value,
            "id": self.id,
            "request_id": self.request_id,
            "client_address": self.client_address,
        }

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(ActorKind.SYSTEM, name)


UNKNOWN_ACTOR = Actor(ActorKind.UNKNOWN)


def actor_of(event: Any) -> Actor:
    """The actor an event was saved with; ``unknown`` for an event stored before
    actors were recorded (or with a mapping this code cannot read)."""
    stored = getattr(event, ACTOR, None)
    if not isinstance(stored, dict):
        return UNKNOWN_ACTOR
    try:
        kind = ActorKind(str(stored.get("kind")))
    except ValueError:
        return UNKNOWN_ACTOR
    return Actor(
        kind,
        _text(stored.get("id")),
        _text(stored.get("request_id")),
        _text(stored.get("client_address")),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
