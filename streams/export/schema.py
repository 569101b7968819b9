"""The export's schema, version 1: one row per event, the same columns for every log.

The columns are a contract (README, ADR 0021): a column is only ever added, never
renamed, retyped or dropped, without a new ``SCHEMA_VERSION``. The event's own fields
stay in ``payload`` (JSON): event classes evolve (``class_version`` and upcasters), and
a typed column per field would change the schema with each of them; DuckDB reads the
JSON with its operators (``payload->>'$.total.amount'``).
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import orjson

from commands.tracing import TRACEPARENT

SCHEMA_VERSION = 1
ACTOR = "actor"
UNKNOWN_ACTOR = "unknown"
METADATA = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic", ACTOR, TRACEPARENT}
)
"""Attributes of a stored event that have columns of their own (or, the trace
context, none: it belongs to the traces), kept out of ``payload``."""
WITHHELD = frozenset({"password_hash", "client_secret"})
"""Credentials, which no analysis needs and an export file must not spread: a
password's hash, a payment's client secret (it lets a browser confirm the payment).
Left out of ``payload``."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    """``int64``, ``string`` or ``timestamp`` (microseconds, UTC)."""
    nullable: bool
    description: str


COLUMNS: tuple[Column, ...] = (
    Column("position", "int64", False, "the event's position (notification id) in its log"),
    Column("log", "string", False, "the bounded context's log: users, catalog, ordering, ..."),
    Column("aggregate_id", "string", False, "the aggregate's id (a UUID, as text)"),
    Column("aggregate_version", "int64", False, "the aggregate's version after this event"),
    Column("aggregate_type", "string", False, "the aggregate's class: Order, Product, ..."),
    Column("event_type", "string", False, "the event's class: Order.Placed, ..."),
    Column("topic", "string", False, "the stored topic: domain.orders:Order.Placed"),
    Column("time", "timestamp", False, "when the event happened (UTC)"),
    Column("actor_kind", "string", False, "user, system, webhook, or unknown"),
    Column("actor_id", "string", True, "the user's id, or the policy's or webhook's name"),
    Column("actor_request_id", "string", True, "the request that caused the event"),
    Column("actor_client_address", "string", True, "where that request came from"),
    Column("payload", "string", False, "the event's own fields as JSON (keys sorted)"),
)
NAMES = tuple(column.name for column in COLUMNS)


class PayloadNotEncodable(TypeError):
    """An event field of a type the export does not know how to write as JSON."""


def _encode(value: object) -> object:
    # orjson writes str, numbers, UUID, datetime, dataclasses and enums itself.
    if isinstance(value, Decimal):
        return str(value)  # exact, as the events' own money amounts are
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise PayloadNotEncodable(f"no JSON form for a {type(value).__qualname__}")


def payload_json(fields: Mapping[str, Any]) -> str:
    """The event's own fields as JSON, keys sorted (the same event, the same text)."""
    own = {
        name: value
        for name, value in fields.items()
        if name not in METADATA and name not in WITHHELD
    }
    try:
        text = orjson.dumps(
            own, default=_encode, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
        )
    except orjson.JSONEncodeError as error:  # it wraps what ``_encode`` raised
        raise PayloadNotEncodable(str(error)) from error
    return text.decode()


def actor_columns(actor: object) -> tuple[str, str | None, str | None, str | None]:
    """(kind, id, request id, client address) of an event's ``actor``: "unknown" and
    nulls when it has none (events stored before actors were recorded)."""
    if not isinstance(actor, Mapping):
        return UNKNOWN_ACTOR, None, None, None
    kind = actor.get("kind")
    return (
        str(kind) if kind else UNKNOWN_ACTOR,
        _text(actor.get("id")),
        _text(actor.get("request_id")),
        _text(actor.get("client_address")),
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def row(log: str, position: int, topic: str, event: object) -> tuple[object, ...]:
    """The row of ``event`` (decoded by its application's mapper), in ``NAMES`` order."""
    fields = vars(event)
    event_type = topic.rpartition(":")[2]
    timestamp: datetime = fields["timestamp"]
    return (
        position,
        log,
        str(fields["originator_id"]),
        fields["originator_version"],
        event_type.rpartition(".")[0] or event_type,
        event_type,
        topic,
        timestamp,
        *actor_columns(getattr(event, ACTOR, None)),
        payload_json(fields),
    )
