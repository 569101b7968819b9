"""The in-app inbox: each user's notifications, newest first. Unread counts are
counted from the rows, never kept in a counter that could drift from them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from psycopg import Cursor

from domain.refusals import BadQuery

_KEY = re.compile(r"^[0-9]{16}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def inbox_key(created_at: datetime, notification_id: UUID) -> str:
    """Sortable and unique per user: the keyset cursor of pages."""
    return f"{int(created_at.timestamp() * 1_000_000):016d}-{notification_id}"


def valid_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise BadQuery("not a notification cursor")
    return key


@dataclass(frozen=True)
class InboxItem:
    user_id: UUID
    notification_id: UUID
    kind: str
    title: str
    body: str
    link: str | None
    created_at: datetime
    read_at: datetime | None = None

    @property
    def key(self) -> str:
        return inbox_key(self.created_at, self.notification_id)


INBOX_CHANNEL = "notify_inbox"
"""What ``Inbox.put`` NOTIFYs, the user id as payload, when it stores a new item: the
live stream's wake-up (``infra.entrypoints.notification_stream``)."""


class Inbox(Protocol):
    def put(self, item: InboxItem) -> bool:
        """Store once per (user, notification), notifying ``INBOX_CHANNEL`` when
        stored; False when it was there already."""

    def put_many(self, items: Sequence[InboxItem]) -> None:
        """``put`` of each, together."""

    def page(self, user_id: UUID, before: str | None, limit: int) -> list[InboxItem]:
        """Newest first, older than the key ``before``."""

    def after(self, user_id: UUID, key: str, limit: int) -> list[InboxItem]:
        """Oldest first, newer than ``key``: what a stream has not sent yet."""

    def unread_count(self, user_id: UUID) -> int: ...

    def mark_read(self, user_id: UUID, notification_id: UUID, at: datetime) -> bool:
        """Only the owner's; False when the user has no such notification."""

    def mark_all_read(self, user_id: UUID, at: datetime) -> int: ...

    def forget(self, user_id: UUID, cursor: Cursor[Any] | None = None) -> None:
        """Delete every item of the user (erased: their titles and bodies were
        rendered with their name and addresses); in ``cursor``'s transaction when
        the store is in Postgres. Nothing to delete is no error."""
