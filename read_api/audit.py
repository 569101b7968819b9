"""The admin audit view: any aggregate's history, and how it stood at a version or a time.

- ``GET /admin/audit/{kind}/{id}``: its events, oldest first, each with its version,
  log position, type, time, actor (``domain.actors``) and what it said; keyset pages
  (``cursor`` = the previous page's ``next_cursor``).
- ``GET /admin/audit/{kind}/{id}/state``: the aggregate as it was at ``?version=``, or
  at ``?as_of=`` (a time with its offset: its last event at or before then), or now.

``kind``: order, payment, product, user, stock-item, cart, category, review. Admins
only. Read from the event store itself (``projections.audit.history``), so nothing
lags: no consistency token to wait for. Plain ``def`` routes: the event store's
library blocks. A bad value (a version below 1, a time without offset, both at once)
is a 422 problem; an unknown id, a version it never reached or a time before it
existed a 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime

from commands.http.parsed_body import ParsedBodyRoute
from projections.audit.history import (
    AggregateHistory,
    AuditedKind,
    HistoryEntry,
    VersionOrTime,
)
from projections.cursors import BadCursor, decode_cursor, encode_cursor
from read_api.audit_models import AuditHistory, AuditState
from read_api.deps import CurrentAdmin

router = APIRouter(prefix="/admin/audit", tags=["audit"], route_class=ParsedBodyRoute)

CURSOR_KIND = "audit-history"
Cursor = Annotated[str | None, Query(max_length=200, description="next_cursor of the last page")]
Limit = Annotated[int, Query(ge=1, le=200)]


@dataclass(frozen=True)
class AuditServices:
    history: AggregateHistory


async def _audit(request: Request) -> AuditServices:
    services: AuditServices = request.app.state.audit
    return services


Audit = Annotated[AuditServices, Depends(_audit)]


@router.get("/{kind}/{aggregate_id}", response_model=AuditHistory)
def history(
    kind: AuditedKind,
    aggregate_id: UUID,
    admin: CurrentAdmin,
    audit: Audit,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    after = 0
    if cursor is not None:
        cursor_id, after = decode_cursor(cursor, CURSOR_KIND, [UUID, int])
        if cursor_id != aggregate_id:
            raise BadCursor("the cursor is not one this API issued for this aggregate")
    page = audit.history.history(kind, aggregate_id, after=after, limit=limit)
    return {
        "kind": kind,
        "id": aggregate_id,
        "log": page.log,
        "items": [_entry(entry) for entry in page.entries],
        "next_cursor": None
        if page.next_after is None
        else encode_cursor(CURSOR_KIND, [aggregate_id, page.next_after]),
    }


@router.get("/{kind}/{aggregate_id}/state", response_model=AuditState)
def state(
    kind: AuditedKind,
    aggregate_id: UUID,
    admin: CurrentAdmin,
    audit: Audit,
    version: Annotated[int | None, Query(ge=1, description="The version to show")] = None,
    as_of: Annotated[
        AwareDatetime | None,
        Query(description="Show it as it stood then (ISO 8601 with an offset)"),
    ] = None,
) -> dict[str, Any]:
    if version is not None and as_of is not None:
        raise VersionOrTime("give a version or a time (as_of), not both")
    found = audit.history.state_at(kind, aggregate_id, version=version, as_of=as_of)
    return {
        "kind": kind,
        "id": aggregate_id,
        "log": found.log,
        "version": found.version,
        "at": found.at,
        "last_version": found.last_version,
        "state": found.state,
    }


def _entry(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "version": entry.version,
        "position": entry.position,
        "type": entry.type,
        "at": entry.at,
        "actor": entry.actor.as_mapping(),
        "data": entry.data,
    }
