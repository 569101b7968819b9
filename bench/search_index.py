"""The OpenSearch indexer and the two search adapters on a seeded catalog.

Against an existing database (``SHOP_DATABASE_URL``) whose ``catalog_products`` view
is projected, with an osmem-server started here (in-memory, OpenSearch-compatible:
a test server, so the figures say what our indexer and adapter cost, not what a
real cluster does):

1. a full index build (``ProductIndexer.sync`` from revision 0): documents/s;
2. the follow path: the last ``--changes`` rows sent again, pass after pass (the
   position moved back; each document is refused with a 409): documents/s;
3. a query mix (single word, two words, prefix, with filters, a typo, a second page)
   through each adapter in-process, one at a time (closed loop: no queueing),
   ``--rounds`` times: p50/p95 per adapter.

Run (``--products`` is what ``shop seed`` made)::

    createdb bench_search && export SHOP_DATABASE_URL=postgresql://postgres@127.0.0.1/bench_search
    uv run shop seed catalog --products 20000
    uv run shop projections rebuild catalog_products
    uv run shop projections rebuild catalog_categories
    uv run python -m bench.search_index
"""

from __future__ import annotations

import argparse
import asyncio
import time
from decimal import Decimal
from typing import Any

from osmem_server import OsmemServer  # type: ignore[import-untyped]

from infra.settings import Settings
from infra.wiring.process import bootstrap
from projections.catalog.search import CatalogSearch, ProductFilter
from projections.catalog.search_postgres import PostgresCatalogSearch

QUERIES: list[tuple[str, ProductFilter, str]] = [
    ("shirt", ProductFilter(), "relevance"),
    ("cotton shirt", ProductFilter(), "relevance"),
    ("sh", ProductFilter(), "relevance"),
    ("shirt", ProductFilter(currency="EUR", max_price=Decimal(50), in_stock=True), "price_asc"),
    ("shrt", ProductFilter(), "relevance"),
    ("lamp", ProductFilter(min_rating=Decimal(3)), "rating"),
]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def query_mix(engine: CatalogSearch, rounds: int) -> tuple[list[float], int]:
    timings: list[float] = []
    found = 0
    for _ in range(rounds):
        for text, where, sort in QUERIES:
            started = time.perf_counter()
            first = await engine.search(text, where, sort, None, 24, True)
            if first.next_cursor:
                await engine.search(text, where, sort, first.next_cursor, 24, False)
            timings.append(time.perf_counter() - started)
            found += len(first.items)
    return timings, found


async def measure(engines: dict[str, CatalogSearch], pool: Any, rounds: int) -> None:
    await pool.open()
    try:
        for name, engine in engines.items():
            await query_mix(engine, 1)  # warm up
            timings, found = await query_mix(engine, rounds)
            print(
                f"{name:10} {len(timings)} searches (first page with facets, then page 2): "
                f"p50 {percentile(timings, 0.5) * 1000:.1f} ms, "
                f"p95 {percentile(timings, 0.95) * 1000:.1f} ms; {found} items on first pages"
            )
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--changes", type=int, default=2000)
    args = parser.parse_args()
    server = OsmemServer.start(japanese=False)
    container = bootstrap(Settings(opensearch_url=server.url))
    try:
        container.migrate()
        indexer, engine = container.search_indexer, container.catalog_search
        assert indexer is not None and engine is not None
        started = time.perf_counter()
        built = indexer.sync()
        seconds = time.perf_counter() - started
        print(f"full build: {built} documents in {seconds:.1f} s = {built / seconds:,.0f} docs/s")
        with container.pool.connection() as conn:
            conn.execute(
                "UPDATE public.search_index_positions SET revision = greatest(revision - %s, 0)",
                (args.changes,),
            )
        started = time.perf_counter()
        followed = 0
        while written := indexer.sync():  # one batch per pass, as the thread runs them
            followed += written
        seconds = time.perf_counter() - started
        print(
            f"follow: {followed} rows re-sent (each refused as already indexed, 409) in "
            f"{seconds:.1f} s = {followed / seconds:,.0f} docs/s"
        )
        engines: dict[str, CatalogSearch] = {
            "postgres": PostgresCatalogSearch(container.read_pool),
            "opensearch": engine,
        }
        asyncio.run(measure(engines, container.read_pool, args.rounds))
    finally:
        container.close()
        server.close()


if __name__ == "__main__":
    main()
