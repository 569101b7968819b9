"""The in-app inbox in Postgres (``projections.notifications.inbox.Inbox``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import class_row
from psycopg_pool import ConnectionPool

from projections.notifications.inbox import INBOX_CHANNEL, Inbox, InboxItem

DDL = """
CREATE SCHEMA IF NOT EXISTS notify;
CREATE TABLE IF NOT EXISTS notify.inbox (
    user_id uuid NOT NULL,
    key text NOT NULL,
    notification_id uuid NOT NULL,
    kind text NOT NULL,
    title text NOT NULL,
    body text NOT NULL,
    link text,
    created_at timestamptz NOT NULL,
    read_at timestamptz,
    PRIMARY KEY (user_id, key),
    UNIQUE (user_id, notification_id)
);
CREATE INDEX IF NOT EXISTS inbox_unread ON notify.inbox (user_id) WHERE read_at IS NULL;
"""

_COLUMNS = "user_id, notification_id, kind, title, body, link, created_at, read_at"


PAYLOAD_LIMIT = 7900
"""Bytes: a NOTIFY payload must stay under 8000; a longer item notifies its user id."""

# The NOTIFY carries the stored item and the user's key before it, read in the same
# statement, so a stream that sent that one sends this without a query
# (infra.entrypoints.notification_stream); sent only for a new row, when it commits.
_PUT = (
    f"WITH stored AS (INSERT INTO notify.inbox (key, {_COLUMNS}) "  # noqa: S608 - constant columns
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING *), "
    "message AS (SELECT s.user_id, json_build_object('u', s.user_id, 'k', s.key, "
    "'p', (SELECT max(i.key) FROM notify.inbox i WHERE i.user_id = s.user_id AND i.key < s.key), "
    "'n', s.notification_id, 'kind', s.kind, 't', s.title, 'b', s.body, 'l', s.link, "
    "'c', s.created_at, 'r', s.read_at)::text AS body FROM stored s) "
    "SELECT pg_notify(%s, CASE WHEN octet_length(body) < %s THEN body "
    "ELSE user_id::text END) FROM message"
)


def _row(item: InboxItem) -> tuple[object, ...]:
    return (
        item.key,
        item.user_id,
        item.notification_id,
        item.kind,
        item.title,
        item.body,
        item.link,
        item.created_at,
        item.read_at,
        INBOX_CHANNEL,
        PAYLOAD_LIMIT,
    )


class PostgresInbox:
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def put(self, item: InboxItem) -> bool:
        """One statement, so the NOTIFY goes out exactly when the row commits, and only
        for a new row (a redelivery wakes no stream)."""
        with self._pool.connection() as conn:
            row = conn.execute(_PUT, _row(item)).fetchone()
        return row is not None

    def put_many(self, items: Sequence[InboxItem]) -> None:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(_PUT, [_row(item) for item in items])

    def page(self, user_id: UUID, before: str | None, limit: int) -> list[InboxItem]:
        with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(InboxItem))
            items: list[InboxItem] = cursor.execute(
                f"SELECT {_COLUMNS} FROM notify.inbox WHERE user_id = %s "  # noqa: S608 - constant columns
                "AND (%s::text IS NULL OR key < %s) ORDER BY key DESC LIMIT %s",
                (user_id, before, before, limit),
            ).fetchall()
        return items

    def after(self, user_id: UUID, key: str, limit: int) -> list[InboxItem]:
        with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(InboxItem))
            items: list[InboxItem] = cursor.execute(
                f"SELECT {_COLUMNS} FROM notify.inbox WHERE user_id = %s "  # noqa: S608 - constant columns
                "AND key > %s ORDER BY key LIMIT %s",
                (user_id, key, limit),
            ).fetchall()
        return items

    def unread_count(self, user_id: UUID) -> int:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT count(*) FROM notify.inbox WHERE user_id = %s AND read_at IS NULL",
                (user_id,),
            ).fetchone()
        return int(row[0]) if row else 0

    def mark_read(self, user_id: UUID, notification_id: UUID, at: datetime) -> bool:
        with self._pool.connection() as conn:
            row = conn.execute(
                "UPDATE notify.inbox SET read_at = coalesce(read_at, %s) "
                "WHERE user_id = %s AND notification_id = %s RETURNING 1",
                (at, user_id, notification_id),
            ).fetchone()
        return row is not None

    def mark_all_read(self, user_id: UUID, at: datetime) -> int:
        with self._pool.connection() as conn:
            cursor = conn.execute(
                "UPDATE notify.inbox SET read_at = %s WHERE user_id = %s AND read_at IS NULL",
                (at, user_id),
            )
            changed: int = cursor.rowcount
        return changed

    def forget(self, user_id: UUID, cursor: Cursor[Any] | None = None) -> None:
        if cursor is not None:
            cursor.execute(_FORGET, (user_id,))
            return
        with self._pool.connection() as conn:
            conn.execute(_FORGET, (user_id,))


_FORGET = "DELETE FROM notify.inbox WHERE user_id = %s"


class SignalledInbox:
    """Another store's inbox (DynamoDB) with the Postgres NOTIFY the live streams
    wait on (``infra.entrypoints.notification_stream``), sent once the item is stored."""

    def __init__(self, inbox: Inbox, pool: ConnectionPool[Any]) -> None:
        self._inbox = inbox
        self._pool = pool

    def put(self, item: InboxItem) -> bool:
        stored = self._inbox.put(item)
        if stored:
            self._signal([item])
        return stored

    def put_many(self, items: Sequence[InboxItem]) -> None:
        self._inbox.put_many(items)
        self._signal(items)  # a repeat wakes a stream that then finds nothing new

    def page(self, user_id: UUID, before: str | None, limit: int) -> list[InboxItem]:
        return self._inbox.page(user_id, before, limit)

    def after(self, user_id: UUID, key: str, limit: int) -> list[InboxItem]:
        return self._inbox.after(user_id, key, limit)

    def unread_count(self, user_id: UUID) -> int:
        return self._inbox.unread_count(user_id)

    def mark_read(self, user_id: UUID, notification_id: UUID, at: datetime) -> bool:
        return self._inbox.mark_read(user_id, notification_id, at)

    def mark_all_read(self, user_id: UUID, at: datetime) -> int:
        return self._inbox.mark_all_read(user_id, at)

    def forget(self, user_id: UUID, cursor: Cursor[Any] | None = None) -> None:
        self._inbox.forget(user_id)  # not in Postgres: on its own

    def _signal(self, items: Sequence[InboxItem]) -> None:
        users = sorted({str(item.user_id) for item in items})
        with self._pool.connection() as conn:
            conn.execute(
                "SELECT pg_notify(%s, u) FROM unnest(%s::text[]) AS u", (INBOX_CHANNEL, users)
            )
