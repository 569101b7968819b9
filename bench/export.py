"""The export for ad hoc analysis: events exported per second by ``shop export
events``'s exporter, and the time of the README's three example queries (``shop
analytics query``'s DuckDB) over the export.

It seeds a catalog of ``--products`` (``commands.seeding``, what ``shop seed
catalog`` runs) and writes ``--orders`` orders straight through the ordering
Application (no checkout saga: each order placed, then confirmed, or one in ten
rejected), of one to three lines of seeded products at their catalog price, in
the products' currencies. Then it exports every log into a fresh directory (the
in-process exporter, without the CLI's start-up), reports events/s and the CPU
shares, exports again with nothing new (the incremental path), and runs each
example query ``--runs`` times (median). The issue's size:
``uv run python -m bench.export --products 1000000 --orders 100000`` (the seeding
alone is about 10 minutes here, ``bench.catalog_scale``).

Run: ``uv run python -m bench.export [--products 20000 --orders 10000 --runs 5]``.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg

from bench._common import (
    DEFAULT_SERVER,
    CpuMeter,
    Table,
    create_database,
    drop_database,
    fmt,
    log,
    machine_lines,
    median,
)
from commands.seeding.catalog import SeedPlan
from commands.users.passwords import PasswordHasher
from domain.lines import line
from domain.money import Money
from domain.orders import place_order
from infra.settings import Settings
from infra.wiring import export
from infra.wiring.process import Container, bootstrap

README = Path(__file__).resolve().parent.parent / "README.md"
PRODUCT_CREATED = "domain.catalog:Product.Created"
ADDRESS = {"name": "Bench Buyer", "line1": "1 Bench Road", "city": "Leeds", "country": "GB"}
ORDERS_PER_SAVE = 100


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.export",
        description="Events exported per second, and the example queries' time.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--postgres", default=DEFAULT_SERVER, help="maintenance conninfo")
    p.add_argument("--products", type=int, default=20_000)
    p.add_argument("--orders", type=int, default=10_000)
    p.add_argument(
        "--customers",
        type=int,
        default=100,
        help="seeded accounts (the seeder's 1,000 hung on an embedded Postgres's socket here)",
    )
    p.add_argument("--file-events", type=int, default=100_000, help="events per Parquet file")
    p.add_argument("--runs", type=int, default=5, help="of each query")
    p.add_argument("--keep", action="store_true", help="keep the database and the export")
    return p.parse_args(argv)


def example_queries() -> dict[str, str]:
    """The README's example queries, as ``tests/e2e_own_server`` checks them."""
    found = re.findall(
        r"<!-- example-query: (\w+) -->\n```sql\n(.*?)```", README.read_text(), re.DOTALL
    )
    return dict(found)


def sellable(container: Container) -> list[tuple[UUID, str, Money]]:
    """(id, SKU, price) of every seeded product that has a price."""
    app = container.catalog_app
    found: list[tuple[UUID, str, Money]] = []
    position = 0
    while True:
        page = app.recorder.select_notifications(
            start=position + 1, limit=5_000, topics=[PRODUCT_CREATED]
        )
        if not page:
            return found
        for notification in page:
            created: Any = app.mapper.to_domain_event(notification)
            if created.price:
                found.append((created.originator_id, created.sku, Money.from_dict(created.price)))
        position = page[-1].id


def write_orders(container: Container, orders: int, seed: int = 1) -> int:
    """``orders`` orders placed and decided; the events written."""
    rng = random.Random(seed)
    products = sellable(container)
    by_currency: dict[str, list[tuple[UUID, str, Money]]] = {}
    for product in products:
        by_currency.setdefault(product[2].currency, []).append(product)
    currencies = sorted(by_currency)
    customers = [uuid4() for _ in range(1_000)]
    app = container.ordering.app
    written, batch = 0, []
    for n in range(orders):
        chosen = rng.sample(by_currency[rng.choice(currencies)], rng.randint(1, 3))
        now = datetime.now(UTC)
        order = place_order(
            uuid4(),
            rng.choice(customers),
            [line(pid, sku, rng.randint(1, 4), price) for pid, sku, price in chosen],
            ADDRESS,
            now,
        )
        if rng.random() < 0.9:
            order.confirm(f"pi_bench_{n}", now)
        else:
            order.reject("the card was declined", now)
        batch.append(order)
        if len(batch) == ORDERS_PER_SAVE:
            written += len(app.save(*batch))
            batch = []
    if batch:
        written += len(app.save(*batch))
    return written


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    name, conninfo = create_database(args.postgres, "bench_export")
    data_dir = Path(tempfile.mkdtemp(prefix="bench-export-"))
    container = bootstrap(Settings(database_url=conninfo, data_dir=data_dir))
    try:
        container.migrate()
        log(f"seeding {args.products:,} products")
        seeder = container.seeder(PasswordHasher().hash("bench password, never used"))
        seeded = seeder.run(SeedPlan(args.products, 1, 40, args.customers), lambda done, _: None)
        log(f"  {seeded.events:,} events; writing {args.orders:,} orders")
        order_events = write_orders(container, args.orders)
        directory = data_dir / "export"
        with psycopg.connect(conninfo) as conn:
            backends = [
                int(row[0])
                for row in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                )
            ]
        meter = CpuMeter(None, backends)
        start = time.perf_counter()
        with export.exporter(container, directory, args.file_events) as exporter:
            reports = exporter.export()
        seconds = time.perf_counter() - start
        shares = meter.shares()
        events = sum(report.exported for report in reports)
        start = time.perf_counter()
        with export.exporter(container, directory, args.file_events) as exporter:
            again = sum(report.exported for report in exporter.export())
        nothing_new = time.perf_counter() - start
        size = sum(path.stat().st_size for path in directory.rglob("*.parquet"))
        queries = export.event_queries(directory)
        timings = []
        for label, sql in example_queries().items():
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                result = queries.run(sql)
                times.append(time.perf_counter() - start)
            timings.append(
                [
                    label,
                    fmt(median(times) * 1000, 0),
                    fmt(max(times) * 1000, 0),
                    str(len(result.rows)),
                ]
            )
    finally:
        container.close()
    print("\n".join(machine_lines(args.postgres)))
    print(
        f"- log: {seeded.events:,} seeded events (accounts, {args.products:,} products, "
        "their stock and reviews), "
        f"{order_events:,} ordering events ({args.orders:,} orders)\n"
    )
    print(
        Table(
            ["export", "events", "seconds", "events/s", "CPU: own / Postgres / other"],
            [
                [
                    "every log, from nothing",
                    f"{events:,}",
                    fmt(seconds, 2),
                    fmt(events / seconds, 0),
                    f"{shares.own:.2f} / {shares.postgres:.2f} / {shares.other:.2f}",
                ],
                ["again, nothing new", f"{again:,}", fmt(nothing_new, 2), "-", "-"],
            ],
        ).markdown()
    )
    print(f"\nParquet: {size / 1e6:,.1f} MB\n")
    print(Table(["query", "median ms", "max ms", "rows"], timings).markdown())
    if args.keep:
        log(f"kept database {name} and {data_dir}")
        return
    drop_database(args.postgres, name)
    shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
