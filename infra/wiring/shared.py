"""What every area is built with: the database pools and the event stores'
environment, and the clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from infra.postgres.connection_check import check_if_suspect, check_if_suspect_async
from infra.postgres.server import bounded_connections, database_conninfo, eventsourcing_env
from infra.settings import Settings


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Pools:
    conninfo: str
    app_env: dict[str, str]
    """The environment of the Applications a process writes with (they create the
    event store's tables)."""
    pool: ConnectionPool[Connection[Any]]
    """Blocking connections: commands, views, policies."""
    read_pool: AsyncConnectionPool[AsyncConnection[Any]]
    """Asyncio connections of the read API (opened by the HTTP app's lifespan)."""

    @property
    def follower_env(self) -> dict[str, str]:
        """Followers (runners, rebuilds) open more Applications on these stores: no
        DDL from them, since concurrent CREATE OR REPLACE FUNCTION fails with "tuple
        concurrently updated"; the writing Applications created the tables. A
        follower needs two connections (LISTEN, and reading the log), no more, and
        a pool of its own (it holds a connection while it reads its log)."""
        return {
            **self.app_env,
            "CREATE_TABLE": "false",
            "POSTGRES_MAX_OVERFLOW": "1",
            "POSTGRES_SHARED_POOL": "n",
        }


def open_pools(settings: Settings) -> Pools:
    conninfo = database_conninfo(settings)
    bounded_connections(settings, conninfo)
    return Pools(
        conninfo=conninfo,
        app_env=eventsourcing_env(conninfo, settings),
        pool=ConnectionPool(
            conninfo,
            min_size=1,
            max_size=settings.db_pool_size,
            kwargs={"autocommit": True},
            timeout=settings.db_timeout,
            check=check_if_suspect,
            open=True,
        ),
        read_pool=AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=settings.db_pool_size,
            kwargs={
                "autocommit": True,
                "options": f"-c statement_timeout={int(settings.db_statement_timeout * 1000)}",
            },
            timeout=settings.db_timeout,
            check=check_if_suspect_async,
            open=False,
        ),
    )
