"""What the user's inbox answers (``read_api.notifications``), for the OpenAPI
document; each answer is validated against its model, key by key."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from read_api.catalog_models import Answer


class InboxEntry(Answer):
    """One in-app notification."""

    id: UUID = Field(description="The notification's id")
    kind: str = Field(examples=["order_shipped"])
    title: str
    body: str
    link: str | None = Field(description="Where the notification leads in the shop, if anywhere")
    created_at: datetime
    read: bool
    key: str = Field(
        description="Its place in the inbox: `before` of the next page, the stream's event id"
    )


class InboxPage(Answer):
    items: list[InboxEntry] = Field(description="Newest first")
    next_cursor: str | None = Field(description="Pass as `before` for the next page; null: last")


class UnreadCount(Answer):
    unread: int = Field(ge=0)
