"""Catalog search one query at a time, straight through ``search_products`` on one
connection (no HTTP, no concurrency): what each kind of query of ``bench.search``'s
mix costs on its own, and which query of a kind is the slowest.

It runs the mix once to warm the connection and the cache, then again to measure.
``--candidates`` sets the bound of ADR 13 (``SHOP_SEARCH_CANDIDATES``), to compare
bounds in one invocation: ``--candidates 10000 5000 2000``.

Run: ``uv run python -m bench.search_direct [--database URL] [--queries 300]``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import defaultdict
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg

from bench._common import Table, fmt, log, machine_lines, median, percentile
from bench.search import DEFAULT_DATABASE, Query, catalog_departments, query_mix
from projections.catalog.search import ProductFilter
from projections.catalog.search_queries import SEARCH_CANDIDATES, search_products


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.search_direct",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--database", default=DEFAULT_DATABASE, help="the seeded catalog's conninfo")
    p.add_argument("--queries", type=int, default=300, help="queries of the mix")
    p.add_argument("--mix-seed", type=int, default=7, help="seed of the query mix")
    p.add_argument("--candidates", type=int, nargs="+", default=[SEARCH_CANDIDATES])
    return p.parse_args(argv)


def product_filter(params: dict[str, Any]) -> ProductFilter:
    """The filters of a query of the mix, as ``GET /search`` reads them."""

    def decimal(name: str) -> Decimal | None:
        return Decimal(str(params[name])) if name in params else None

    return ProductFilter(
        category_id=UUID(params["category"]) if "category" in params else None,
        currency=params.get("currency"),
        min_price=decimal("min_price"),
        max_price=decimal("max_price"),
        min_rating=decimal("min_rating"),
        in_stock=True if params.get("in_stock") == "true" else None,
    )


async def measure(conninfo: str, queries: list[Query], candidates: int) -> Table:
    timings: dict[str, list[tuple[float, str, int | None]]] = defaultdict(list)
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        for warming in (True, False):
            for query in queries:
                text, where = query.params["q"], product_filter(query.params)
                started = time.perf_counter()
                result = await search_products(conn, text, where, candidates=candidates)
                ms = (time.perf_counter() - started) * 1000
                if not warming:
                    timings[query.kind].append((ms, text, result.total))
    rows = []
    for kind, measured in sorted(timings.items()):
        latencies = [m for m, _, _ in measured]
        slowest = max(measured)
        rows.append(
            [
                kind,
                str(len(latencies)),
                fmt(median(latencies)),
                fmt(percentile(latencies, 95)),
                fmt(slowest[0]),
                f"`{slowest[1]}` ({slowest[2]} counted)",
            ]
        )
    everything = [m for measured in timings.values() for m, _, _ in measured]
    rows.append(
        [
            "all",
            str(len(everything)),
            fmt(median(everything)),
            fmt(percentile(everything, 95)),
            fmt(max(everything)),
            "",
        ]
    )
    headers = ["query kind", "queries", "p50 ms", "p95 ms", "max ms", "slowest (total)"]
    return Table(headers, rows)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    queries = query_mix(catalog_departments(args.database), args.queries, args.mix_seed)
    print("# Catalog search one query at a time (bench.search_direct)\n")
    print("\n".join(machine_lines(args.database)) + "\n")
    for candidates in args.candidates:
        log(f"{candidates:,} candidates")
        table = asyncio.run(measure(args.database, queries, candidates))
        print(f"## {candidates:,} candidates\n\n{table.markdown()}\n")


if __name__ == "__main__":
    main()
