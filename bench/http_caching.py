"""What a revalidation costs against a full answer: GET /products/{id} (from the
Redis cache) and GET /products (a listing page from Postgres), each answered 200 and,
asked with the ETag it gave, 304 Not Modified; all four in one run, alternating.

What it does, in order (see bench/README.md, "HTTP caching"):

1. A fresh database; ``--products`` published products written in-process through
   the real catalog commands (``bench.product_detail.write_catalog``).
2. ``shop run`` as a subprocess with ``SHOP_REDIS_URL`` (a key prefix of its own).
3. Warm-up: every product read until served from Redis; the ETag of each product and
   of four listing pages (one per sort, 24 products each) fetched.
4. ``--rounds`` rounds; in each, the four targets in turn (the order rotated each
   round), each a closed loop of ``--duration`` seconds over ``--connections``
   keep-alive connections (a connection sends its next request when the previous
   answer arrives): detail 200 (no If-None-Match, ids round-robin), detail 304 (each
   id's own ETag), listing 200, listing 304. Per run: answers/s, and the server's
   CPU per answer (``shop run``'s process tree, from /proc); over the runs, the body
   bytes per answer. Any answer other than the expected status is counted and
   reported.
5. The medians of the rounds, and 304 against 200: the ratio of rates and of CPU per
   answer.

The load generator is this process (``bench/_rawhttp.py``); on a 2-core machine it
shares the cores with the server, so the rates are the pair's, and the CPU per
answer is the figure that does not depend on what else the machine does.

Run: ``uv run python -m bench.http_caching [--rounds 5 --duration 3]`` (about 1.5 min).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

import uvloop

from bench._common import (
    DEFAULT_SERVER,
    Table,
    cache_counts,
    create_database,
    discard_scratch,
    fmt,
    log,
    machine_lines,
    median,
    percentile,
    process_tree_cpu_seconds,
)
from bench._rawhttp import RawHttp
from bench.commands import shop_server
from bench.product_detail import CACHE_METRIC, forget_prefix, write_catalog
from infra.settings import Settings

LISTINGS = [f"/products?sort={sort}&limit=24" for sort in ("newest", "price_asc", "price_desc")]
LISTINGS.append("/products?sort=rating&limit=24")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.http_caching",
        description="Catalog reads answered 200 vs 304 Not Modified, alternating in one run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--postgres", default=DEFAULT_SERVER, help="maintenance conninfo")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis URL")
    p.add_argument("--products", type=int, default=300, help="products written and read")
    p.add_argument("--rounds", type=int, default=5, help="rounds of the four targets")
    p.add_argument("--duration", type=float, default=3, help="seconds per target per round")
    p.add_argument("--connections", type=int, default=16, help="keep-alive connections")
    p.add_argument("--keep", action="store_true", help="keep the database and server log")
    return p.parse_args(argv)


@dataclass
class Target:
    name: str
    expected: int
    requests: list[bytes]
    rates: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    body_bytes: int = 0
    answers: int = 0
    unexpected: dict[int, int] = field(default_factory=dict)


async def closed_loop(
    target: Target, port: int, pid: int, connections: int, seconds: float
) -> None:
    """One run: ``connections`` workers, each sending its next request when an answer
    arrives, for ``seconds``."""
    answered = 0
    latencies: list[float] = []
    async with RawHttp("127.0.0.1", port, connections) as client:
        cpu_before = process_tree_cpu_seconds(pid)
        start = time.perf_counter()
        end = start + seconds

        async def worker(k: int) -> None:
            nonlocal answered
            i = k
            while time.perf_counter() < end:
                sent = time.perf_counter()
                status, body = await client.send(target.requests[i % len(target.requests)])
                if status == target.expected:
                    answered += 1
                    target.body_bytes += len(body)
                    latencies.append((time.perf_counter() - sent) * 1000)
                else:
                    target.unexpected[status] = target.unexpected.get(status, 0) + 1
                i += connections

        await asyncio.gather(*(worker(k) for k in range(connections)))
        wall = time.perf_counter() - start
        cpu = process_tree_cpu_seconds(pid) - cpu_before
    target.answers += answered
    target.rates.append(answered / wall)
    target.cpu_ms.append(cpu * 1000 / max(answered, 1))
    target.latencies_ms += latencies


async def prepare(port: int, ids: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """The cache warm (each product read until Redis serves it), and the ETags of every
    product and listing page."""
    details: dict[str, str] = {}
    listings: dict[str, str] = {}
    async with RawHttp("127.0.0.1", port, 4) as client:
        deadline = time.monotonic() + 60
        while True:
            before = (await cache_counts(port, CACHE_METRIC))["hit"]
            for product_id in ids:
                status, _ = await client.request("GET", f"/products/{product_id}")
                assert status == 200, status
            hits = (await cache_counts(port, CACHE_METRIC))["hit"] - before
            if hits >= len(ids) or time.monotonic() > deadline:
                log(f"warm-up: {hits} of {len(ids)} reads served from Redis")
                break
            await asyncio.sleep(0.5)
    for product_id in ids:
        details[product_id] = await etag_of(port, f"/products/{product_id}")
    for path in LISTINGS:
        listings[path] = await etag_of(port, path)
    return details, listings


async def etag_of(port: int, path: str) -> str:
    """The ETag GET ``path`` answers (the head read here: RawHttp returns bodies)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        request = RawHttp("127.0.0.1", port, 1).encode("GET", path, headers={"Connection": "close"})
        writer.write(request)
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    finally:
        writer.close()
    assert head.startswith("HTTP/1.1 200"), head
    for line in head.split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "etag":
            return value.strip()
    raise AssertionError(f"no ETag on {path}: {head}")


async def measure(args: argparse.Namespace, port: int, pid: int, ids: list[str]) -> list[Target]:
    details, listings = await prepare(port, ids)
    http = RawHttp("127.0.0.1", port, 1)
    paths = [f"/products/{i}" for i in ids]
    targets = [
        Target("GET /products/{id} 200", 200, [http.encode("GET", p) for p in paths]),
        Target(
            "GET /products/{id} 304",
            304,
            [
                http.encode("GET", p, headers={"If-None-Match": details[i]})
                for p, i in zip(paths, ids, strict=True)
            ],
        ),
        Target("GET /products (listing) 200", 200, [http.encode("GET", p) for p in LISTINGS]),
        Target(
            "GET /products (listing) 304",
            304,
            [http.encode("GET", p, headers={"If-None-Match": listings[p]}) for p in LISTINGS],
        ),
    ]
    for round_ in range(args.rounds):
        order = targets[round_ % 4 :] + targets[: round_ % 4]
        for target in order:
            await closed_loop(target, port, pid, args.connections, args.duration)
        log(
            f"round {round_ + 1}/{args.rounds}: "
            + ", ".join(f"{t.name} {t.rates[-1]:,.0f}/s" for t in targets)
            + f" (load average {os.getloadavg()[0]:.2f})"
        )
    return targets


def report(
    args: argparse.Namespace, machine: list[str], targets: list[Target], loads: list[float]
) -> str:
    lines = ["## HTTP caching: 200 vs 304", "", *machine]
    lines.append(
        f"- {args.products} products, Redis product cache warm; {args.rounds} rounds x 4 "
        f"targets x {args.duration:g} s, closed loop over {args.connections} connections, "
        "order rotated each round"
    )
    lines.append(
        f"- load average (1 min) before / after: {loads[0]:.2f} / {loads[1]:.2f} "
        f"({os.cpu_count()} CPUs, shared)"
    )
    lines.append("")
    headers = ["target", "answers/s (median)", "per round", "server CPU ms/answer (median)"]
    headers.append("body bytes/answer")
    rows = [
        [
            t.name,
            f"{median(t.rates):,.0f}",
            " / ".join(f"{r:,.0f}" for r in t.rates),
            fmt(median(t.cpu_ms), 3),
            f"{t.body_bytes / max(t.answers, 1):,.0f}",
            fmt(percentile(t.latencies_ms, 50), 2),
            fmt(percentile(t.latencies_ms, 99), 2),
        ]
        for t in targets
    ]
    lines += [Table([*headers, "p50 ms", "p99 ms"], rows).markdown(), ""]
    for full, unchanged in ((targets[0], targets[1]), (targets[2], targets[3])):
        rate = median(unchanged.rates) / median(full.rates)
        cpu = median(unchanged.cpu_ms) / median(full.cpu_ms)
        lines.append(
            f"- {unchanged.name} / {full.name}: rate x{rate:.2f}, server CPU per answer x{cpu:.2f}"
        )
    for t in targets:
        if t.unexpected:
            lines.append(f"- {t.name}: unexpected statuses {t.unexpected}")
    return "\n".join(lines)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    loads = [os.getloadavg()[0]]
    machine = machine_lines(args.postgres)
    tmp = Path(tempfile.mkdtemp(prefix="bench-http-caching-"))
    secret = secrets.token_urlsafe(36)
    prefix = f"bench-{uuid4().hex[:8]}:"
    db_name, conninfo = create_database(args.postgres)
    log(f"database {db_name}, data dir {tmp}, redis prefix {prefix}")
    try:
        settings = Settings(
            database_url=conninfo,
            data_dir=tmp / "var",
            secret_key=secret,  # type: ignore[arg-type]
            redis_url=args.redis,
            product_cache_prefix=prefix,
        )
        started = time.perf_counter()
        ids = [str(i) for i in write_catalog(settings, args.products)]
        log(f"{len(ids)} products written in {time.perf_counter() - started:.1f}s")
        # shop_server passes this process's environment on to `shop run`.
        os.environ["SHOP_REDIS_URL"] = args.redis
        os.environ["SHOP_PRODUCT_CACHE_PREFIX"] = prefix
        with shop_server(conninfo, tmp / "var", secret, tmp) as server:
            port = int(server.base.rsplit(":", 1)[1])
            targets = uvloop.run(measure(args, port, server.pid, ids))
        loads.append(os.getloadavg()[0])
        print(report(args, machine, targets, loads))
    finally:
        forget_prefix(args.redis, prefix)
        discard_scratch(args.postgres, db_name, tmp, args.keep)


if __name__ == "__main__":
    main()
