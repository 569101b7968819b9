"""Catalog search through HTTP against a seeded catalog (``shop seed catalog``), on
the PostgreSQL adapter: a mix of queries, p50/p95/p99 and throughput.

Unlike the other benchmarks this one does not make its own database: seeding a
million products takes half an hour, so it runs against one that exists
(``--database``, default ``eventshop_1m``; see bench/README.md for how it was made),
whose read models are caught up. It starts ``shop run`` on it (or uses ``--url``).

The query mix (deterministic, ``--mix-seed``), drawn from the seed's own vocabulary
(``commands.seeding.words``) and the category tree:

- ``word``: one word (a brand, a product noun, a colour);
- ``two words``: brand + noun, or colour + noun;
- ``prefix``: the first 4-6 letters of a noun;
- ``filtered``: a noun in its department, a EUR price range, in stock, half of
  them a minimum rating;
- ``typo``: a brand or noun with two letters swapped (the fuzzy fallback).

Every query asks for the first page (24) with facets and total, as a storefront
does. Two load shapes, both with the raw keep-alive client (``bench/_rawhttp.py``):

- *closed loop*: ``--clients`` (50) clients, each sending its next query as soon
  as the previous one is answered, for ``--duration`` seconds: throughput, and the
  latency 50 clients see at that throughput (the queueing is in it);
- *open loop* (``--rates``): queries due at a fixed rate, latency from the due time
  (no coordinated omission), at most ``--clients`` on the wire: the highest rate
  whose p95 stays under 50 ms.

With ``--redis URL`` the server caches search answers in Redis (``infra.redis.search_cache``,
a fresh key prefix per invocation, so it starts cold) and each run reports the share
of searches answered from the cache; without it every search reaches Postgres. The
mix is sent in the same order each time, so a cache meets each query again only
after the whole mix (its distinct queries are counted in the report): a worst case
for a cache next to real traffic, where a few queries make most of it.

``--price-changes N`` changes the price of random products N times a second through
the real command path while measuring: a catalog that changes, so that the cache's
answers are dropped at each refresh (one second), as in a shop that is selling.

Run: ``uv run python -m bench.search [--database URL] [--runs 3] [--redis URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit
from uuid import uuid4

import psycopg

from bench._common import (
    CpuMeter,
    CpuShares,
    Table,
    cache_counts,
    database_backends,
    fmt,
    log,
    machine_lines,
    median,
    paced,
    percentile,
    wait_for_quiet,
)
from bench._rawhttp import RawHttp
from bench.commands import Server, shop_server
from commands.seeding.drafts import brands
from commands.seeding.words import COLOURS, TAXONOMY
from domain.access import Principal
from domain.money import Money
from infra.settings import Settings
from infra.wiring.process import bootstrap

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/eventshop_1m"
P95_TARGET_MS = 50.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.search",
        description="Catalog search through HTTP over a seeded catalog.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--database", default=DEFAULT_DATABASE, help="the seeded catalog's conninfo")
    p.add_argument("--url", default=None, help="a running server; default: start shop run")
    p.add_argument("--clients", type=int, default=50, help="concurrent clients (connections)")
    p.add_argument("--duration", type=float, default=20, help="seconds per run")
    p.add_argument("--runs", type=int, default=3, help="closed-loop runs")
    p.add_argument("--warmup", type=float, default=10, help="seconds of warm-up load first")
    p.add_argument(
        "--rates",
        default="25,50,100,150,200,300",
        help="open-loop rates to climb (empty: skip); stops at the first that misses p95",
    )
    p.add_argument("--mix-seed", type=int, default=7, help="seed of the query mix")
    p.add_argument("--mix-size", type=int, default=5000, help="queries in the mix")
    p.add_argument(
        "--redis", default=None, help="Redis URL: cache search answers (default: no cache)"
    )
    p.add_argument(
        "--price-changes",
        type=float,
        default=0,
        help="price changes per second through the catalog's commands while measuring, "
        "as a live catalog changes (they stay in the database)",
    )
    p.add_argument("--quiet-wait", type=float, default=5, help="wait for a quiet machine")
    return p.parse_args(argv)


# --- the query mix ------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    kind: str
    params: dict[str, Any]
    """``GET /search``'s query parameters."""

    @property
    def path(self) -> str:
        return "/search?" + urlencode(self.params)


def _nouns() -> dict[str, list[str]]:
    """Department -> the one-word product nouns sold in it."""
    nouns: dict[str, set[str]] = defaultdict(set)
    for department, subs in TAXONOMY.items():
        for content in subs.values():
            leaves = content.values() if isinstance(content, dict) else [content]
            for words in leaves:
                nouns[department].update(w.lower() for w in words if w.isalpha() and len(w) >= 5)
    return {department: sorted(words) for department, words in nouns.items() if words}


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def query_mix(departments: dict[str, str], count: int, seed: int) -> list[Query]:
    """``departments``: name -> category id."""
    rng = random.Random(seed)
    names = [b.lower() for b in brands()]
    by_department = _nouns()
    nouns = sorted({n for words in by_department.values() for n in words})
    colours = [c for c in COLOURS if " " not in c]
    kinds = ["word"] * 30 + ["two words"] * 25 + ["prefix"] * 10 + ["filtered"] * 20
    kinds += ["typo"] * 15
    queries = []
    for _ in range(count):
        kind = rng.choice(kinds)
        params: dict[str, Any] = {}
        if kind == "word":
            params["q"] = rng.choice([rng.choice(names), rng.choice(nouns), rng.choice(colours)])
        elif kind == "two words":
            params["q"] = f"{rng.choice(names + colours)} {rng.choice(nouns)}"
        elif kind == "prefix":
            noun = rng.choice(nouns)
            params["q"] = noun[: rng.randint(4, min(6, len(noun)))]
        elif kind == "filtered":
            department = rng.choice(sorted(by_department))
            low = rng.choice((0, 10, 25, 50))
            params = {
                "q": rng.choice(by_department[department]),
                "category": departments[department],
                "currency": "EUR",
                "min_price": low,
                "max_price": low * 4 + 100,
                "in_stock": "true",
            }
            if rng.random() < 0.5:
                params["min_rating"] = rng.choice((3, 4))
        else:
            params["q"] = _typo(rng.choice(names + nouns), rng)
        queries.append(Query(kind, params))
    return queries


def catalog_departments(conninfo: str) -> dict[str, str]:
    """The top-level categories of the seeded catalog: name -> id."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT name, id FROM read.catalog_categories WHERE parent_id IS NULL"
        ).fetchall()
        count = conn.execute("SELECT count(*) FROM read.catalog_products").fetchone()
    departments = {str(name): str(id_) for name, id_ in rows if name in TAXONOMY}
    if not departments or not count or not count[0]:
        raise SystemExit(f"no seeded catalog in {conninfo}: run `shop seed catalog` first")
    log(f"catalog: {count[0]:,} products, {len(departments)} departments")
    return departments


# --- runs ---------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    wall: float = 0.0
    ok: int = 0
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    latencies_ms: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    fuzzy: int = 0
    cache: Counter[str] = field(default_factory=Counter)
    cpu: CpuShares = field(default_factory=lambda: CpuShares(0, 0, 0, 0))

    @property
    def throughput(self) -> float:
        return self.ok / self.wall if self.wall else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    def record(self, query: Query, status: int, body: bytes, ms: float) -> None:
        if status != 200:
            self.errors[str(status)] += 1
            return
        self.ok += 1
        self.latencies_ms.append(ms)
        self.by_kind[query.kind].append(ms)
        if b'"mode":"fuzzy"' in body:
            self.fuzzy += 1


async def closed_loop(
    client: RawHttp, queries: list[Query], clients: int, duration: float, meter: CpuMeter | None
) -> Run:
    run = Run(f"closed loop, {clients} clients")
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + duration
    counter = iter(range(10**12))

    async def client_loop() -> None:
        while loop.time() < deadline:
            query = queries[next(counter) % len(queries)]
            sent = loop.time()
            try:
                status, body = await client.request("GET", query.path)
            except (OSError, asyncio.IncompleteReadError) as error:
                run.errors[type(error).__name__] += 1
                continue
            run.record(query, status, body, (loop.time() - sent) * 1000)

    await asyncio.gather(*(client_loop() for _ in range(clients)))
    run.wall = loop.time() - start
    if meter is not None:
        run.cpu = meter.shares()
    return run


async def open_loop(
    client: RawHttp,
    queries: list[Query],
    rate: float,
    duration: float,
    clients: int,
    meter: CpuMeter | None,
) -> Run:
    """Query i is due at start + i / rate; its latency counts from then. At most
    ``clients`` are on the wire; the rest wait in order, and that wait counts."""
    run = Run(f"open loop @ {rate:g}/s")
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(clients)
    total = max(1, round(rate * duration))
    offset = random.randrange(len(queries))

    async def one(i: int, due: float) -> None:
        query = queries[(offset + i) % len(queries)]
        try:
            async with gate:
                status, body = await client.request("GET", query.path)
        except (OSError, asyncio.IncompleteReadError) as error:
            run.errors[type(error).__name__] += 1
            return
        run.record(query, status, body, (loop.time() - due) * 1000)

    schedule = await paced(rate, total, one, drain_timeout=max(5.0, duration))
    run.errors["unfinished"] += schedule.unfinished
    run.wall = schedule.wall
    if meter is not None:
        run.cpu = meter.shares()
    return run


# --- the report ---------------------------------------------------------------------


def _ms(values: list[float]) -> list[str]:
    return [fmt(percentile(values, q)) for q in (50, 95, 99)]


def run_row(run: Run) -> list[str]:
    errors = sum(run.errors.values())
    return [
        run.label,
        f"{run.throughput:,.0f}",
        *_ms(run.latencies_ms),
        str(errors),
        _hit_share(run.cache),
        f"{run.cpu.own:.2f}",
        f"{run.cpu.server:.2f}",
        f"{run.cpu.postgres:.2f}",
        f"{run.cpu.other:.2f}",
    ]


RUN_HEADERS = [
    "run",
    "req/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "errors",
    "from cache",
    "generator cores",
    "server cores",
    "postgres cores",
    "other cores",
]


def _hit_share(counts: Counter[str]) -> str:
    asked = sum(counts.values())
    return f"{counts['hit'] / asked:.0%}" if asked else "-"


def kind_table(runs: list[Run]) -> Table:
    kinds = sorted({k for r in runs for k in r.by_kind})
    rows = []
    for kind in kinds:
        values = [ms for r in runs for ms in r.by_kind.get(kind, [])]
        rows.append([kind, str(len(values)), *_ms(values)])
    return Table(["query kind", "answers", "p50 ms", "p95 ms", "p99 ms"], rows)


def report(args: argparse.Namespace, closed: list[Run], ladder: list[Run]) -> str:
    server = urlsplit(args.database)._replace(path="/postgres").geturl()
    lines = ["# Catalog search through HTTP (bench.search)", "", *machine_lines(server), ""]
    lines += [
        f"- catalog: `{args.database}`; {args.clients} clients; {args.duration:g} s runs; "
        f"{args.distinct:,} distinct queries in a mix of {args.mix_size:,}; search cache: "
        + ("Redis (`--redis`)" if args.redis else "none (every search reaches Postgres)"),
        "",
    ]
    lines += ["## Closed loop", "", Table(RUN_HEADERS, [run_row(r) for r in closed]).markdown()]
    if closed:
        lines += [
            "",
            f"Median of {len(closed)}: {median(r.throughput for r in closed):,.0f} req/s, "
            f"p50 {fmt(median(r.p(50) for r in closed))}, "
            f"p95 {fmt(median(r.p(95) for r in closed))}, "
            f"p99 {fmt(median(r.p(99) for r in closed))} ms; "
            f"fuzzy answers {sum(r.fuzzy for r in closed):,} of {sum(r.ok for r in closed):,}.",
            "",
            kind_table(closed).markdown(),
        ]
    if ladder:
        good = [r for r in ladder if not sum(r.errors.values()) and r.p(95) < P95_TARGET_MS]
        lines += [
            "",
            "## Open loop",
            "",
            Table(RUN_HEADERS, [run_row(r) for r in ladder]).markdown(),
        ]
        lines += [
            "",
            "Highest rate with p95 < 50 ms and no errors: "
            + (good[-1].label.rsplit("@ ", 1)[1] if good else "none"),
            "",
            kind_table(ladder).markdown(),
        ]
    return "\n".join(lines) + "\n"


# --- a catalog that changes ---------------------------------------------------------

ADMIN = Principal(uuid4(), uuid4(), frozenset({"customer", "admin"}))


@contextmanager
def price_changes(args: argparse.Namespace, data_dir: Path) -> Iterator[list[int]]:
    """``--price-changes``: a thread changing random products' prices at that rate
    until the block ends; yields the count of changes made so far."""
    made = [0]
    if not args.price_changes:
        yield made
        return
    settings = Settings(
        database_url=args.database,
        data_dir=data_dir,
        secret_key=secrets.token_urlsafe(48),  # type: ignore[arg-type]
    )
    container = bootstrap(settings)
    with psycopg.connect(args.database) as conn:
        products = conn.execute(
            "SELECT id, currency FROM read.catalog_products WHERE status = 'published' "
            "ORDER BY random() LIMIT 2000"
        ).fetchall()
    stopping = threading.Event()

    def change() -> None:
        rng = random.Random(args.mix_seed)
        started = time.monotonic()
        while not stopping.wait(
            max(0.0, started + made[0] / args.price_changes - time.monotonic())
        ):
            product_id, currency = rng.choice(products)
            price = Money.of(f"{rng.randint(5, 500)}.{rng.randint(0, 99):02d}", currency)
            container.catalog_commands.change_price(ADMIN, product_id, price)
            made[0] += 1

    thread = threading.Thread(target=change, name="price-changes", daemon=True)
    thread.start()
    try:
        yield made
    finally:
        stopping.set()
        thread.join()
        container.close()


# --- main ---------------------------------------------------------------------------


@contextmanager
def server_for(args: argparse.Namespace) -> Iterator[Server]:
    if args.url:
        yield Server(args.url.rstrip("/"), pid=0)
        return
    if args.redis:  # shop_server passes this process's environment on to `shop run`
        os.environ["SHOP_REDIS_URL"] = args.redis
        os.environ["SHOP_PRODUCT_CACHE_PREFIX"] = f"bench-search-{secrets.token_hex(4)}:"
    else:
        os.environ.pop("SHOP_REDIS_URL", None)
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        secret = secrets.token_urlsafe(48)
        with shop_server(args.database, Path(tmp) / "var", secret, Path(tmp)) as server:
            yield server


async def measure(args: argparse.Namespace, server: Server, queries: list[Query]) -> str:
    host, port = urlsplit(server.base).hostname or "127.0.0.1", urlsplit(server.base).port or 80
    closed: list[Run] = []
    ladder: list[Run] = []
    with psycopg.connect(args.database, autocommit=True) as conn:
        async with RawHttp(host, port, args.clients) as client:

            def meter() -> CpuMeter:
                return CpuMeter(server.pid or None, database_backends(conn))

            async def cached_so_far() -> Counter[str]:
                if not args.redis:
                    return Counter()
                return await cache_counts(port, "eventshop_search_cache_requests")

            if args.warmup > 0:
                log(f"warm-up, {args.warmup:g} s")
                await closed_loop(client, queries, args.clients, args.warmup, None)
            for n in range(args.runs):
                wait_for_quiet(args.quiet_wait)
                counts = await cached_so_far()
                run = await closed_loop(client, queries, args.clients, args.duration, meter())
                run.cache = await cached_so_far() - counts
                run.label += f" #{n + 1}"
                log(f"{run.label}: {run.throughput:,.0f} req/s, p95 {run.p(95):.1f} ms")
                closed.append(run)
            for rate in [float(r) for r in args.rates.split(",") if r.strip()]:
                wait_for_quiet(args.quiet_wait)
                counts = await cached_so_far()
                run = await open_loop(client, queries, rate, args.duration, args.clients, meter())
                run.cache = await cached_so_far() - counts
                log(f"{run.label}: {run.throughput:,.0f} req/s, p95 {run.p(95):.1f} ms")
                ladder.append(run)
                if sum(run.errors.values()) or run.p(95) >= P95_TARGET_MS:
                    break
    return report(args, closed, ladder)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    queries = query_mix(catalog_departments(args.database), args.mix_size, args.mix_seed)
    args.distinct = len({query.path for query in queries})
    started = time.monotonic()
    with (
        server_for(args) as server,
        tempfile.TemporaryDirectory(prefix="bench-search-writer-") as writer_dir,
        price_changes(args, Path(writer_dir)) as made,
    ):
        started_writes = time.monotonic()
        text = asyncio.run(measure(args, server, queries))
        if args.price_changes:
            rate = made[0] / (time.monotonic() - started_writes)
            text += f"\nPrice changes while measuring: {made[0]:,} ({rate:.1f}/s).\n"
    log(f"done in {time.monotonic() - started:.0f} s (pid {os.getpid()})")
    print(text)


if __name__ == "__main__":
    main()
