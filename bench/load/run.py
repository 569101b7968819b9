"""Shoppers against one ``shop run`` (issue 18): an open model of sessions, each a
scripted journey with think times, from ``--processes`` generator processes.

    uv run python -m bench.load.run --users 300 --rate 30 --duration 60 --products 500

Prepares a fresh database (``shop seed catalog``: products, sellers, customers),
starts ``shop run`` with Redis (or uses ``--server`` with its ``--database`` and
``--secret``), waits for its read models, samples the catalog, then runs the mix
(``--mix FILE``, JSON, keys of ``bench.load.mix.Mix``) at ``--rate`` requests/s with
``--users`` concurrent sessions and ``--orders-per-minute``, for ``--warmup`` seconds
unmeasured and ``--duration`` measured. Writes report.md, figures.json,
latency.svg and throughput.svg into ``--out`` and the report to stdout.
``--fault KIND@AT[+DOWN]`` (repeatable) strikes a fault into the measured window
(``bench.load.faults``): the server's processes then run under a supervisor, with a
Redis server of the run's own, and the report has each fault's error rate and
recovery, and the audit of the orders (nothing lost, nothing doubled).
See bench/README.md ("Load model") for the mix's sources and how to read a run.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import secrets
import signal
import tempfile
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from bench._common import (
    DEFAULT_SERVER,
    CpuMeter,
    CpuShares,
    create_database,
    database_backends,
    discard_scratch,
    log,
    machine_lines,
    pids_cpu_seconds,
    wait_for_quiet,
)
from bench.catalog_scale import ensure_database
from bench.commands import Server, shop_server
from bench.load import faults as faults_
from bench.load import prepare
from bench.load.faults import Injector, Processes, RedisServer, parse_faults, supervised_shop
from bench.load.mix import Mix, plan
from bench.load.report import Figures, write
from bench.load.settle import audit, settle
from bench.load.shoppers import Catalog, WorkerPlan, WorkerResult, worker_main
from bench.load.stats import merge_all
from bench.sse_fanout import raise_nofile


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.load.run",
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--users", type=int, default=300, help="concurrent sessions (sets think time)")
    p.add_argument("--rate", type=float, default=30, help="requests/s, all kinds")
    p.add_argument("--duration", type=float, default=60, help="measured seconds")
    p.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="unmeasured seconds first (default: twice a session's mean length)",
    )
    p.add_argument(
        "--orders-per-minute",
        type=float,
        default=None,
        help="checkouts/min (default: the mix's conversion)",
    )
    p.add_argument("--processes", type=int, default=2, help="generator processes")
    p.add_argument("--mix", type=Path, default=None, help="JSON overriding the default mix")
    p.add_argument("--fixed-interval", action="store_true", help="sessions evenly, not Poisson")
    p.add_argument("--out", type=Path, default=Path("var/load"), help="results directory")
    p.add_argument("--products", type=int, default=20_000, help="products seeded")
    p.add_argument("--customers", type=int, default=None, help="seeded (default: 2x --users)")
    p.add_argument("--sample", type=int, default=5_000, help="products the shoppers know")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--postgres", default=DEFAULT_SERVER, help="maintenance conninfo")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    p.add_argument("--workers", type=int, default=1, help="`shop run --workers`")
    p.add_argument("--split", action="store_true", help="projections in their own process")
    p.add_argument(
        "--database",
        default=None,
        help="a database to keep and reuse (created if missing; seeding resumes) instead of "
        "a throwaway one; with --server, that server's database",
    )
    p.add_argument("--no-seed", action="store_true", help="with --database: already seeded")
    p.add_argument("--password", default=None, help="of the seeded accounts (with --no-seed)")
    p.add_argument("--server", default=None, help="a running server's URL (no seeding then)")
    p.add_argument("--secret", default=None, help="with --server: its SHOP_SECRET_KEY")
    p.add_argument("--lag-bound-ms", type=float, default=25, help="generator lag p99 bound")
    p.add_argument("--quiet-wait", type=float, default=5)
    p.add_argument("--keep", action="store_true", help="keep the database")
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND@AT[+DOWN]",
        help=f"a fault AT s into the measured window, down DOWN s (default "
        f"{faults_.DEFAULT_DOWN_S:g}); KIND: {', '.join(faults_.KINDS)}; repeatable, or "
        "comma-separated",
    )
    args = p.parse_args(argv)
    try:
        args.faults = parse_faults(args.fault, args.duration)
    except ValueError as error:
        p.error(str(error))
    kinds = {f.kind for f in args.faults}
    if args.faults and (args.server or args.workers > 1):
        p.error("--fault starts its own server: not with --server or --workers")
    if "kill-projections" in kinds and not args.split:
        p.error("kill-projections needs --split (the projections in a process of their own)")
    return args


# --- the generator processes -----------------------------------------------------------


def generate(
    args: argparse.Namespace,
    shares: list[WorkerPlan],
    warmup: float,
    server: Server | None,
    conninfo: str,
    injector: Injector | None = None,
) -> tuple[list[WorkerResult], float, float, CpuShares, float]:
    """Start the workers, wait until each is ready, give them one start time; the
    results, the measured window and the CPU over it. The injector's faults count
    from the window's start."""
    context = multiprocessing.get_context("spawn")
    pipes: list[Connection] = []
    procs = []
    for share in shares:
        mine, theirs = context.Pipe()
        proc = context.Process(target=worker_main, args=(share, theirs), daemon=True)
        proc.start()
        pipes.append(mine)
        procs.append(proc)
    try:
        for pipe in pipes:
            if pipe.recv() != "ready":
                raise RuntimeError("a generator process failed to start")
        if args.quiet_wait > 0:
            wait_for_quiet(args.quiet_wait)
        begin = time.monotonic() + 0.5
        start, end = begin + warmup, begin + warmup + args.duration
        for pipe in pipes:
            pipe.send((begin, end))
        if injector is not None:
            injector.start(start)
        pids = [p.pid for p in procs if p.pid is not None]
        time.sleep(max(0.0, start - time.monotonic()))
        with psycopg.connect(conninfo, autocommit=True) as conn:
            backends = database_backends(conn)
        meter = CpuMeter(
            server.pid if server else None, backends, server.projections_pid if server else None
        )
        gen_before = pids_cpu_seconds(pids)
        time.sleep(max(0.0, end - time.monotonic()))
        cpu = meter.shares()
        generator = (pids_cpu_seconds(pids) - gen_before) / args.duration + cpu.own
        cpu = CpuShares(
            cpu.own, cpu.server + cpu.extra, cpu.postgres, max(0.0, cpu.other - generator + cpu.own)
        )
        log("measured window over; waiting for the sessions in flight")
        results = [pipe.recv() for pipe in pipes]
        if injector is not None:
            injector.join()
        return results, start, end, cpu, generator
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()


def worker_plans(
    args: argparse.Namespace,
    mix: Mix,
    sessions_per_s: float,
    base: str,
    catalog: Catalog,
    tokens: list[str],
    accounts: list[str],
    password: str,
) -> list[WorkerPlan]:
    address = urlsplit(base)
    n = args.processes
    return [
        WorkerPlan(
            index=i,
            host=address.hostname or "127.0.0.1",
            port=address.port or 80,
            mix=mix,
            sessions_per_s=sessions_per_s / n,
            poisson=not args.fixed_interval,
            seed=args.seed * 1000 + i,
            catalog=catalog,
            tokens=tokens[i::n],
            accounts=accounts[i::n],
            password=password,
            background=i == 0,
            stride=n,
        )
        for i in range(n)
    ]


# --- the run -------------------------------------------------------------------------------


Target = tuple[str, str, str, str, Server | None, Processes | None]


@contextlib.contextmanager
def target(args: argparse.Namespace, tmp: Path) -> Iterator[Target]:
    """The server to load: (base URL, conninfo, secret, password, the server process
    when started here, the processes the faults act on). A fresh database is seeded
    and dropped at the end."""
    if args.server:
        if not (args.database and args.secret and args.password):
            raise SystemExit("--server needs --database, --secret and --password")
        yield args.server, args.database, args.secret, args.password, None, None
        return
    secret = secrets.token_urlsafe(36)
    password = args.password or "Load-" + secrets.token_urlsafe(16)
    if args.database:  # kept: seeded once (resumable), reused by later runs
        name, conninfo = urlsplit(args.database).path.lstrip("/"), args.database
        ensure_database(args.database)
    else:
        name, conninfo = create_database(args.postgres, "bench_load")
    log(f"database {name}, data dir {tmp}")
    try:
        customers = args.customers or 2 * args.users
        if not args.no_seed:
            prepare.seed_catalog(conninfo, args.products, customers, args.seed, password)
        if args.faults:
            yield from _supervised(args, conninfo, secret, password, tmp)
            return
        os.environ["SHOP_REDIS_URL"] = args.redis  # shop_server passes the environment on
        os.environ["SHOP_PRODUCT_CACHE_PREFIX"] = cache_prefix(conninfo)
        os.environ["SHOP_ACCESS_TOKEN_MINUTES"] = "60"
        with shop_server(
            conninfo,
            tmp / "var",
            secret,
            tmp,
            split=args.split,
            workers=args.workers,
            redis_url=args.redis,
            ready_timeout=3600,  # a fresh million-product catalog's first catch-up
        ) as server:
            yield server.base, conninfo, secret, password, server, None
    finally:
        discard_scratch(args.postgres, name, tmp, args.keep or bool(args.database))


def _supervised(
    args: argparse.Namespace, conninfo: str, secret: str, password: str, tmp: Path
) -> Iterator[Target]:
    """The server under a supervisor, with a Redis of its own: a fault run restarts
    Redis, which must not be the machine's shared one."""
    redis = RedisServer(tmp / "redis")
    redis.start()
    log(f"redis-server of the run's own at {redis.url}")
    os.environ["SHOP_REDIS_URL"] = redis.url
    os.environ["SHOP_PRODUCT_CACHE_PREFIX"] = cache_prefix(conninfo)
    os.environ["SHOP_ACCESS_TOKEN_MINUTES"] = "60"
    try:
        with supervised_shop(conninfo, tmp / "var", secret, tmp, split=args.split, redis=redis) as (
            server,
            processes,
        ):
            yield server.base, conninfo, secret, password, server, processes
    finally:
        redis.stop()


def cache_prefix(conninfo: str) -> str:
    """The Redis keys of one database's shop: the seeded ids are the same in every
    database seeded alike, so two (on two servers, say) must not share carts."""
    params = conninfo_to_dict(conninfo)
    return f"{params.get('host')}:{params.get('port', 5432)}/{params.get('dbname')}:"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    raise_nofile()
    machine = machine_lines(args.postgres)
    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
    chosen = plan(
        Mix.load(args.mix),
        rate=args.rate,
        users=args.users,
        orders_per_minute=args.orders_per_minute,
    )
    length = (chosen.mix.expected_steps() - 1) * chosen.mix.think_s
    # Little's law holds once the longest sessions started before the window: twice
    # the mean length (a smoke run at the mean reached 90% of the planned rate).
    warmup = args.warmup if args.warmup is not None else 2 * length
    log(
        f"plan: {chosen.sessions_per_s:.2f} sessions/s, sessions ~{length:.0f} s; "
        + "; ".join(chosen.notes)
    )
    with target(args, tmp) as (base, conninfo, secret, password, server, processes):
        shop = prepare.ready_shop(args, base, conninfo, secret, tmp)
        settings, catalog = shop.settings, shop.catalog
        shares = worker_plans(
            args, chosen.mix, chosen.sessions_per_s, base, catalog, shop.tokens, shop.accounts,
            password,
        )  # fmt: skip
        log(
            f"{args.processes} generator processes; warm-up {warmup:.0f} s, "
            f"then {args.duration:g} s measured"
        )
        injector = Injector(args.faults, processes) if processes is not None else None
        results, start, end, cpu, generator = generate(
            args, shares, warmup, server, conninfo, injector
        )
        settled = settle(conninfo)
        audited = audit(conninfo, settings, [o for r in results for o in r.accepted])
    counters = {
        "sessions": sum(r.sessions for r in results),
        "peak concurrent sessions (sum of the processes' peaks)": sum(
            r.peak_sessions for r in results
        ),
        "streams opened": sum(r.streams_opened for r in results),
        "streams lost": sum(r.streams_lost for r in results),
        "streams notified": sum(r.notified for r in results),
        "reconnects (server closed an idle connection)": sum(r.reconnects for r in results),
        "checkouts": sum(r.checkouts for r in results),
        "checkout retries with the same key": sum(r.checkout_retries for r in results),
        "checkouts never answered 202": sum(r.checkouts_abandoned for r in results),
    }
    by_kind = merge_all([r.samples for r in results])
    figures = Figures(
        machine=machine,
        plan=chosen,
        duration=args.duration,
        by_kind=by_kind,
        start=start,
        end=end,
        cpu=cpu,
        generator_cores=generator,
        lag_ms=[lag for r in results for lag in r.lag_ms],
        session_late_ms=[late for r in results for late in r.session_late_ms],
        lag_bound_ms=args.lag_bound_ms,
        counters=counters,
        notes=[
            f"{len(catalog.products):,} products sampled of {args.products:,} seeded; "
            f"warm-up {warmup:.0f} s"
        ],
        faults=[faults_.figures(s, by_kind, end) for s in (injector.struck if injector else [])],
        audit=audited.as_dict(),
    )
    if args.faults:
        figures.notes.append(
            "faults: " + ", ".join(map(str, args.faults)) + "; Redis of the run's own; the "
            "CPU shares count the server's first processes only (a restarted one is not followed)"
        )
    figures.notes.append(
        f"orders in the event store: {settled.placed:,} placed, {settled.confirmed:,} "
        f"confirmed, {settled.rejected:,} rejected, **{settled.undecided:,} undecided** "
        f"after the wait; the orders view had the ordering log's head "
        f"{settled.orders_view_s:.2f} s after the sessions ended"
    )
    examples = {k: v for r in results for k, v in r.examples.items()}
    figures.notes += [f"first `{k}` answer: `{v[:200]}`" for k, v in sorted(examples.items())]
    print(write(figures, args.out))
    log(f"written to {args.out}")


if __name__ == "__main__":
    main()
