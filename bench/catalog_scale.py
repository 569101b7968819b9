"""The catalog at scale: seeding N products (``shop seed catalog``), the database's
size, and the projections catching up from those events.

Runs against a database it keeps (``--database``; created if missing), since the
search benchmark (``bench.search``) needs the result. Phases (``--phases``):

- ``seed``: ``shop seed catalog --products N`` as a subprocess: wall time,
  products/s, events appended (rows added to the four event tables), peak RSS of
  the seeding process (getrusage of the reaped child).
- ``rebuild``: every catalog read model rebuilt from position 0 with ``shop
  projections rebuild`` (what ``shop run`` does at start on an empty view, minus
  the serving), ``catalog_products`` in one process and the other views one after
  another in a second (the machine has two cores): per view, the events it read
  (its upstream logs) per second, sampled from its tracking table while it runs.
- ``sizes``: ``pg_database_size`` and the largest relations.

Run: ``uv run python -m bench.catalog_scale --database postgresql://postgres@127.0.0.1:5432/eventshop_1m
--products 1000000`` (for a million products on this shared 2-core machine: 16-39
minutes of seeding; about 15 minutes for ``catalog_products`` to catch up, 6 for
``inventory_levels``).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from bench._common import Table, fmt, log, machine_lines
from projections.catalog.views import CATALOG_VIEWS
from projections.engine import followed_logs

REPO = Path(__file__).resolve().parent.parent
EVENT_TABLES = ("users_events", "catalog_events", "inventory_events", "reviews_events")
REBUILD_GROUPS = (
    ("catalog_products",),
    ("inventory_levels", "product_reviews", "catalog_categories"),
)
UPSTREAM = {view.name: followed_logs(view) for view, _ in CATALOG_VIEWS}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.catalog_scale",
        description="Seed a catalog, measure its size and the projections' catch-up.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--database", default="postgresql://postgres@127.0.0.1:5432/eventshop_1m", help="kept"
    )
    p.add_argument("--products", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--phases", default="seed,rebuild,sizes")
    p.add_argument("--sample", type=float, default=30, help="seconds between rebuild samples")
    return p.parse_args(argv)


def _env(database: str) -> dict[str, str]:
    return {
        **os.environ,
        "SHOP_DATABASE_URL": database,
        "SHOP_SECRET_KEY": "bench-" + "s" * 42,
        "SHOP_DATA_DIR": str(REPO / "var" / "bench-catalog-scale"),
    }


def ensure_database(database: str) -> None:
    name = urlsplit(database).path.lstrip("/")
    server = urlsplit(database)._replace(path="/postgres").geturl()
    with psycopg.connect(server, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            log(f"created database {name}")


def event_rows(database: str) -> int:
    total = 0
    with psycopg.connect(database, autocommit=True) as conn:
        for table in EVENT_TABLES:
            exists = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
            if exists and exists[0]:
                row = conn.execute(f"SELECT max(notification_id) FROM {table}").fetchone()
                total += int(row[0] or 0) if row else 0
    return total


# --- seeding --------------------------------------------------------------------------


@dataclass
class Seeding:
    seconds: float
    products: int
    events: int
    peak_rss_mib: float


def seed(args: argparse.Namespace) -> Seeding:
    before = event_rows(args.database)
    started = time.monotonic()
    shop = Path(sys.executable).parent / "shop"
    command = [str(shop), "seed", "catalog", f"--products={args.products}", f"--seed={args.seed}"]
    log("running " + " ".join(command[1:]))
    subprocess.run(command, env=_env(args.database), cwd=REPO, check=True)
    seconds = time.monotonic() - started
    # ru_maxrss of the children reaped so far: the seeding process (the largest).
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return Seeding(seconds, args.products, event_rows(args.database) - before, peak)


# --- rebuilding -----------------------------------------------------------------------


@dataclass
class Rebuild:
    view: str
    events: int
    seconds: float
    samples: list[tuple[float, int]] = field(default_factory=list)
    """(seconds since start, events applied) while it ran."""

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def _applied(database: str, view: str) -> int:
    """Events the newest generation of ``view`` has tracked, over its logs."""
    with psycopg.connect(database, autocommit=True) as conn:
        schema = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s "
            "ORDER BY length(nspname) DESC, nspname DESC LIMIT 1",
            (f"rm_{view}_g%",),
        ).fetchone()
        if schema is None:
            return 0
        row = conn.execute(
            f'SELECT coalesce(sum(m), 0) FROM (SELECT max(notification_id) AS m FROM "{schema[0]}"'
            ".tracking GROUP BY application_name) t"
        ).fetchone()
    return int(row[0]) if row else 0


def _heads(database: str) -> dict[str, int]:
    heads: dict[str, int] = {}
    with psycopg.connect(database, autocommit=True) as conn:
        for log_name in ("catalog", "inventory", "reviews"):
            row = conn.execute(f"SELECT max(notification_id) FROM {log_name}_events").fetchone()
            heads[log_name] = int(row[0] or 0) if row else 0
    return heads


def rebuild_group(
    args: argparse.Namespace, views: tuple[str, ...], out: list[Rebuild], delay: float
) -> None:
    time.sleep(delay)  # each rebuild migrates first: concurrent DDL would collide
    heads = _heads(args.database)
    shop = Path(sys.executable).parent / "shop"
    for view in views:
        started = time.monotonic()
        proc = subprocess.Popen(
            [str(shop), "projections", "rebuild", view],
            env=_env(args.database),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        result = Rebuild(view, sum(heads[log_name] for log_name in UPSTREAM[view]), 0.0)
        while proc.poll() is None:
            time.sleep(args.sample)
            elapsed = time.monotonic() - started
            try:
                applied = _applied(args.database, view)
            except psycopg.OperationalError as error:  # a shared server can be full
                log(f"{view}: no sample after {elapsed:,.0f} s ({error})")
                continue
            result.samples.append((elapsed, applied))
            log(f"{view}: {applied:,} events after {elapsed:,.0f} s")
        if proc.returncode != 0:
            raise RuntimeError(f"rebuild of {view} failed ({proc.returncode})")
        result.seconds = time.monotonic() - started
        log(f"{view}: {result.events:,} events in {result.seconds:,.0f} s")
        out.append(result)


def rebuild_all(args: argparse.Namespace) -> list[Rebuild]:
    results: list[Rebuild] = []
    threads = [
        threading.Thread(target=rebuild_group, args=(args, group, results, 20.0 * i))
        for i, group in enumerate(REBUILD_GROUPS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# --- sizes ------------------------------------------------------------------------------


def sizes(database: str) -> tuple[int, list[list[str]]]:
    with psycopg.connect(database, autocommit=True) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        tables = conn.execute(
            "SELECT n.nspname || '.' || c.relname, pg_total_relation_size(c.oid), "
            "pg_relation_size(c.oid), c.reltuples::bigint FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "ORDER BY 2 DESC LIMIT 15"
        ).fetchall()
    mib = 1024 * 1024
    return int(row[0]) if row else 0, [
        [name, fmt(total / mib, 0), fmt(heap / mib, 0), f"{rows:,}"]
        for name, total, heap, rows in tables
    ]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    phases = set(args.phases.split(","))
    ensure_database(args.database)
    server = urlsplit(args.database)._replace(path="/postgres").geturl()
    lines = ["# Catalog at scale (bench.catalog_scale)", "", *machine_lines(server), ""]
    if "seed" in phases:
        s = seed(args)
        lines += [
            "## Seeding",
            "",
            Table(
                ["products", "seconds", "products/s", "events", "events/s", "peak RSS MiB"],
                [
                    [
                        f"{s.products:,}",
                        fmt(s.seconds, 0),
                        fmt(s.products / s.seconds, 0),
                        f"{s.events:,}",
                        fmt(s.events / s.seconds, 0),
                        fmt(s.peak_rss_mib, 0),
                    ]
                ],
            ).markdown(),
            "",
        ]
    if "rebuild" in phases:
        results = rebuild_all(args)
        lines += [
            "## Projections rebuilt from position 0 (two processes)",
            "",
            Table(
                ["view", "events read", "seconds", "events/s"],
                [
                    [r.view, f"{r.events:,}", fmt(r.seconds, 0), fmt(r.rate, 0)]
                    for r in sorted(results, key=lambda r: r.view)
                ],
            ).markdown(),
            "",
        ]
    if "sizes" in phases:
        total, rows = sizes(args.database)
        lines += [
            f"## Size on disk: {total / 1024**3:,.2f} GiB (pg_database_size)",
            "",
            Table(["relation", "total MiB", "heap MiB", "rows (estimate)"], rows).markdown(),
            "",
        ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
