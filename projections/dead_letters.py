"""Dead letters: the events a projection or policy could not apply, kept in the read
models' database with the error (docs/adr/0016-dead-letters-and-supervision.md).

A letter is written in the same transaction that moves the projection's tracked
position past its event, so an event is either applied or dead-lettered, never
lost. Order within an aggregate is kept: once one of an aggregate's events is
dead-lettered, the projection's later events of that aggregate are *parked*
behind it (dead-lettered too, naming the letter they wait behind) instead of being
applied to a state that lacks it; other aggregates flow on. ``shop dlq replay``
applies a projection's open letters again in log order, after a fix.

Live batches take a shared advisory lock per projection and replays an exclusive
one, so a replay and the live events of the same aggregate never interleave.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, Cursor

DDL = """
CREATE TABLE IF NOT EXISTS public.dead_letters (
    projection text NOT NULL,
    log text NOT NULL,
    position bigint NOT NULL,
    originator_id uuid NOT NULL,
    error text NOT NULL,
    behind bigint,
    failed_at timestamptz NOT NULL DEFAULT now(),
    replayed_at timestamptz,
    PRIMARY KEY (projection, log, position)
);
CREATE INDEX IF NOT EXISTS dead_letters_open
    ON public.dead_letters (projection, log) WHERE replayed_at IS NULL
"""
"""``behind``: the position of the aggregate's letter this one is parked behind
(None: this event failed itself)."""
LOCK_NAMESPACE = 0x5E1AD

LOCK_SHARED = "SELECT pg_advisory_xact_lock_shared(%s, hashtext(%s))"
PARKED = (
    "SELECT originator_id, min(position) FROM public.dead_letters "
    "WHERE projection = %s AND log = %s AND replayed_at IS NULL GROUP BY originator_id"
)
_RECORD = (
    "INSERT INTO public.dead_letters (projection, log, position, originator_id, error, behind) "
    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (projection, log, position) DO UPDATE "
    "SET error = EXCLUDED.error, behind = EXCLUDED.behind, failed_at = now(), replayed_at = NULL"
)
MAX_ERROR = 2000


@dataclass(frozen=True)
class DeadLetter:
    projection: str
    log: str
    position: int
    originator_id: UUID
    error: str
    behind: int | None
    failed_at: datetime


def record(
    cursor: Cursor[Any],
    projection: str,
    log: str,
    position: int,
    originator_id: UUID,
    error: str,
    behind: int | None = None,
) -> None:
    cursor.execute(_RECORD, (projection, log, position, originator_id, error[:MAX_ERROR], behind))


def parked(rows: list[Any]) -> dict[UUID, int]:
    """The ``PARKED`` query's rows (tuples): aggregate id -> the position its chain
    waits behind."""
    return {row[0]: int(row[1]) for row in rows}


def lock_exclusively(cursor: Cursor[Any], projection: str) -> None:
    """Inside a transaction: no live batch of ``projection`` runs until it ends."""
    cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_NAMESPACE, projection))


def open_letters(conn: Connection[Any], projection: str | None = None) -> list[DeadLetter]:
    """The letters not replayed yet, oldest first per projection and log."""
    rows = conn.execute(
        "SELECT projection, log, position, originator_id, error, behind, failed_at "
        "FROM public.dead_letters WHERE replayed_at IS NULL "
        "AND (%(projection)s::text IS NULL OR projection = %(projection)s) "
        "ORDER BY projection, log, position",
        {"projection": projection},
    ).fetchall()
    return [DeadLetter(*row) for row in rows]


OPEN_COUNTS = (
    "SELECT projection, count(*) FROM public.dead_letters WHERE replayed_at IS NULL "
    "GROUP BY projection"
)
"""Open letters per projection (for /health and /metrics)."""


def open_counts(conn: Connection[Any]) -> dict[str, int]:
    rows = conn.execute(OPEN_COUNTS).fetchall()
    return {str(row[0]): int(row[1]) for row in rows}


def mark_replayed(cursor: Cursor[Any], letter: DeadLetter) -> bool:
    """Close the letter; False when it was closed already (another replay)."""
    row = cursor.execute(
        "UPDATE public.dead_letters SET replayed_at = now() WHERE projection = %s "
        "AND log = %s AND position = %s AND replayed_at IS NULL RETURNING 1",
        (letter.projection, letter.log, letter.position),
    ).fetchone()
    return row is not None
