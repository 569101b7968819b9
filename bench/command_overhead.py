"""What a command costs the write side in-process, to measure what tracing adds with
``SHOP_OTEL_EXPORTER=none`` (no provider: every span is the API's no-op one).

Per run: ``--saves`` calls of ``CatalogCommands.create_category`` (a handler, one
save of one event) on a fresh PostgreSQL database, one thread, no projections; and
as many saves of a new cart into an in-memory (POPO) store through the project's
``ContextApplication``, where only Python runs and the spans' share is largest.
Prints the median microseconds per call over ``--runs``.

Before and after a change, run the same file against each tree (the code on
``PYTHONPATH`` is the code measured)::

    PYTHONPATH=<tree> uv run python bench/command_overhead.py --runs 5
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from uuid import uuid4

from bench._common import DEFAULT_SERVER, create_database, drop_database, log, median
from commands.application import ContextApplication
from domain.access import Principal
from domain.carts import open_cart
from infra.settings import Settings
from infra.wiring.process import bootstrap

ADMIN = Principal(uuid4(), uuid4(), frozenset({"customer", "admin"}))


class Store(ContextApplication):
    pass


def postgres_run(server: str, saves: int) -> float:
    """Microseconds per ``create_category`` on a fresh database."""
    name, conninfo = create_database(server, "bench_overhead")
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            container = bootstrap(Settings(database_url=conninfo, data_dir=Path(data_dir)))
            try:
                container.migrate()
                commands = container.catalog_commands
                commands.create_category(ADMIN, uuid4(), "warm-up")
                started = time.perf_counter()
                for i in range(saves):
                    commands.create_category(ADMIN, uuid4(), f"category {i}")
                return (time.perf_counter() - started) / saves * 1e6
            finally:
                container.close()
    finally:
        drop_database(server, name)


def popo_run(saves: int) -> float:
    """Microseconds per save of a new cart into an in-memory store."""
    store = Store(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    carts = [open_cart(uuid4()) for _ in range(saves)]
    started = time.perf_counter()
    for cart in carts:
        store.save(cart)
    return (time.perf_counter() - started) / saves * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--server", default=DEFAULT_SERVER, help="Postgres maintenance conninfo")
    args = parser.parse_args()
    postgres, popo = [], []
    for run in range(args.runs):
        postgres.append(postgres_run(args.server, args.saves))
        popo.append(popo_run(args.saves))
        log(f"run {run + 1}: create_category {postgres[-1]:.0f} us, POPO save {popo[-1]:.1f} us")
    print(f"create_category on PostgreSQL: median {median(postgres):.0f} us per call")
    print(f"POPO save: median {median(popo):.1f} us per save")


if __name__ == "__main__":
    main()
