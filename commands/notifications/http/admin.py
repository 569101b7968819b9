"""Operators' actions on notifications: ``POST /admin/notifications/deliveries/{id}/resend``
queues a failed delivery again (202), refuses one that has not failed (409)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel

from commands.http.deps import CurrentAdmin
from commands.http.parsed_body import ParsedBodyRoute
from commands.notifications.http.deps import Services
from commands.notifications.resending import resend

router = APIRouter(prefix="/admin/notifications", tags=["admin"], route_class=ParsedBodyRoute)


class ResendOut(BaseModel):
    delivery_id: UUID
    state: str = "queued"


@router.post("/deliveries/{delivery_id}/resend", status_code=202, response_model=ResendOut)
def resend_delivery(delivery_id: UUID, admin: CurrentAdmin, services: Services) -> ResendOut:
    """Queue a failed delivery again, due now; its next attempt shows in the log."""
    resend(services.resends, delivery_id, services.clock())
    return ResendOut(delivery_id=delivery_id)
