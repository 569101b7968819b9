"""The audit chain's links in Postgres (``audit_chain``: one row per record hashed),
and the logs read as stored: every table of the event store's schema with the
columns of an eventsourcing application recorder, found in the catalog, so that a
log added later (another area's Application) is chained without being named here,
and verification needs no Application, no cipher key and no decoding."""

from __future__ import annotations

from typing import Any

from psycopg import Connection, sql
from psycopg_pool import ConnectionPool

from streams.audit_chain.links import Link, StoredRecord

DDL = """
CREATE TABLE IF NOT EXISTS audit_chain (
    log text NOT NULL,
    seq bigint NOT NULL,
    position bigint NOT NULL,
    link bytea NOT NULL,
    PRIMARY KEY (log, seq),
    UNIQUE (log, position)
);
"""
EVENTS_SUFFIX = "_events"
_LOGS = """
SELECT c.table_name FROM information_schema.columns c
WHERE c.table_schema = %s AND c.table_name LIKE '%%\\_events'
  AND c.column_name IN ('originator_id', 'originator_version', 'topic', 'state', 'notification_id')
GROUP BY c.table_name HAVING count(*) = 5
ORDER BY c.table_name
"""


class PostgresChainStore:
    """``ChainStore`` over ``pool`` (autocommit connections)."""

    def __init__(self, pool: ConnectionPool[Connection[Any]], schema: str = "public") -> None:
        self._pool = pool
        self._schema = schema

    def logs(self) -> list[str]:
        with self._pool.connection() as conn:
            rows = conn.execute(_LOGS, (self._schema,)).fetchall()
        return [str(row[0]).removesuffix(EVENTS_SUFFIX) for row in rows]

    def records(self, log: str, after: int, limit: int) -> list[StoredRecord]:
        query = sql.SQL(
            "SELECT notification_id, originator_id::text, originator_version, topic, state "
            "FROM {} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(sql.Identifier(self._schema, log + EVENTS_SUFFIX))
        with self._pool.connection() as conn:
            rows = conn.execute(query, (after, limit)).fetchall()
        return [
            StoredRecord(int(n), str(o), int(v), str(t or ""), bytes(s or b""))
            for n, o, v, t, s in rows
        ]

    def links(self, log: str, after_seq: int, limit: int) -> list[Link]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT seq, position, link FROM audit_chain WHERE log = %s AND seq > %s "
                "ORDER BY seq LIMIT %s",
                (log, after_seq, limit),
            ).fetchall()
        return [Link(int(s), int(p), bytes(k)) for s, p, k in rows]

    def head(self, log: str) -> Link | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT seq, position, link FROM audit_chain WHERE log = %s "
                "ORDER BY seq DESC LIMIT 1",
                (log,),
            ).fetchone()
        return None if row is None else Link(int(row[0]), int(row[1]), bytes(row[2]))

    def heads(self) -> dict[str, Link]:
        heads = {log: self.head(log) for log in self.logs()}
        return {log: head for log, head in heads.items() if head is not None}

    def append(self, log: str, expected: Link | None, links: list[Link]) -> bool:
        with self._pool.connection() as conn, conn.transaction():
            # One extender per log at a time, whichever process (the scaled mode runs
            # the loop in every worker): the others find the head moved and stop.
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('audit_chain'), hashtext(%s))", (log,)
            )
            row = conn.execute("SELECT max(seq) FROM audit_chain WHERE log = %s", (log,)).fetchone()
            if (row[0] if row else None) != (expected.seq if expected else None):
                return False
            with conn.cursor().copy(
                "COPY audit_chain (log, seq, position, link) FROM STDIN"
            ) as copy:
                for link in links:
                    copy.write_row((log, link.seq, link.position, link.link))
        return True
