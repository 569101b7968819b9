"""What the audit routes answer (``read_api.audit``), for the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field
from typing_extensions import TypeAliasType

from projections.audit.history import AuditedKind
from read_api.actor_models import ActorAnswer
from read_api.catalog_models import Answer

Json = TypeAliasType("Json", "str | int | float | bool | list[Json] | dict[str, Json] | None")
"""A JSON value: what an event or an aggregate holds, flattened (``projections.audit.plain``)."""


class AuditEntry(Answer):
    version: int = Field(description="The aggregate's version this event made")
    position: int = Field(description="The event's position in its log")
    type: str = Field(examples=["Order.Placed", "Order.Refunded"])
    at: datetime
    actor: ActorAnswer
    data: dict[str, Json] = Field(description="What the event says (secrets redacted)")


class AuditHistory(Answer):
    kind: AuditedKind
    id: UUID
    log: str = Field(description="The event store that holds it")
    items: list[AuditEntry] = Field(description="Oldest first")
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null: last")


class AuditState(Answer):
    kind: AuditedKind
    id: UUID
    log: str
    version: int = Field(description="The version shown")
    at: datetime = Field(description="When the event of that version was recorded")
    last_version: int = Field(description="The aggregate's version now")
    state: dict[str, Json] = Field(description="Its attributes then (secrets redacted)")
