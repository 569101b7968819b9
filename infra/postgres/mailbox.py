"""The embedded mode's mail delivery: a mailbox table a person can read with
``shop mailbox`` or ``GET /admin/mailbox``, to follow verification and reset links
by hand. Real delivery (SMTP, SES) implements the same ``Mailer`` port later."""

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from commands.ports import Email

DDL = """
CREATE TABLE IF NOT EXISTS public.mailbox (
    message_id text PRIMARY KEY,
    recipient text NOT NULL,
    subject text NOT NULL,
    body text NOT NULL,
    sent_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS mailbox_recipient ON public.mailbox (recipient, sent_at DESC);
"""


class PostgresMailbox:
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def send(self, email: Email) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO public.mailbox (message_id, recipient, subject, body) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (message_id) DO NOTHING",
                (email.message_id, email.to, email.subject, email.body),
            )

    def messages(self, recipient: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            cursor.execute(
                "SELECT message_id, recipient, subject, body, sent_at FROM public.mailbox "
                "WHERE %(recipient)s::text IS NULL OR recipient = %(recipient)s "
                "ORDER BY sent_at DESC LIMIT %(limit)s",
                {"recipient": recipient, "limit": limit},
            )
            rows: list[dict[str, Any]] = cursor.fetchall()
            return rows
