"""What support sees of notifications: ``GET /admin/notifications?user_id=...`` or
``?order_id=...`` (exactly one), newest first, keyset-paginated, each notification
with its deliveries and their attempts. A consistency token (an order's, a user's)
waits until the notifier has decided on it."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError

from commands.http.parsed_body import ParsedBodyRoute
from projections.notifications.delivery_log import notifications_of
from read_api.deps import CurrentAdmin, Positions, Services, wait_for
from read_api.notification_models import NotificationPage

router = APIRouter(tags=["admin"], route_class=ParsedBodyRoute)

Cursor = Annotated[str | None, Query(max_length=500, description="next_cursor of the last page")]
Limit = Annotated[int, Query(ge=1, le=100)]

NOTIFIER = "notifier"
"""The notification policy's name (``commands.notifications.policy.Notifier``), which
writes the tables read here; the read API may not import the write side."""


@router.get("/admin/notifications", response_model=NotificationPage)
async def admin_notifications(
    admin: CurrentAdmin,
    services: Services,
    positions: Positions,
    user_id: UUID | None = None,
    order_id: UUID | None = None,
    cursor: Cursor = None,
    limit: Limit = 20,
) -> dict[str, Any]:
    if (user_id is None) == (order_id is None):
        # The same 422 problem as a malformed parameter, so clients handle one shape.
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("query", "user_id" if user_id is None else "order_id"),
                    "msg": "give exactly one of user_id or order_id",
                }
            ]
        )
    await wait_for(services, NOTIFIER, positions)
    async with services.pool.connection() as conn:
        page = await notifications_of(
            conn, user_id=user_id, order_id=order_id, after=cursor, limit=limit
        )
    return {"items": page.items, "next_cursor": page.next_cursor}
