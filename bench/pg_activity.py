"""Which statements a database is busy with: samples ``pg_stat_activity`` every
``--interval-ms`` for ``--seconds`` and prints, per statement, the share of samples in
which a backend was running it (above 1.00: several backends at once). Waiting for
the client (``ClientRead``) does not count. For finding what takes Postgres' CPU
during a benchmark, run beside it with its database's name (``bench.checkout`` logs
it first):

    uv run python -m bench.pg_activity bench_77d7d7284a04 --seconds 30
"""

from __future__ import annotations

import argparse
import re
import time
from collections import Counter

import psycopg
from psycopg.conninfo import make_conninfo

ACTIVE = (
    "SELECT backend_type, left(query, 160) FROM pg_stat_activity "
    "WHERE state = 'active' AND pid <> pg_backend_pid() "
    "AND wait_event IS DISTINCT FROM 'ClientRead'"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("database")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    seen: Counter[tuple[str, str]] = Counter()
    samples = 0
    conninfo = make_conninfo(args.postgres, dbname=args.database)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            for backend, query in conn.execute(ACTIVE).fetchall():
                seen[(backend, re.sub(r"\s+", " ", query or ""))] += 1
            samples += 1
            time.sleep(args.interval_ms / 1000)
    print(f"{samples} samples over {args.seconds:g} s")
    for (backend, query), count in seen.most_common(args.top):
        print(f"{count / samples:6.3f}  {backend[:14]:14}  {query}")


if __name__ == "__main__":
    main()
