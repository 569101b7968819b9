"""Stream tickets in Postgres (``commands.notifications.tickets.StreamTickets``):
every process of a scaled deployment can consume a ticket another one issued."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg_pool import ConnectionPool

DDL = """
CREATE SCHEMA IF NOT EXISTS notify;
CREATE TABLE IF NOT EXISTS notify.stream_tickets (
    hash text PRIMARY KEY,
    user_id uuid NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS stream_tickets_by_user ON notify.stream_tickets (user_id);
"""


class PostgresStreamTickets:
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def store(self, ticket_hash: str, user_id: UUID, expires_at: datetime) -> None:
        """Also drops the user's expired tickets: an issued one that was never used
        would otherwise stay forever, and this bounds them per user without a sweeper."""
        with self._pool.connection() as conn:
            conn.execute(
                "WITH expired AS (DELETE FROM notify.stream_tickets "
                "WHERE user_id = %s AND expires_at <= now()) "
                "INSERT INTO notify.stream_tickets (hash, user_id, expires_at) "
                "VALUES (%s, %s, %s)",
                (user_id, ticket_hash, user_id, expires_at),
            )

    def consume(self, ticket_hash: str) -> UUID | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                "DELETE FROM notify.stream_tickets WHERE hash = %s AND expires_at > now() "
                "RETURNING user_id",
                (ticket_hash,),
            ).fetchone()
        if row is None:
            return None
        user_id: UUID = row[0]
        return user_id

    def forget(self, user_id: UUID, cursor: Cursor[Any]) -> None:
        """Delete the user's tickets (erased): none opens their stream any more."""
        cursor.execute("DELETE FROM notify.stream_tickets WHERE user_id = %s", (user_id,))
