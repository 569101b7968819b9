"""Aggregates' and events' attributes as JSON values for the audit view: the domain's
value objects (money, ids, times, enums, dataclasses) flattened, and secrets never
shown, even to an admin: a password's hash, a payment's client secret, the pending
one-time tokens of an account."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from domain.actors import ACTOR

REDACTED = "[redacted]"
SECRET_KEYS = frozenset({"password_hash", "client_secret", "pending_tokens"})
EVENT_METADATA = frozenset(
    {"originator_id", "originator_version", "timestamp", ACTOR, "traceparent"}
)
"""What an event carries that the history shows apart (or not at all: the trace)."""


def plain(value: Any) -> Any:
    """``value`` as JSON values: objects with string keys, lists, text, numbers."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, Enum):
        return plain(value.value)
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): REDACTED if str(k) in SECRET_KEYS else plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((plain(v) for v in value), key=str)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if hasattr(value, "__dict__"):
        return plain(public_attributes(value))
    return str(value)


def public_attributes(obj: Any) -> dict[str, Any]:
    """An object's own attributes, the private ones (``_version``...) left out."""
    return {k: v for k, v in vars(obj).items() if not k.startswith("_")}


def event_data(event: Any) -> dict[str, Any]:
    """What an event says, without what its history entry shows apart."""
    data = {k: v for k, v in vars(event).items() if k not in EVENT_METADATA}
    result: dict[str, Any] = plain(data)
    return result


def aggregate_state(aggregate: Any) -> dict[str, Any]:
    result: dict[str, Any] = plain(public_attributes(aggregate))
    return result
