"""The embedded mode's delivery on every channel: a mailbox table a person can read
with ``shop mailbox`` or ``GET /admin/mailbox``, to follow verification and reset
links by hand. Keyed by the delivery, so a delivery sent twice is stored once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from commands.notifications.ports import Outgoing

DDL = """
CREATE TABLE IF NOT EXISTS public.mailbox (
    message_id text PRIMARY KEY,
    recipient text NOT NULL,
    subject text NOT NULL,
    body text NOT NULL,
    sent_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE public.mailbox ADD COLUMN IF NOT EXISTS channel text NOT NULL DEFAULT 'email';
ALTER TABLE public.mailbox ADD COLUMN IF NOT EXISTS html text;
CREATE INDEX IF NOT EXISTS mailbox_recipient ON public.mailbox (recipient, sent_at DESC);
"""


class PostgresMailbox:
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def send(self, outgoing: Outgoing) -> str:
        return self.send_many([outgoing])[0]

    def send_many(self, outgoings: Sequence[Outgoing]) -> list[str]:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO public.mailbox (message_id, recipient, subject, body, html, channel) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (message_id) DO NOTHING",
                [
                    (
                        str(o.delivery_id),
                        o.address,
                        o.content.subject,
                        o.content.text,
                        o.content.html or None,
                        o.channel.value,
                    )
                    for o in outgoings
                ],
            )
        return [str(o.delivery_id) for o in outgoings]

    def forget(self, user_id: UUID, cursor: Cursor[Any]) -> None:
        """Delete the messages of the user's deliveries (erased: they hold their
        address and the texts rendered for them). Found by delivery, not by address
        (an address the user gave up may be another account's since): the delivery
        log's forget keeps the ids, so either may go first."""
        cursor.execute(
            "DELETE FROM public.mailbox WHERE message_id IN (SELECT d.id::text "
            "FROM notify.deliveries d JOIN notify.notifications n ON n.id = d.notification_id "
            "WHERE n.user_id = %s)",
            (user_id,),
        )

    def messages(
        self, recipient: str | None = None, limit: int = 50, channel: str | None = None
    ) -> list[dict[str, Any]]:
        """Newest first. The rows keep the columns ``GET /admin/mailbox`` answers with."""
        with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            cursor.execute(
                "SELECT message_id, recipient, subject, body, sent_at FROM public.mailbox "
                "WHERE (%(recipient)s::text IS NULL OR recipient = %(recipient)s) "
                "AND (%(channel)s::text IS NULL OR channel = %(channel)s) "
                "ORDER BY sent_at DESC LIMIT %(limit)s",
                {"recipient": recipient, "channel": channel, "limit": limit},
            )
            rows: list[dict[str, Any]] = cursor.fetchall()
            return rows
