"""Embedded runner lag: from a command's commit to its change being visible in a
Postgres read model, with projections followed through LISTEN/NOTIFY
(``streams.embedded``), all in one process as ``shop run`` runs them.

Each sample saves one ``ProfileUpdated`` through ``UserCommands.update_profile``,
then polls the ``user_profiles`` view's tracking position every 0.2 ms on a
dedicated connection until it reaches the position written. Samples are sent at a
fixed rate (open loop: a late sample is not skipped, its lag counts from when it
was written).

Run: ``uv run python -m bench.lag [--samples 1000 --rate 100 --runs 3]``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from uuid import UUID, uuid4

import psycopg

from bench._common import (
    DEFAULT_SERVER,
    Table,
    create_database,
    drop_database,
    fmt,
    log,
    machine_lines,
    median,
    percentile,
)
from infra.settings import Settings
from infra.wiring.process import Container, bootstrap

_POLL = 0.0002


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--postgres", default=DEFAULT_SERVER, help="maintenance conninfo")
    p.add_argument("--samples", type=int, default=1000, help="writes per run")
    p.add_argument("--rate", type=float, default=100, help="writes per second")
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()

    name, conninfo = create_database(args.postgres, "bench_lag")
    data_dir = Path(tempfile.mkdtemp(prefix="bench_lag_"))
    container = bootstrap(
        Settings(database_url=conninfo, data_dir=data_dir, secret_key="b" * 48)  # type: ignore[arg-type]
    )
    try:
        container.migrate()
        container.start_projections()
        user = container.user_commands.register(
            uuid4(), f"lag-{uuid4().hex[:8]}@example.com", "a long enough pass phrase 42!", "Lag"
        )
        rows: list[list[str]] = []
        p50s, p95s, p99s = [], [], []
        with psycopg.connect(conninfo, autocommit=True) as conn:
            for run in range(1, args.runs + 1):
                lags = _run(container, conn, user.id, args.samples, args.rate, run)
                p50s.append(percentile(lags, 50))
                p95s.append(percentile(lags, 95))
                p99s.append(percentile(lags, 99))
                rows.append(
                    [
                        f"run {run}",
                        str(len(lags)),
                        fmt(p50s[-1], 2),
                        fmt(p95s[-1], 2),
                        fmt(p99s[-1], 2),
                        fmt(max(lags), 2),
                    ]
                )
        rows.append(
            [
                "median of runs",
                "",
                fmt(median(p50s), 2),
                fmt(median(p95s), 2),
                fmt(median(p99s), 2),
                "",
            ]
        )
        print("\n".join(machine_lines(args.postgres)))
        print()
        print(
            Table(
                ["commit -> read model (ms)", "samples", "p50", "p95", "p99", "max"], rows
            ).markdown()
        )
    finally:
        container.close()
        drop_database(args.postgres, name)
        shutil.rmtree(data_dir, ignore_errors=True)


def _run(
    container: Container,
    conn: psycopg.Connection[tuple[int]],
    user_id: UUID,
    samples: int,
    rate: float,
    run: int,
) -> list[float]:
    lags: list[float] = []
    start = time.perf_counter()
    for i in range(samples):
        intended = start + i / rate
        delay = intended - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        written = container.user_commands.update_profile(user_id, {"name": f"Lag {run}-{i}"})
        committed = time.perf_counter()
        assert written.position is not None
        while True:
            row = conn.execute(
                "SELECT notification_id FROM read.user_profiles__tracking "
                "WHERE application_name = 'users'"
            ).fetchone()
            if row is not None and row[0] >= written.position.id:
                break
            time.sleep(_POLL)
        lags.append((time.perf_counter() - committed) * 1000)
    log(f"run {run}: {samples} samples in {time.perf_counter() - start:.1f}s")
    return lags


if __name__ == "__main__":
    main()
