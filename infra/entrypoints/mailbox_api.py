"""The embedded mailbox, for admins: read what the system has 'sent'."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict

from commands.http.deps import CurrentAdmin
from commands.http.parsed_body import ParsedBodyRoute

router = APIRouter(tags=["admin"], route_class=ParsedBodyRoute)


class MailboxMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message_id: str
    recipient: str
    subject: str
    body: str
    sent_at: datetime


class Mailbox(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[MailboxMessage]


@router.get("/admin/mailbox", response_model=Mailbox)
def mailbox(
    _: CurrentAdmin,
    request: Request,
    to: Annotated[str | None, Query(max_length=320)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Messages delivered to the local mailbox, newest first."""
    messages = request.app.state.container.mailbox.messages(to.lower() if to else None, limit)
    return {"items": messages}
