"""The one side door the end-to-end tests use: counting rows in the database, to
prove that a refused request wrote nothing (no event, no payment gateway call); and
the stored event state, to prove that encryption at rest hides what it must."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import psycopg

from tests.support.polling import eventually

if TYPE_CHECKING:
    from tests.support.server import Server

GATEWAY_CALLS = "payment_gateway_requests"
SETTLE_SECONDS = 0.3
"""How long nothing may change for the database to count as settled."""


def row_counts(server: Server, tables: Iterable[str] | None = None) -> dict[str, int]:
    """Rows per table of ``tables``; by default of every event store (each
    ``*_events`` table) and the payment gateway calls."""
    with psycopg.connect(server.database_url) as conn:
        if tables is None:
            found = conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_name LIKE '%\\_events'"
            )
            tables = [str(row[0]) for row in found] + [GATEWAY_CALLS]
        counts: dict[str, int] = {}
        for table in tables:
            row = conn.execute(f'SELECT count(*) FROM public."{table}"').fetchone()
            assert row is not None
            counts[table] = int(row[0])
    assert counts
    return counts


def stored_states(database_url: str) -> list[bytes]:
    """The ``state`` of every row of every event store, as stored (to look for data
    that encryption at rest must hide)."""
    with psycopg.connect(database_url) as conn:
        tables = [
            str(row[0])
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_name LIKE '%\\_events'"
            )
        ]
        return [
            bytes(row[0])
            for table in tables
            for row in conn.execute(f'SELECT state FROM public."{table}"')
        ]


def settled_counts(server: Server) -> dict[str, int]:
    """``row_counts`` once nothing changed for a while: the saga and the policies
    have finished what earlier requests started."""
    previous: dict[str, int] = {}

    def unchanged() -> dict[str, int] | None:
        nonlocal previous
        now, before = row_counts(server), previous
        previous = now
        return now if now == before else None

    return eventually(unchanged, "the database to settle", interval=SETTLE_SECONDS)


@contextmanager
def nothing_written(server: Server) -> Iterator[None]:
    """The block (refused requests) writes nothing: no event in any store, no
    payment gateway call."""
    before = settled_counts(server)
    yield
    assert row_counts(server) == before, "a refused request wrote something"


def gateway_calls(server: Server, operation: str, key_part: str) -> int:
    with psycopg.connect(server.database_url) as conn:
        row = conn.execute(
            f"SELECT count(*) FROM public.{GATEWAY_CALLS} WHERE operation = %s AND key LIKE %s",
            (operation, f"%{key_part}%"),
        ).fetchone()
    assert row is not None
    return int(row[0])
