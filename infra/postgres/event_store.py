"""The event store's Postgres recorders, without the library's own retries, and
one connection pool for every Application of a process.

``eventsourcing.postgres`` retries every read and write of the event store ten
times, 0.2 s apart, on any operational error, each attempt waiting up to the pool
timeout: with the database away a command hung for 22 s before failing (issue 13,
D8). Here a failure surfaces at once: a request answers 503 with Retry-After, and
the runners retry in their own supervised loops, with backoff. A connection that
died while idle (the server restarted) is replaced before use by the pool's
pre-ping (``POSTGRES_PRE_PING``), the one case the retries were good for; the ping
is sent only to a connection whose socket has something to read
(``connection_check``), not on every use.

The library gives each Application a pool of its own. A process writes to seven
logs, so it kept seven idle connections and could open seven times its
``SHOP_DB_POOL_SIZE``; with ``POSTGRES_SHARED_POOL`` set (the writing
Applications' environment) the Applications of one environment share one pool,
closed when the last of them closes. Followers keep their own: each holds a
connection while it reads its log, and they must not queue behind each other."""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, Mapper, Transcoder
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from eventsourcing.utils import Environment, EnvType, strtobool
from psycopg.errors import DuplicateTable, UniqueViolation

from infra.postgres import subject_keys
from infra.postgres.connection_check import check_if_suspect
from infra.postgres.sealing_mapper import SealingMapper

SHARED_POOL = "POSTGRES_SHARED_POOL"


class _AggregateRecorder(PostgresAggregateRecorder):
    insert_events = PostgresAggregateRecorder.insert_events.__wrapped__
    select_events = PostgresAggregateRecorder.select_events.__wrapped__


class _ApplicationRecorder(PostgresApplicationRecorder):
    insert_events = PostgresApplicationRecorder.insert_events.__wrapped__
    select_events = PostgresApplicationRecorder.select_events.__wrapped__
    select_notifications = PostgresApplicationRecorder.select_notifications.__wrapped__
    max_notification_id = PostgresApplicationRecorder.max_notification_id.__wrapped__


@dataclass
class _Shared:
    datastore: PostgresDatastore
    users: int


_shared: dict[tuple[tuple[str, str], ...], _Shared] = {}
_shared_lock = threading.Lock()


def _store_key(env: Environment) -> tuple[tuple[str, str], ...]:
    """What makes two Applications' stores the same: every Postgres setting."""
    return tuple(sorted((k, str(v)) for k, v in env.items() if k.startswith("POSTGRES_")))


class Factory(PostgresFactory):
    aggregate_recorder_class = _AggregateRecorder
    application_recorder_class = _ApplicationRecorder

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        if self.datastore.pre_ping:  # the library's pool takes no check of our own
            self.datastore.pool._check = check_if_suspect
        self._closed = False
        self._shared_key = (
            _store_key(self.env) if strtobool(self.env.get(SHARED_POOL) or "no") else None
        )
        if self._shared_key is None:
            return
        with _shared_lock:
            shared = _shared.get(self._shared_key)
            if shared is None:
                _shared[self._shared_key] = _Shared(self.datastore, 1)
                return
            shared.users += 1
        own, self.datastore = self.datastore, shared.datastore
        own.close()  # never opened: its pool opens on first use

    def mapper(
        self, transcoder: Transcoder | None = None, mapper_class: type[Mapper[Any]] | None = None
    ) -> Mapper[Any]:
        """Every Application's mapper seals personal fields (ADR 0024)."""
        cipher_key = self.env.get("CIPHER_KEY")
        store = "/".join(
            str(self.env.get(f"POSTGRES_{k}")) for k in ("HOST", "PORT", "DBNAME", "SCHEMA")
        )
        keys = subject_keys.SubjectKeys(
            self.datastore, store, base64.b64decode(cipher_key) if cipher_key else None
        )
        return SealingMapper(
            transcoder or self.transcoder(), keys, self.compressor(), self.cipher()
        )

    def application_recorder(self) -> ApplicationRecorder:
        recorder = super().application_recorder()
        if self.env_create_table():
            try:
                with self.datastore.get_connection() as conn:
                    conn.execute(subject_keys.DDL)
            except (DuplicateTable, UniqueViolation):
                pass  # another process created it at the same time
        return recorder

    def close(self) -> None:
        if self._shared_key is None:
            super().close()
            return
        with _shared_lock:
            if self._closed:
                return
            self._closed = True
            shared = _shared[self._shared_key]
            shared.users -= 1
            if shared.users:
                return
            del _shared[self._shared_key]
        shared.datastore.close()
