"""TLS to the database is kept for every connection: our pools take the URL as it is,
and the event store (which the eventsourcing library opens from host, port, user and
password only) gets the URL's TLS parameters through libpq's environment. The server
here accepts TLS with a client certificate of the test's CA, nothing else, so a
connection that lost the URL's ``sslcert``/``sslkey`` would be refused."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from pydantic import SecretStr

from infra.postgres.server import TLS_ENVIRONMENT
from infra.settings import Settings
from infra.wiring.process import bootstrap
from tests.conftest import TEST_SECRET
from tests.support.tls_postgres import CLIENT_NAME, TlsPostgres, server_binaries, tls_postgres
from tests.support.users_client import STRONG_PASSWORD

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsPostgres]:
    binaries = server_binaries()
    if binaries is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI: no PostgreSQL built with OpenSSL in /usr/lib/postgresql")
        pytest.skip("no PostgreSQL built with OpenSSL in /usr/lib/postgresql")
    with tls_postgres(tmp_path_factory.mktemp("tls"), binaries) as server:
        yield server


@pytest.fixture(autouse=True)
def _process_tls_environment() -> Iterator[None]:
    """The container sets libpq's TLS variables for the whole process: put them back,
    or every later test would connect to the plain test server with a client cert."""
    saved = {name: os.environ.get(name) for name in TLS_ENVIRONMENT.values()}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _settings(url: str, data_dir: Path) -> Settings:
    return Settings(
        database_url=url, data_dir=data_dir, secret_key=SecretStr(TEST_SECRET), db_pool_size=2
    )


def _fresh_database(server: TlsPostgres) -> str:
    name = f"shop_{uuid4().hex[:8]}"
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def test_every_session_of_the_app_is_encrypted_and_verified(
    tls_server: TlsPostgres, tmp_path: Path
) -> None:
    dbname = _fresh_database(tls_server)
    container = bootstrap(_settings(tls_server.url(dbname), tmp_path))
    try:
        container.migrate()
        container.start_projections()  # the followers' own connections too
        user_id = uuid4()
        container.user_commands.register(user_id, "tls@example.com", STRONG_PASSWORD, "Tls")
        stored = container.users_app.recorder.select_events(user_id)
        assert stored and {event.originator_id for event in stored} == {user_id}
        with psycopg.connect(tls_server.url(dbname)) as conn:
            sessions = conn.execute(
                "SELECT s.ssl, s.client_dn FROM pg_stat_activity a JOIN pg_stat_ssl s "
                "USING (pid) WHERE a.datname = %s AND a.backend_type = 'client backend' "
                "AND a.pid <> pg_backend_pid()",
                (dbname,),
            ).fetchall()
    finally:
        container.close()
    assert len(sessions) >= 3, sessions  # at least our pool, the event store's, a follower's
    assert set(sessions) == {(True, f"/CN={CLIENT_NAME}")}


def test_a_server_certificate_the_ca_did_not_sign_is_refused_with_the_reason(
    tls_server: TlsPostgres, tmp_path: Path
) -> None:
    dbname = _fresh_database(tls_server)
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        bootstrap(_settings(tls_server.url(dbname, ca=tls_server.other_ca), tmp_path))
