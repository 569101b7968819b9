"""The audit chain's cost (ADR 0023): how fast records are hashed into a log's
chain, and how fast ``shop audit verify`` checks them.

It fills one log table (the eventsourcing columns) with ``--events`` records of
``--state-bytes`` of state each, written server-side by ``generate_series``, then
measures, each ``--runs`` times, the median of:

- hash only: the chain's arithmetic over records already in memory (SHA-256 of the
  length-prefixed record after the previous link), no database;
- follow from zero: ``ChainFollower.catch_up`` over Postgres, what the loop does
  for a log it has never seen (read a batch, hash it, COPY the links in);
- verify: ``verify`` against a signed head (read the records and the stored links
  again, recompute, compare);
- the loop's incremental step for 1,000 new records once caught up;
- and the chain's size in Postgres per record (``audit_chain``, with its indexes).

Run: ``uv run python -m bench.audit_chain [--events 200000 --state-bytes 400 --runs 3]``.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg_pool import ConnectionPool

from bench._common import (
    DEFAULT_SERVER,
    Table,
    create_database,
    drop_database,
    fmt,
    log,
    machine_lines,
    median,
)
from infra.postgres.audit_chain import DDL, PostgresChainStore
from streams.audit_chain.follower import ChainFollower, HeadSigning
from streams.audit_chain.heads import HeadSigner, SignedHead
from streams.audit_chain.links import extend
from streams.audit_chain.verification import verify

LOG = "bench"
TABLE = f"""
CREATE TABLE {LOG}_events (
    originator_id uuid NOT NULL, originator_version bigint NOT NULL, topic text,
    state bytea, notification_id bigserial, PRIMARY KEY (originator_id, originator_version)
);
CREATE UNIQUE INDEX ON {LOG}_events (notification_id ASC);
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.audit_chain",
        description="Audit chain hashing and verification rates (events/s).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--postgres", default=DEFAULT_SERVER, help="maintenance conninfo")
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--state-bytes", type=int, default=400, help="of each record's state")
    p.add_argument("--runs", type=int, default=3)
    return p.parse_args(argv)


def fill(conn: psycopg.Connection[Any], first: int, count: int, state_bytes: int) -> None:
    """``count`` records of ``state_bytes`` of pseudo-random state each."""
    repeats = max(1, state_bytes // 16)
    conn.execute(
        f"INSERT INTO {LOG}_events (originator_id, originator_version, topic, state) "
        "SELECT md5(i::text)::uuid, 1, 'domain.orders:Order.Placed', "
        "substring(decode(repeat(md5(i::text), %s::int), 'hex') for %s::int) "
        "FROM generate_series(%s::bigint, %s::bigint) AS i",
        (repeats, state_bytes, first, first + count - 1),
    )


class MemoryAnchor:
    where = "memory"

    def __init__(self) -> None:
        self.head: SignedHead | None = None

    def append(self, head: SignedHead) -> None:
        self.head = head

    def latest(self) -> SignedHead | None:
        return self.head


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    name, conninfo = create_database(args.postgres, "bench_audit")
    pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
        conninfo, min_size=1, max_size=2, kwargs={"autocommit": True}, open=True
    )
    try:
        with pool.connection() as conn:
            conn.execute(TABLE)
            conn.execute(DDL)
            log(f"writing {args.events:,} records of {args.state_bytes} bytes")
            fill(conn, 1, args.events, args.state_bytes)
            conn.execute(f"VACUUM ANALYZE {LOG}_events")
        store = PostgresChainStore(pool)
        records = []
        after = 0
        while page := store.records(LOG, after, 10_000):
            records += page
            after = page[-1].position
        signer = HeadSigner(Ed25519PrivateKey.generate())
        hashing, following, verifying, steps = [], [], [], []
        for run in range(args.runs):
            log(f"run {run + 1} of {args.runs}")
            started = time.perf_counter()
            extend(LOG, None, records)
            hashing.append(args.events / (time.perf_counter() - started))

            with pool.connection() as conn:
                conn.execute("TRUNCATE audit_chain")
            follower = ChainFollower(store)
            started = time.perf_counter()
            follower.catch_up()
            following.append(args.events / (time.perf_counter() - started))

            anchor = MemoryAnchor()
            HeadSigning(store, signer, anchor, lambda: datetime.now(UTC)).sign()
            started = time.perf_counter()
            result = verify(store, anchor, signer.verifier)
            verifying.append(args.events / (time.perf_counter() - started))
            assert result.intact and result.checked[LOG] == args.events
            with pool.connection() as conn:
                row = conn.execute("SELECT pg_total_relation_size('audit_chain')").fetchone()
            stored = int(row[0]) / args.events if row else float("nan")

            with pool.connection() as conn:
                fill(conn, args.events + 1 + run * 1000, 1000, args.state_bytes)
            started = time.perf_counter()
            follower.step()
            steps.append((time.perf_counter() - started) * 1000)
            with pool.connection() as conn:
                conn.execute(
                    f"DELETE FROM {LOG}_events WHERE notification_id > "
                    "(SELECT min(notification_id) + %s - 1 FROM bench_events)",
                    (args.events,),
                )
        table = Table(
            ["measure", "median"],
            [
                ["hash only (in memory)", f"{fmt(median(hashing), 0)} events/s"],
                [
                    "follow a log from zero (read, hash, store)",
                    f"{fmt(median(following), 0)} events/s",
                ],
                ["verify against the signed head", f"{fmt(median(verifying), 0)} events/s"],
                ["incremental step, 1,000 new records", f"{fmt(median(steps), 1)} ms"],
                ["stored chain (table and indexes)", f"{fmt(stored, 0)} bytes/record"],
            ],
        )
        print("\n".join(machine_lines(args.postgres)))
        print(f"- {args.events:,} records of {args.state_bytes} bytes of state, {args.runs} runs\n")
        print(table.markdown())
    finally:
        pool.close()
        drop_database(args.postgres, name)


if __name__ == "__main__":
    main()
