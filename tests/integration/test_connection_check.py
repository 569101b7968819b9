"""The pools' check before lending a connection (``infra.postgres.connection_check``):
no round trip for a healthy idle connection, and a connection the server ended
while it sat in the pool is refused, so the pool replaces it before anyone uses it."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from infra.postgres.connection_check import check_if_suspect, check_if_suspect_async
from infra.wiring.process import Container


def _terminate(database_url: str, pid: int) -> None:
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.2)  # the server's FATAL message and FIN reach the socket


def _last_statement(database_url: str, conn: psycopg.Connection[Any]) -> str:
    with psycopg.connect(database_url, autocommit=True) as other:
        row = other.execute(
            "SELECT query FROM pg_stat_activity WHERE pid = %s", (conn.info.backend_pid,)
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_a_healthy_idle_connection_passes_without_a_query(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT 'last one'").fetchall()
        check_if_suspect(conn)
        assert _last_statement(database_url, conn) == "SELECT 'last one'"
        ConnectionPool.check_connection(conn)  # what the pool's own check sends
        assert _last_statement(database_url, conn) == ""


def test_a_connection_the_server_ended_is_refused(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        pid = conn.info.backend_pid
        _terminate(database_url, pid)
        with pytest.raises(psycopg.OperationalError):
            check_if_suspect(conn)


def test_the_pool_replaces_a_connection_ended_while_idle(database_url: str) -> None:
    with ConnectionPool(
        database_url, min_size=1, max_size=1, check=check_if_suspect, open=True
    ) as pool:
        with pool.connection() as conn:
            first = conn.info.backend_pid
        _terminate(database_url, first)
        with pool.connection() as conn:
            assert conn.info.backend_pid != first
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_the_async_pool_replaces_a_connection_ended_while_idle(database_url: str) -> None:
    async def lend_twice() -> tuple[int, int]:
        async with AsyncConnectionPool(
            database_url, min_size=1, max_size=1, check=check_if_suspect_async, open=False
        ) as pool:
            async with pool.connection() as conn:
                first = conn.info.backend_pid
            _terminate(database_url, first)
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")
                return first, conn.info.backend_pid

    first, second = asyncio.run(lend_twice())
    assert second != first


def test_the_event_store_saves_after_its_connection_was_ended(container: Container) -> None:
    """The library's pool has the same check (set by ``event_store.Factory``)."""
    datastore = container.users_app.factory.datastore  # type: ignore[attr-defined]
    # Set through a private attribute (the library takes no check of ours): a psycopg_pool
    # upgrade that renames it must fail here, not silently ping on every use again.
    assert datastore.pool._check is check_if_suspect
    with datastore.get_connection() as conn:
        first = conn.info.backend_pid
    _terminate(container.pools.conninfo, first)
    with datastore.get_connection() as conn:
        assert conn.info.backend_pid != first
    container.users.commands.register(
        uuid4(), "after@example.com", "A long enough password 1", "After"
    )
