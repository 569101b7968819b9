"""The caller's own inbox, the commands on it: mark one notification read, mark all
read, and issue a ticket for the live stream (``EventSource`` cannot send the
Authorization header, and an access token in a URL would end up in logs)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from commands.http.deps import CurrentUser
from commands.http.parsed_body import ParsedBodyRoute
from commands.notifications.http.deps import Services
from commands.notifications.tickets import issue
from domain.errors import UnknownEntity

router = APIRouter(prefix="/me/notifications", tags=["notifications"], route_class=ParsedBodyRoute)


class MarkedRead(BaseModel):
    id: UUID
    read: bool = True


class MarkedAllRead(BaseModel):
    marked: int = Field(ge=0, description="How many were unread until now")


class StreamTicket(BaseModel):
    ticket: str = Field(description="Pass as ?ticket= to GET /me/notifications/stream, once")
    expires_in: int = Field(description="Seconds it can still be used")


@router.post("/{notification_id}/read", response_model=MarkedRead)
def mark_read(notification_id: UUID, principal: CurrentUser, services: Services) -> MarkedRead:
    """Marking one read again keeps its first read time. Another user's notification
    answers 404, as for an unknown id: whose it is is not disclosed."""
    if not services.inbox.mark_read(principal.user_id, notification_id, services.clock()):
        raise UnknownEntity("no such notification")
    return MarkedRead(id=notification_id)


@router.post("/read-all", response_model=MarkedAllRead)
def mark_all_read(principal: CurrentUser, services: Services) -> MarkedAllRead:
    return MarkedAllRead(marked=services.inbox.mark_all_read(principal.user_id, services.clock()))


@router.post("/stream-tickets", status_code=201, response_model=StreamTicket)
def stream_ticket(principal: CurrentUser, services: Services, response: Response) -> StreamTicket:
    """A single-use ticket for the live stream, good for 30 seconds: get one right
    before each (re)connection."""
    issued = issue(services.tickets, principal.user_id, services.clock())
    response.headers["Cache-Control"] = "no-store"
    return StreamTicket(ticket=issued.ticket, expires_in=issued.expires_in)
