"""What a command costs the write side in-process, to measure what tracing adds with
``SHOP_OTEL_EXPORTER=none`` (no provider: every span is the API's no-op one).

Per run: ``--saves`` calls of ``CatalogCommands.create_category`` (a handler, one
save of one event) on a fresh PostgreSQL database, one thread, no projections; and
as many saves of a new cart into an in-memory (POPO) store through the project's
``ContextApplication``, where only Python runs and the spans' share is largest.
Then, in one process, the same POPO saves alternately through ``ContextApplication``
and through the library's plain ``Application`` (``--rounds`` of them), which
isolates what the project's save adds under the same load. Prints the median
microseconds per call over ``--runs``: wall clock, and this
process's CPU time (what tracing adds is CPU here; on a shared machine the CPU
time varies far less than the wall clock).

Before and after a change, run the same file against each tree (the code on
``PYTHONPATH`` is the code measured)::

    PYTHONPATH=<tree> uv run python bench/command_overhead.py --runs 5
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from uuid import UUID, uuid4

from eventsourcing.application import Application

from bench._common import DEFAULT_SERVER, create_database, drop_database, log, median
from commands.application import ContextApplication
from domain.access import Principal
from domain.carts import open_cart
from infra.settings import Settings
from infra.wiring.process import bootstrap

ADMIN = Principal(uuid4(), uuid4(), frozenset({"customer", "admin"}))


class Store(ContextApplication):
    pass


class PlainStore(Application[UUID]):
    pass


Timing = tuple[float, float]
"""Microseconds per call: wall clock, CPU."""


def _per_call(started: Timing, calls: int) -> Timing:
    return (
        (time.perf_counter() - started[0]) / calls * 1e6,
        (time.process_time() - started[1]) / calls * 1e6,
    )


def postgres_run(server: str, saves: int) -> Timing:
    """Per ``create_category`` on a fresh database."""
    name, conninfo = create_database(server, "bench_overhead")
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            container = bootstrap(Settings(database_url=conninfo, data_dir=Path(data_dir)))
            try:
                container.migrate()
                commands = container.catalog_commands
                commands.create_category(ADMIN, uuid4(), "warm-up")
                started = time.perf_counter(), time.process_time()
                for i in range(saves):
                    commands.create_category(ADMIN, uuid4(), f"category {i}")
                return _per_call(started, saves)
            finally:
                container.close()
    finally:
        drop_database(server, name)


def popo_run(saves: int, store_class: type[Application[UUID]] = Store) -> Timing:
    """Per save of a new cart into an in-memory store."""
    store = store_class(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    carts = [open_cart(uuid4()) for _ in range(saves)]
    started = time.perf_counter(), time.process_time()
    for cart in carts:
        store.save(cart)
    return _per_call(started, saves)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--server", default=DEFAULT_SERVER, help="Postgres maintenance conninfo")
    args = parser.parse_args()
    postgres: list[Timing] = []
    popo: list[Timing] = []
    for run in range(args.runs):
        postgres.append(postgres_run(args.server, args.saves))
        popo.append(popo_run(args.saves))
        log(f"run {run + 1}: create_category {postgres[-1]}, POPO save {popo[-1]} (wall, CPU us)")
    for name, timings in (("create_category on PostgreSQL", postgres), ("POPO save", popo)):
        wall, cpu = median(t[0] for t in timings), median(t[1] for t in timings)
        print(f"{name}: median {wall:.1f} us wall, {cpu:.1f} us CPU per call")
    ours, plain = [], []
    for _ in range(args.rounds):
        ours.append(popo_run(args.saves)[1])
        plain.append(popo_run(args.saves, PlainStore)[1])
    print(
        f"POPO save, CPU, ContextApplication {median(ours):.1f} us / plain Application "
        f"{median(plain):.1f} us = {median(ours) / median(plain):.3f}"
    )


if __name__ == "__main__":
    main()
