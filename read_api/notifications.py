"""The caller's own in-app inbox: ``GET /me/notifications`` (newest first, keyset
pages) and ``GET /me/notifications/unread-count``. Marking read is a command
(``commands.notifications.http.inbox``); the live stream is an entry point
(``infra.entrypoints.notification_stream``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from commands.http.parsed_body import ParsedBodyRoute
from projections.notifications.inbox_queries import inbox_page, unread_count
from read_api.deps import CurrentUser, Services
from read_api.notification_inbox_models import InboxPage, UnreadCount

router = APIRouter(prefix="/me/notifications", tags=["notifications"], route_class=ParsedBodyRoute)

Before = Annotated[
    str | None,
    Query(max_length=100, description="next_cursor of the last page: items older than it"),
]
Limit = Annotated[int, Query(ge=1, le=100)]


@router.get("", response_model=InboxPage)
async def my_notifications(
    principal: CurrentUser, services: Services, before: Before = None, limit: Limit = 20
) -> dict[str, Any]:
    """No consistency token: the inbox is written by the deliveries, not by a view
    following a log, so there is no position to wait for."""
    async with services.pool.connection() as conn:
        items, next_cursor = await inbox_page(conn, principal.user_id, before, limit)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/unread-count", response_model=UnreadCount)
async def my_unread_count(principal: CurrentUser, services: Services) -> dict[str, int]:
    async with services.pool.connection() as conn:
        return {"unread": await unread_count(conn, principal.user_id)}
