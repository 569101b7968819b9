"""Product detail through HTTP with the Redis cache warm, against a bare FastAPI
endpoint returning a constant, in the same run.

What it does, in order (see bench/README.md):

1. A fresh database; ``--products`` published products written in-process through
   the real catalog commands (``CatalogCommands``: create, categorise, publish).
2. ``shop run`` as a subprocess with ``SHOP_REDIS_URL`` (the machine's Redis, a key
   prefix of its own), projections and the cache follower in-process; and a second
   uvicorn process serving a bare FastAPI app: ``async def`` returning a constant
   dict, same uvicorn settings as ``shop run``.
3. Warm-up: every product read twice (the first read fills the cache); /metrics must
   then count hits.
4. Per run, each endpoint in turn (anonymous ``GET /products/{id}``, ids round-robin
   over every product; ``GET /constant``):
   - *closed loop* (``--connections`` keep-alive connections, each sends its next
     request when the previous answer arrives): requests/s at saturation, and the
     latencies seen (which hide queueing: coordinated omission);
   - *open loop* at ``--rate``: request i is due at start + i / rate and its latency
     counts from then, so p50/p95/p99 include any queueing.
   The load generator is this process (asyncio on uvloop with the minimal HTTP
   client of ``bench/_rawhttp.py``); its CPU share is reported, as is the server's,
   Redis's and Postgres's.

Run: ``uv run python -m bench.product_detail [--runs 3 --duration 8 --rate 3000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import redis
import uvloop

from bench._common import (
    DEFAULT_SERVER,
    CpuMeter,
    CpuShares,
    Table,
    cache_counts,
    create_database,
    database_backends,
    discard_scratch,
    fmt,
    log,
    machine_lines,
    median,
    paced,
    percentile,
    pids_cpu_seconds,
    wait_for_quiet,
)
from bench._constant_app import app as constant_app
from bench._rawhttp import RawHttp
from bench.commands import REPO, _stop, _wait_until, free_port, shop_server
from domain.access import Principal
from domain.money import Money
from infra.entrypoints.http import create_app
from infra.settings import Settings
from infra.wiring.process import bootstrap

P95_TARGET_MS = 20.0
RATE_TARGET = 3000.0
SELLER = Principal(uuid4(), uuid4(), frozenset({"customer", "seller", "admin"}))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.product_detail",
        description="GET /products/{id} from a warm Redis cache vs a constant FastAPI endpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--postgres", default=DEFAULT_SERVER, help="maintenance conninfo")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis URL")
    p.add_argument("--products", type=int, default=1000, help="products written and read")
    p.add_argument("--duration", type=float, default=8, help="seconds per run")
    p.add_argument("--runs", type=int, default=3, help="runs of each kind and endpoint")
    p.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    p.add_argument("--rate", type=float, default=RATE_TARGET, help="open-loop rate (req/s)")
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=5,
        help="before each run, wait up to this long for others' CPU use to drop",
    )
    p.add_argument("--calls", type=int, default=5000, help="in-process calls per run")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="uvicorn worker processes of both servers (shop run --workers)",
    )
    p.add_argument("--keep", action="store_true", help="keep the database and server log")
    return p.parse_args(argv)


# --- setup -----------------------------------------------------------------------------


def write_catalog(settings: Settings, count: int) -> list[UUID]:
    """Published products through the real commands, in ten categories."""
    container = bootstrap(settings)
    try:
        container.migrate()
        commands = container.catalog_commands
        categories = [uuid4() for _ in range(10)]
        for n, category in enumerate(categories):
            commands.create_category(SELLER, category, f"Category {n}")
        ids: list[UUID] = []
        for n in range(count):
            product_id = uuid4()
            commands.create_product(
                SELLER,
                product_id,
                SELLER.user_id,
                f"BENCH-{n:07d}",
                f"Bench product {n}",
                description="A product of the product-detail benchmark. " * 4,
                attributes={"color": ("red", "green", "blue")[n % 3], "size": str(n % 7)},
                images=[f"https://img.example/{product_id}.jpg"],
                price=Money.of(f"{5 + n % 500}.99", "EUR"),
            )
            commands.categorise(SELLER, product_id, [categories[n % len(categories)]])
            commands.publish(SELLER, product_id)
            ids.append(product_id)
            if (n + 1) % 250 == 0:
                log(f"  {n + 1}/{count} products written")
    finally:
        container.close()
    return ids


@contextlib.contextmanager
def constant_server(logs: Path, workers: int) -> Iterator[tuple[str, int]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = logs / "constant.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench._constant_app", str(port), str(workers)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until(proc, lambda: _answers(port, "/constant"), log_path, "constant server")
            log(f"constant FastAPI endpoint (pid {proc.pid}) at {base}/constant")
            yield base, proc.pid
        finally:
            _stop(proc)


def _answers(port: int, path: str) -> bool:
    async def probe() -> int:
        async with RawHttp("127.0.0.1", port, 1) as client:
            status, _ = await client.request("GET", path)
        return status

    with contextlib.suppress(OSError):
        return asyncio.run(probe()) == 200
    return False


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn's worker processes)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(stat[1])
    tree = [pid]
    for candidate in tree:
        tree += [child for child, parent in parents.items() if parent == candidate]
    return tree


def redis_server_pid() -> int | None:
    """The machine's redis-server (for its CPU share), if this user can see it."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "redis-server":
                    return int(entry.name)
    return None


def forget_prefix(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


# --- load ----------------------------------------------------------------------------------


@dataclass
class Run:
    endpoint: str
    kind: str
    """closed or open (loop)."""
    rate: float = 0.0
    """open loop: the offered rate."""
    ok: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    wall: float = 0.0
    cpu: CpuShares = field(default_factory=lambda: CpuShares(0, 0, 0, 0))
    max_send_lag_ms: float = 0.0
    cache: Counter[str] = field(default_factory=Counter)

    @property
    def achieved(self) -> float:
        return self.ok / self.wall if self.wall else 0.0

    @property
    def errors(self) -> int:
        return sum(self.statuses.values()) - self.ok

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


@dataclass
class Target:
    name: str
    port: int
    pid: int
    requests: list[bytes]


async def closed_loop(run: Run, target: Target, connections: int, duration: float) -> None:
    """``connections`` workers, each sending its next request when an answer arrives.
    (Times from ``perf_counter``: uvloop's clock has millisecond steps.)"""
    async with RawHttp("127.0.0.1", target.port, connections) as client:
        start = time.perf_counter()
        end = start + duration

        async def worker(k: int) -> None:
            i = k
            while time.perf_counter() < end:
                sent = time.perf_counter()
                status, _ = await client.send(target.requests[i % len(target.requests)])
                run.statuses[str(status)] += 1
                if status == 200:
                    run.ok += 1
                    run.latencies_ms.append((time.perf_counter() - sent) * 1000)
                i += connections

        await asyncio.gather(*(worker(k) for k in range(connections)))
        run.wall = time.perf_counter() - start


async def open_loop(run: Run, target: Target, connections: int, duration: float) -> None:
    """Request i due at start + i / rate whatever happened before; latency from the
    due time. At most ``connections`` on the wire; the rest wait, and that counts."""
    total = max(1, round(run.rate * duration))
    gate = asyncio.Semaphore(connections)
    loop = asyncio.get_running_loop()
    async with RawHttp("127.0.0.1", target.port, connections) as client:

        async def one(i: int, due: float) -> None:
            try:
                async with gate:
                    status, _ = await client.send(target.requests[i % len(target.requests)])
            except OSError as error:
                run.statuses[type(error).__name__] += 1
                return
            run.statuses[str(status)] += 1
            if status == 200:
                run.ok += 1
                run.latencies_ms.append((loop.time() - due) * 1000)

        schedule = await paced(run.rate, total, one, drain_timeout=max(5.0, duration))
        run.max_send_lag_ms = schedule.max_send_lag_ms
        run.statuses["unfinished"] += schedule.unfinished
        run.wall = schedule.wall


CACHE_METRIC = "eventshop_product_cache_requests"


async def measure(
    args: argparse.Namespace,
    shop: Target,
    constant: Target,
    conninfo: str,
    state_key: str,
    redis_pid: int | None,
) -> tuple[list[Run], list[dict[str, float]]]:
    client = redis.Redis.from_url(args.redis)
    deadline = time.monotonic() + 60
    while not client.exists(state_key):
        if time.monotonic() > deadline:
            raise RuntimeError("the cache follower never vouched for the cache")
        await asyncio.sleep(0.1)
    client.close()
    before = await cache_counts(shop.port, CACHE_METRIC)
    async with RawHttp("127.0.0.1", shop.port, 8) as http:
        for request in shop.requests * 2:
            status, _ = await http.send(request)
            if status != 200:
                raise RuntimeError(f"warm-up read answered {status}")
    warm = await cache_counts(shop.port, CACHE_METRIC)
    hits = warm["hit"] - before["hit"]
    log(f"warm-up: {hits} hits of {2 * len(shop.requests)} reads")
    if hits < len(shop.requests):
        raise RuntimeError(f"the cache is not warm after two passes: {warm - before}")

    runs: list[Run] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for i in range(args.runs):
            for kind in ("closed", "open"):
                for target in (shop, constant):
                    if args.quiet_wait > 0:
                        wait_for_quiet(args.quiet_wait)
                    run = Run(target.name, kind, rate=args.rate if kind == "open" else 0.0)
                    counts = await cache_counts(shop.port, CACHE_METRIC)
                    pids = process_tree(target.pid)  # with --workers, the workers too
                    meter = CpuMeter(None, database_backends(conn), redis_pid)
                    served = pids_cpu_seconds(pids)
                    started = time.perf_counter()
                    if kind == "closed":
                        await closed_loop(run, target, args.connections, args.duration)
                    else:
                        await open_loop(run, target, args.connections, args.duration)
                    cpu = meter.shares()
                    server = (pids_cpu_seconds(pids) - served) / (time.perf_counter() - started)
                    run.cpu = dataclasses.replace(
                        cpu, server=server, other=max(0.0, cpu.other - server)
                    )
                    run.cache = (await cache_counts(shop.port, CACHE_METRIC)) - counts
                    runs.append(run)
                    log(f"run {i + 1}/{args.runs}: {describe(run)}")
    costs = []
    for i in range(args.runs):
        if args.quiet_wait > 0:
            wait_for_quiet(args.quiet_wait)
        costs.append(await in_process_costs(args.settings, args.ids, args.calls))
        log(
            f"in-process {i + 1}/{args.runs}: product {costs[-1]['product']:.0f} µs, "
            f"constant {costs[-1]['constant']:.0f} µs of CPU per request"
        )
    return runs, costs


def describe(run: Run) -> str:
    errors = f" errors {dict(run.statuses)}" if run.errors else ""
    offered = f" @ {run.rate:g}/s offered" if run.kind == "open" else ""
    return (
        f"{run.endpoint} {run.kind} loop{offered}: {run.achieved:,.0f} req/s, p50 "
        f"{run.p(50):.1f} p95 {run.p(95):.1f} p99 {run.p(99):.1f} ms; CPU gen "
        f"{run.cpu.own:.2f}, server {run.cpu.server:.2f}, redis {run.cpu.extra:.2f}, "
        f"pg {run.cpu.postgres:.2f}, other {run.cpu.other:.2f}; cache {dict(run.cache)}"
        f"{errors}"
    )


# --- CPU per request in-process (no HTTP, no sockets but Redis's) ----------------------


async def _asgi_cpu(app: Any, paths: list[str], calls: int) -> float:
    """CPU microseconds per request of an ASGI app called directly, ``paths`` in turn."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    statuses: Counter[int] = Counter()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses[message["status"]] += 1

    def scope(path: str) -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"bench")],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
            "state": {},
        }

    for i in range(min(calls, 500)):  # warm-up
        await app(scope(paths[i % len(paths)]), receive, send)
    started = time.process_time()
    for i in range(calls):
        await app(scope(paths[i % len(paths)]), receive, send)
    cpu = time.process_time() - started
    if set(statuses) != {200}:
        raise RuntimeError(f"in-process calls answered {dict(statuses)}")
    return cpu / calls * 1e6


async def in_process_costs(settings: Settings, ids: list[UUID], calls: int) -> dict[str, float]:
    """The shop app (as ``shop run`` builds it, without projections) serving cache
    hits, and the constant app, called in this process: what each request costs in
    Python, without uvicorn and the HTTP sockets."""
    container = bootstrap(settings)
    app = create_app(container, run_projections=False)
    async with app.router.lifespan_context(app):
        cache = container.product_cache
        assert cache is not None
        product = await _asgi_cpu(app, [f"/products/{i}" for i in ids], calls)
        if cache.counts["hit"] < calls:
            raise RuntimeError(f"in-process reads were not cache hits: {dict(cache.counts)}")
        constant = await _asgi_cpu(constant_app, ["/constant"], calls)
    return {"product": product, "constant": constant}


# --- report ---------------------------------------------------------------------------------


def _table(runs: list[Run]) -> str:
    rows = []
    for r in runs:
        rows.append(
            [
                r.endpoint,
                fmt(r.achieved, 0),
                str(r.errors),
                fmt(r.p(50), 2),
                fmt(r.p(95), 2),
                fmt(r.p(99), 2),
                f"{r.max_send_lag_ms:.1f}" if r.kind == "open" else "-",
                f"{r.cpu.own:.2f}",
                f"{r.cpu.server:.2f}",
                f"{r.cpu.extra:.2f}",
                f"{r.cpu.postgres:.2f}",
                f"{r.cpu.other:.2f}",
                fmt(r.cpu.server * r.wall / r.ok * 1000, 3) if r.ok else "-",
                str(r.cache["hit"]) if r.endpoint != "constant" else "-",
                str(r.cache["miss"] + r.cache["error"] + r.cache["bypass"])
                if r.endpoint != "constant"
                else "-",
            ]
        )
    return Table(
        [
            "endpoint",
            "req/s",
            "errors",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max send lag ms",
            "CPU gen",
            "CPU server",
            "CPU redis",
            "CPU pg",
            "CPU other",
            "server ms/req",
            "cache hits",
            "not hits",
        ],
        rows,
    ).markdown()


def report(
    args: argparse.Namespace, machine: list[str], runs: list[Run], costs: list[dict[str, float]]
) -> str:
    out = ["# Product detail from the Redis cache vs a constant FastAPI endpoint", ""]
    out += machine
    out += [
        f"- {args.products} published products, all cached; anonymous `GET /products/{{id}}`, "
        "ids round-robin; the constant: a bare FastAPI app (`async def`, returns a dict) "
        "under the same uvicorn settings as `shop run` (uvloop, httptools); "
        f"uvicorn workers per server: {args.workers}",
        f"- {args.runs} runs x {args.duration:g} s per endpoint and loop kind, alternating "
        f"endpoints; {args.connections} keep-alive connections",
        "- load generator: this process, asyncio on uvloop, the raw HTTP/1.1 client of "
        "`bench/_rawhttp.py`; *closed loop* = each connection sends its next request "
        "when the answer arrives (saturation throughput; latencies hide queueing); "
        f"*open loop* = fixed arrival rate {args.rate:g}/s, latency from each request's "
        "due time (includes queueing: no coordinated omission)",
        "- CPU in cores (1.00 = one core all the time; the machine has "
        f"{os.cpu_count()}): gen = the load generator, server = the process under test, "
        "redis = redis-server, pg = the benchmark database's backends, other = the rest "
        "of the machine (other users' work too)",
        "",
    ]
    summary: list[str] = []
    for kind, title in (("closed", "Closed loop (saturation)"), ("open", "Open loop")):
        of_kind = [r for r in runs if r.kind == kind]
        if not of_kind:
            continue
        heading = f"## {title}" + (f" at {args.rate:g}/s offered" if kind == "open" else "")
        out += [heading, "", _table(of_kind), ""]
        product = [r for r in of_kind if r.endpoint != "constant"]
        constant = [r for r in of_kind if r.endpoint == "constant"]
        ratios = [p.achieved / c.achieved for p, c in zip(product, constant, strict=True)]
        rate = median(r.achieved for r in product)
        p95 = median(r.p(95) for r in product)
        summary.append(
            f"- {kind} loop, product detail: **{fmt(rate, 0)} req/s**, p50 "
            f"{fmt(median(r.p(50) for r in product), 2)}, **p95 {fmt(p95, 2)}**, p99 "
            f"{fmt(median(r.p(99) for r in product), 2)} ms; constant "
            f"{fmt(median(r.achieved for r in constant), 0)} req/s, p95 "
            f"{fmt(median(r.p(95) for r in constant), 2)} ms; ratio product/constant per run "
            f"{' / '.join(f'{x:.2f}' for x in ratios)} (median **{median(ratios):.2f}**); "
            f"generator CPU {median(r.cpu.own for r in product):.2f} cores"
        )
        if kind == "closed":
            summary.append(
                f"  - target >= {RATE_TARGET:,.0f} req/s: "
                f"{'met' if rate >= RATE_TARGET else 'MISSED'}"
            )
        else:
            achieved_all = all(r.achieved >= 0.95 * r.rate and not r.errors for r in product)
            summary.append(
                f"  - target p95 < {P95_TARGET_MS:g} ms at {args.rate:g}/s: "
                f"{'met' if p95 < P95_TARGET_MS and achieved_all else 'MISSED'}"
                + ("" if achieved_all else " (the offered rate was not achieved)")
            )
    product_us = median(c["product"] for c in costs)
    constant_us = median(c["constant"] for c in costs)
    rows = [
        [str(i + 1), fmt(c["product"]), fmt(c["constant"]), f"{c['product'] / c['constant']:.2f}"]
        for i, c in enumerate(costs)
    ]
    rows.append(
        [
            "**median**",
            f"**{fmt(product_us)}**",
            f"**{fmt(constant_us)}**",
            f"**{product_us / constant_us:.2f}**",
        ]
    )
    out += [
        "## CPU per request in-process (the ASGI apps called directly: no uvicorn, no HTTP)",
        "",
        Table(["run", "product detail (cache hit) µs", "constant µs", "ratio"], rows).markdown(),
        "",
    ]
    summary.append(
        f"- in-process CPU per request ({args.calls} calls per run): product detail "
        f"{fmt(product_us)} µs (one Redis MGET included), constant {fmt(constant_us)} µs"
    )
    out += ["## Summary (medians)", "", *summary]
    return "\n".join(out)


# --- main -----------------------------------------------------------------------------------


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _requests(port: int, paths: list[str]) -> list[bytes]:
    http = RawHttp("127.0.0.1", port, 1)
    return [http.encode("GET", path) for path in paths]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    machine = machine_lines(args.postgres)
    tmp = Path(tempfile.mkdtemp(prefix="bench-product-detail-"))
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
        ids = write_catalog(settings, args.products)
        log(f"{len(ids)} products written in {time.perf_counter() - started:.1f}s")
        # shop_server passes this process's environment on to `shop run`.
        os.environ["SHOP_REDIS_URL"] = args.redis
        os.environ["SHOP_PRODUCT_CACHE_PREFIX"] = prefix
        os.environ["SHOP_WORKERS"] = str(args.workers)
        with (
            shop_server(conninfo, tmp / "var", secret, tmp) as server,
            constant_server(tmp, args.workers) as (constant_base, constant_pid),
        ):
            shop_port = int(server.base.rsplit(":", 1)[1])
            constant_port = int(constant_base.rsplit(":", 1)[1])
            shop = Target(
                "GET /products/{id}",
                shop_port,
                server.pid,
                _requests(shop_port, [f"/products/{i}" for i in ids]),
            )
            constant = Target(
                "constant", constant_port, constant_pid, _requests(constant_port, ["/constant"])
            )
            args.settings, args.ids = settings, ids
            runs, costs = uvloop.run(
                measure(
                    args, shop, constant, conninfo, f"{prefix}product:state", redis_server_pid()
                )
            )
        print(report(args, machine, runs, costs))
    finally:
        forget_prefix(args.redis, prefix)
        discard_scratch(args.postgres, db_name, tmp, args.keep)


if __name__ == "__main__":
    main()
