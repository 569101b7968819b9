"""The relay's message format, version 1: what a committed event looks like on Kafka.

- key: the aggregate (originator) id, so that one aggregate's events share a partition
  and keep their order;
- headers: ``position`` (the event's notification id in its log), ``prev-position``
  (the id of the log's previous event, 0 for the first: the log has permanent gaps
  where inserts rolled back, so a consumer can only tell "nothing is missing before
  this event" from this link), ``log``, ``event-topic`` and, for an event saved in a trace,
  ``traceparent`` (W3C: the span that saved it; the same is inside ``state``);
- value: JSON ``{"v": 1, "log", "position", "prev_position", "topic", "originator_id",
  "originator_version", "state"}``, the stored event as the event store holds it
  (``state`` base64: it may be compressed or encrypted), so that a consumer rebuilds
  the domain event with the application's own mapper (upcasting included).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.application import Application
from eventsourcing.persistence import Notification, StoredEvent

from commands.tracing import TRACEPARENT

VERSION = 1
Headers = list[tuple[str, bytes]]


class UndecodableMessage(ValueError):
    """A message that is not a relayed event of a version this code reads."""


@dataclass(frozen=True)
class RelayedEvent:
    log: str
    position: int
    prev_position: int
    stored: StoredEvent

    def domain_event(self, app: Application[Any]) -> Any:
        return app.mapper.to_domain_event(self.stored)

    def encode(self) -> bytes:
        """The message value."""
        return orjson.dumps(
            {
                "v": VERSION,
                "log": self.log,
                "position": self.position,
                "prev_position": self.prev_position,
                "topic": self.stored.topic,
                "originator_id": str(self.stored.originator_id),
                "originator_version": self.stored.originator_version,
                "state": base64.b64encode(self.stored.state).decode(),
            }
        )


def topic_name(prefix: str, log: str) -> str:
    return f"{prefix}{log}"


def encode(
    log: str, notification: Notification, prev_position: int, traceparent: str | None = None
) -> tuple[bytes, bytes, Headers]:
    """(key, value, headers) of one committed event."""
    event = RelayedEvent(log, notification.id, prev_position, notification)
    headers = [
        ("position", str(notification.id).encode()),
        ("prev-position", str(prev_position).encode()),
        ("log", log.encode()),
        ("event-topic", notification.topic.encode()),
    ]
    if traceparent is not None:
        headers.append((TRACEPARENT, traceparent.encode()))
    return str(notification.originator_id).encode(), event.encode(), headers


def decode(value: bytes | None) -> RelayedEvent:
    """The relayed event in a message value; ``UndecodableMessage`` otherwise."""
    try:
        body = orjson.loads(value or b"")
        version = body.get("v")
    except (orjson.JSONDecodeError, AttributeError) as error:
        raise UndecodableMessage(f"not a JSON object: {error}") from error
    if version != VERSION:
        raise UndecodableMessage(f"unknown payload version {version!r}")
    try:
        return RelayedEvent(
            log=str(body["log"]),
            position=int(body["position"]),
            prev_position=int(body["prev_position"]),
            stored=StoredEvent(
                originator_id=UUID(body["originator_id"]),
                originator_version=int(body["originator_version"]),
                topic=str(body["topic"]),
                state=base64.b64decode(body["state"], validate=True),
            ),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise UndecodableMessage(f"{type(error).__name__}: {error}") from error
