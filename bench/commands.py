"""Command throughput through HTTP, open-loop, against the raw ``eventsourcing``
Application in the same run.

What it does, in order (see bench/README.md):

1. Raw baseline, in a database of its own: ``UsersApplication.save`` of a new User
   with a verification token (2 events per save) from a few threads; and, as a
   second reference, the library's own cost of the PATCH command (get from the
   cache + update_profile + save, 1 event).
2. A fresh database; N verified users written in-process (the events registration
   and verification write, with one precomputed argon2 hash); ``shop run`` started
   as a subprocess; every user logged in over HTTP for an access token.
3. Open-loop load (asyncio; a minimal keep-alive HTTP/1.1 client by default, or
   httpx.AsyncClient with ``--client httpx``): request i is due at
   ``start + i / rate`` and its latency counts from that moment, so a slow server
   cannot slow the sender down and hide its queueing (no coordinated omission).
   ``PATCH /users/me`` over a ladder of rates (the highest with p95 < 50 ms, no
   errors and >= 95% of the rate achieved is "sustainable"), then ``--runs`` runs
   at ``--rate``.
4. ``POST /auth/register`` and ``POST /auth/login`` at ``--auth-rate``.

``--workers N`` runs ``shop run --workers N`` (N HTTP processes, the projections in
the parent; rate limits through Redis, ``--redis``). ``--split`` serves HTTP from
``shop run`` with SHOP_PROJECTIONS=false and runs ``shop projections run`` beside it.

Run: ``uv run python -m bench.commands [--rate 400 --duration 10 --runs 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import psycopg

from bench._common import (
    DEFAULT_SERVER,
    CpuMeter,
    CpuShares,
    Table,
    count_rows,
    create_database,
    database_backends,
    discard_scratch,
    drop_database,
    fmt,
    log,
    machine_lines,
    median,
    paced,
    percentile,
    wait_for_quiet,
)
from bench._rawhttp import HttpxClient, RawHttp
from commands.users.accounts import UsersApplication
from commands.users.passwords import PasswordHasher
from domain.users import EmailIndex, User
from infra.entrypoints.status import log_head
from infra.postgres.server import eventsourcing_env
from infra.settings import Settings
from infra.wiring.process import bootstrap
from projections.positions import tracked_position

REPO = Path(__file__).resolve().parent.parent
FOLLOWERS = ("user_profiles", "admin_users", "user_access", "notifier")
P95_TARGET_MS = 50.0
RATIO_TARGET = 0.5
EVENTS_TABLE = "users_events"
DRAIN_FACTOR = 1.0


# --- arguments ------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.commands",
        description="Open-loop HTTP command throughput vs the raw eventsourcing Application.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--postgres", default=DEFAULT_SERVER, help="maintenance conninfo")
    p.add_argument("--users", type=int, default=200, help="users sharing the PATCH load")
    p.add_argument("--rate", type=float, default=400, help="PATCH /users/me rate (req/s)")
    p.add_argument("--duration", type=float, default=10, help="seconds per PATCH run")
    p.add_argument("--runs", type=int, default=3, help="PATCH runs at --rate")
    p.add_argument(
        "--ladder",
        default="50,75,100,125,150,200,300,400",
        help="rates to climb (comma-separated; empty: skip); stops at the first failing rate",
    )
    p.add_argument("--ladder-duration", type=float, default=5, help="seconds per ladder step")
    p.add_argument("--auth-rate", type=float, default=30, help="register and login rate (req/s)")
    p.add_argument("--auth-duration", type=float, default=5, help="seconds per auth run")
    p.add_argument("--auth-runs", type=int, default=2, help="runs of register, then of login")
    p.add_argument("--raw-threads", type=int, default=4, help="threads of the raw baseline")
    p.add_argument("--raw-seconds", type=float, default=2, help="seconds per raw baseline run")
    p.add_argument("--raw-runs", type=int, default=3, help="raw baseline runs")
    p.add_argument(
        "--connections", type=int, default=32, help="keep-alive connections: requests on the wire"
    )
    p.add_argument(
        "--client",
        choices=["raw", "httpx"],
        default="raw",
        help="load client: a minimal asyncio HTTP/1.1 client, or httpx.AsyncClient "
        "(costs several times more CPU per request, taken from the server's 2 cores)",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=5,
        help="before each measured run, wait up to this long for others' CPU use to drop",
    )
    p.add_argument(
        "--split",
        action="store_true",
        help="`shop run` with SHOP_PROJECTIONS=false serves HTTP, and `shop projections "
        "run` runs the projections in a second process, instead of `shop run` doing both",
    )
    p.add_argument(
        "--workers", type=int, default=1, help="HTTP worker processes (`shop run --workers`)"
    )
    p.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/0",
        help="SHOP_REDIS_URL when --workers > 1 (their shared rate limits)",
    )
    p.add_argument("--keep", action="store_true", help="keep the databases and server log")
    return p.parse_args(argv)


# --- results ---------------------------------------------------------------------


@dataclass
class LoadRun:
    """One open-loop run."""

    label: str
    rate: float
    duration: float
    sent: int = 0
    ok: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    wall: float = 0.0
    events: int = 0
    cpu: CpuShares = field(default_factory=lambda: CpuShares(0, 0, 0, 0))
    max_send_lag_ms: float = 0.0
    lag_at_end: int = 0
    catch_up_s: float = 0.0

    @property
    def errors(self) -> int:
        return self.sent - self.ok

    @property
    def achieved(self) -> float:
        return self.ok / self.wall if self.wall else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall if self.wall else 0.0

    def sustainable(self) -> bool:
        return self.errors == 0 and self.p(95) < P95_TARGET_MS and self.achieved >= 0.95 * self.rate


@dataclass
class RawRun:
    label: str
    threads: int
    seconds: float
    saves: int
    events: int
    cpu: CpuShares

    @property
    def saves_per_s(self) -> float:
        return self.saves / self.seconds

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


# --- raw baseline ------------------------------------------------------------------


def _threads_for(
    seconds: float, threads: int, work: Callable[[int, int], int]
) -> tuple[int, float]:
    """Run ``work(thread, n)`` in a loop on ``threads`` threads for ``seconds``;
    returns the number of calls and the measured wall time."""
    stop = threading.Event()
    counts = [0] * threads

    def loop(k: int) -> None:
        n = 0
        while not stop.is_set():
            work(k, n)
            n += 1
        counts[k] = n

    workers = [threading.Thread(target=loop, args=(k,)) for k in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    return sum(counts), time.perf_counter() - start


def raw_baseline(args: argparse.Namespace, settings: Settings, password_hash: str) -> list[RawRun]:
    """The eventsourcing Application on its own, in a database of its own."""
    name, conninfo = create_database(args.postgres, "bench_raw")
    log(f"raw baseline in database {name}")
    app = UsersApplication(env=eventsourcing_env(conninfo, settings))
    runs: list[RawRun] = []
    try:
        expires = datetime.now(UTC) + timedelta(days=1)
        tag = uuid4().hex[:6]

        def register(k: int, n: int) -> int:
            user = User(
                id=uuid4(),
                email=f"raw-{tag}-{k}-{n}@example.com",
                password_hash=password_hash,
                name="Raw Bench",
            )
            user.request_email_verification(uuid4(), expires)
            app.save(user)
            return 2

        ids: list[UUID] = []
        for n in range(args.users):  # users for the update_profile reference
            user = User(
                id=uuid4(),
                email=f"rawp-{tag}-{n}@example.com",
                password_hash=password_hash,
                name="R",
            )
            ids.append(user.id)
            app.save(user)

        def update_profile(k: int, n: int) -> int:
            # Each thread its own users: no conflicts, as in the HTTP run (round-robin).
            user_id = ids[(n * args.raw_threads + k) % len(ids)]
            user: User = app.repository.get(user_id)
            user.update_profile({"name": f"Raw {k} {n}"})
            app.save(user)
            return 1

        _threads_for(0.5, args.raw_threads, register)  # warm-up: pool, prepared statements
        for label, work, events_per_call in (
            ("save(User: Registered + TokenIssued)", register, 2),
            ("get + update_profile + save (1 event)", update_profile, 1),
        ):
            for i in range(args.raw_runs):
                if args.quiet_wait > 0:
                    wait_for_quiet(args.quiet_wait)
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    meter = CpuMeter(None, database_backends(conn))
                calls, wall = _threads_for(args.raw_seconds, args.raw_threads, work)
                run = RawRun(
                    label, args.raw_threads, wall, calls, calls * events_per_call, meter.shares()
                )
                runs.append(run)
                log(f"  raw {label} run {i + 1}: {run.saves_per_s:,.0f} saves/s")
    finally:
        app.close()
        if not args.keep:
            drop_database(args.postgres, name)
    return runs


# --- preparing users -----------------------------------------------------------------


@dataclass(frozen=True)
class BenchUser:
    id: UUID
    email: str


def prepare_users(settings: Settings, count: int, password_hash: str) -> list[BenchUser]:
    """Verified users, written in bulk: the events ``register`` and ``verify_email``
    write (Registered, TokenIssued, EmailVerified, and the EmailIndex claim), with one
    precomputed hash instead of one argon2 run per user."""
    container = bootstrap(settings)
    try:
        container.migrate()
        now = datetime.now(UTC)
        tag = uuid4().hex[:6]
        users: list[BenchUser] = []
        batch: list[Any] = []
        for n in range(count):
            email = f"bench-{tag}-{n}@example.com"
            user = User(id=uuid4(), email=email, password_hash=password_hash, name=f"Bench {n}")
            token_id = uuid4()
            user.request_email_verification(token_id, now + timedelta(days=1))
            user.verify_email(token_id, now)
            batch += [user, EmailIndex(email=email, user_id=user.id)]
            users.append(BenchUser(user.id, email))
            if len(batch) >= 100:
                container.users_app.save(*batch)
                batch = []
        if batch:
            container.users_app.save(*batch)
    finally:
        container.close()
    return users


# --- the server ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Server:
    base: str
    pid: int
    """The process serving HTTP (the parent of its workers)."""
    projections_pid: int | None = None
    """--split: the process running the projections."""
    background_pid: int | None = None
    """--split --background-process: the process running the background part."""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # uvicorn and `shop projections run`: graceful
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until(
    proc: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    log_path: Path,
    what: str,
    timeout: float = 60.0,
) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}):\n{log_path.read_text()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} is not ready:\n{log_path.read_text()}")
        time.sleep(0.2)


def _answers(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url, timeout=1).status_code == 200
    return False


def server_env(
    conninfo: str,
    data_dir: Path,
    secret: str,
    base: str,
    *,
    workers: int = 1,
    redis_url: str | None = None,
) -> dict[str, str]:
    """The environment ``shop run`` and ``shop projections run`` get here (login
    limits out of the way: the benchmarks log in more than a person would)."""
    env = {
        **os.environ,
        "SHOP_DATABASE_URL": conninfo,
        "SHOP_DATA_DIR": str(data_dir),
        "SHOP_SECRET_KEY": secret,
        "SHOP_PUBLIC_URL": base,
        "SHOP_LOGIN_ATTEMPTS_PER_ACCOUNT": "1000000000",
        "SHOP_LOGIN_ATTEMPTS_PER_ADDRESS": "1000000000",
        "SHOP_WORKERS": str(workers),
    }
    if workers > 1 and redis_url:
        env["SHOP_REDIS_URL"] = redis_url
    return env


@contextlib.contextmanager
def shop_server(
    conninfo: str,
    data_dir: Path,
    secret: str,
    logs: Path,
    *,
    split: bool = False,
    background_process: bool = False,
    workers: int = 1,
    redis_url: str | None = None,
    ready_timeout: float = 60.0,
) -> Iterator[Server]:
    """``shop run`` as a subprocess (or, with ``split``, an API-only process and a
    projections process; with ``background_process`` too, the projections' background
    part in a third); stops them at the end. ``ready_timeout``: how long its first
    answer may take (a server answers once its views have caught up with the logs,
    minutes on a freshly seeded large catalog)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = server_env(conninfo, data_dir, secret, base, workers=workers, redis_url=redis_url)
    with contextlib.ExitStack() as stack:
        projections: subprocess.Popen[bytes] | None = None
        background: subprocess.Popen[bytes] | None = None
        if split:
            parts = ["foreground", "background"] if background_process else ["all"]
            started = [_projections_process(stack, env, logs, part) for part in parts]
            projections = started[0]
            background = started[1] if background_process else None
            env["SHOP_PROJECTIONS"] = "false"
        shop = Path(sys.executable).parent / "shop"
        command = [str(shop), "run", "--host", "127.0.0.1", "--port", str(port)]
        server_log = logs / "server.log"
        out = stack.enter_context(server_log.open("wb"))
        proc = subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        stack.callback(_stop, proc)  # stopped first: callbacks run last-in, first-out
        _wait_until(
            proc, lambda: _answers(f"{base}/health"), server_log, "the server", ready_timeout
        )
        what = "shop run (SHOP_PROJECTIONS=false)" if split else "shop run"
        what += f" --workers {workers}" if workers > 1 else ""
        log(f"{what} (pid {proc.pid}) answers at {base}")
        yield Server(
            base,
            proc.pid,
            projections.pid if projections else None,
            background.pid if background else None,
        )


def _projections_process(
    stack: contextlib.ExitStack, env: dict[str, str], logs: Path, part: str
) -> subprocess.Popen[bytes]:
    """``shop projections run --part <part>``, once it says it is running."""
    proj_log = logs / f"projections-{part}.log"
    out = stack.enter_context(proj_log.open("wb"))
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "shop"), "projections", "run", "--part", part],
        env=env,
        cwd=REPO,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    stack.callback(_stop, process)
    _wait_until(
        process,
        lambda: "projections running" in proj_log.read_text(),
        proj_log,
        f"the projections process ({part})",
    )
    return process


# --- projections -------------------------------------------------------------------------


def projection_lag(conn: psycopg.Connection[Any]) -> int:
    """The largest distance (in ids) of any follower from the head of the users log."""
    head = log_head(conn, "users")
    return max(head - tracked_position(conn, name, "users") for name in FOLLOWERS)


def wait_for_projections(conn: psycopg.Connection[Any], timeout: float = 120) -> float:
    start = time.monotonic()
    while projection_lag(conn) > 0:
        if time.monotonic() - start > timeout:
            raise RuntimeError("projections did not catch up")
        time.sleep(0.05)
    return time.monotonic() - start


# --- open-loop load --------------------------------------------------------------------------


Send = Callable[[int], Awaitable[int]]


async def open_loop(
    run: LoadRun,
    send: Send,
    *,
    server: Server,
    conn: psycopg.Connection[Any],
    concurrency: int,
    quiet_wait: float = 0.0,
) -> LoadRun:
    """Send ``run.rate * run.duration`` requests, request i due at start + i / rate,
    whatever happened to the earlier ones; latency from the due time. At most
    ``concurrency`` requests are on the wire (like wrk2's connections): the others
    wait, in order, on the client side, and that wait counts in their latency."""
    if quiet_wait > 0:
        wait_for_quiet(quiet_wait)
    loop = asyncio.get_running_loop()
    total = max(1, round(run.rate * run.duration))
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int, due: float) -> None:
        try:
            async with gate:
                status = await send(i)
            key = str(status)
        except Exception as error:  # noqa: BLE001 - counted as an error of this run
            status, key = 0, type(error).__name__
        run.statuses[key] += 1
        if 200 <= status < 300:
            run.ok += 1
            run.latencies_ms.append((loop.time() - due) * 1000)

    events0 = count_rows_conn(conn)
    meter = CpuMeter(server.pid, database_backends(conn), server.projections_pid)
    # An overloaded server: stop waiting after a while, the rest count as errors.
    schedule = await paced(
        run.rate, total, one, drain_timeout=max(5.0, DRAIN_FACTOR * run.duration)
    )
    run.max_send_lag_ms = schedule.max_send_lag_ms
    run.statuses["unfinished"] += schedule.unfinished
    run.wall = schedule.wall
    run.cpu = meter.shares()
    run.sent = total
    run.events = count_rows_conn(conn) - events0
    run.lag_at_end = projection_lag(conn)
    run.catch_up_s = wait_for_projections(conn)
    return run


def count_rows_conn(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(f"SELECT count(*) FROM {EVENTS_TABLE}").fetchone()
    return int(row[0]) if row else 0


def describe(run: LoadRun) -> str:
    errors = "" if not run.errors else f" errors {dict(run.statuses)}"
    return (
        f"{run.label} @ {run.rate:g}/s: {run.achieved:,.0f}/s ok, p50 {run.p(50):.1f} "
        f"p95 {run.p(95):.1f} p99 {run.p(99):.1f} ms; CPU (cores): generator "
        f"{run.cpu.own:.2f}, server {run.cpu.server:.2f}"
        + (f", projections process {run.cpu.extra:.2f}" if run.cpu.extra else "")
        + f", postgres {run.cpu.postgres:.2f}, other {run.cpu.other:.2f}; sends at most "
        f"{run.max_send_lag_ms:.1f} ms late{errors}"
    )


@dataclass
class HttpResults:
    logins: int = 0
    login_setup_s: float = 0.0
    ladder: list[LoadRun] = field(default_factory=list)
    main: list[LoadRun] = field(default_factory=list)
    register: list[LoadRun] = field(default_factory=list)
    login: list[LoadRun] = field(default_factory=list)
    reconnects: int = 0


Client = RawHttp | HttpxClient


async def http_phase(
    args: argparse.Namespace,
    server: Server,
    conninfo: str,
    users: list[BenchUser],
    password: str,
) -> HttpResults:
    results = HttpResults()
    conn = psycopg.connect(conninfo, autocommit=True)
    # Setup logins with httpx (closed loop, a few at a time: argon2 costs ~19 ms each).
    started = time.perf_counter()
    base = server.base
    async with httpx.AsyncClient(base_url=base, timeout=60.0) as setup:
        gate = asyncio.Semaphore(4)

        async def login(user: BenchUser) -> str:
            async with gate:
                r = await setup.post(
                    "/auth/login", json={"email": user.email, "password": password}
                )
            r.raise_for_status()
            return str(r.json()["access_token"])

        tokens = list(await asyncio.gather(*(login(u) for u in users)))
    results.logins = len(tokens)
    results.login_setup_s = time.perf_counter() - started
    log(f"{len(tokens)} users logged in over HTTP in {results.login_setup_s:.1f}s")
    headers = [{"Authorization": f"Bearer {t}"} for t in tokens]
    serial = iter(range(10**12))
    port = int(base.rsplit(":", 1)[1])
    client: Client = (
        RawHttp("127.0.0.1", port, args.connections)
        if args.client == "raw"
        else HttpxClient(base, args.connections)
    )

    async def run_load(label: str, rate: float, duration: float, send: Send) -> LoadRun:
        return await open_loop(
            LoadRun(label, rate, duration),
            send,
            server=server,
            conn=conn,
            concurrency=args.connections,
            quiet_wait=args.quiet_wait,
        )

    async with client:

        async def patch(i: int) -> int:
            status, _ = await client.request(
                "PATCH", "/users/me", {"name": f"Bench {next(serial)}"}, headers[i % len(headers)]
            )
            return status

        # Warm-up (discarded): connections, prepared statements, caches.
        await open_loop(
            LoadRun("warm-up", 50, 3),
            patch,
            server=server,
            conn=conn,
            concurrency=args.connections,
        )

        for rate in [float(r) for r in args.ladder.split(",") if r.strip()]:
            run = await run_load("PATCH /users/me", rate, args.ladder_duration, patch)
            results.ladder.append(run)
            log(f"ladder: {describe(run)}")
            if not run.sustainable():
                break

        for i in range(args.runs):
            run = await run_load("PATCH /users/me", args.rate, args.duration, patch)
            results.main.append(run)
            log(f"run {i + 1}/{args.runs}: {describe(run)}")

        tag = uuid4().hex[:6]
        reg_password = "Bench-" + secrets.token_urlsafe(16)

        async def register(i: int) -> int:
            body = {
                "email": f"reg-{tag}-{next(serial)}@example.com",
                "password": reg_password,
                "name": "Reg Bench",
            }
            status, _ = await client.request("POST", "/auth/register", body)
            return status

        async def login_one(i: int) -> int:
            body = {"email": users[i % len(users)].email, "password": password}
            status, _ = await client.request("POST", "/auth/login", body)
            return status

        for label, send, into in (
            ("POST /auth/register", register, results.register),
            ("POST /auth/login", login_one, results.login),
        ):
            for i in range(args.auth_runs):
                run = await run_load(label, args.auth_rate, args.auth_duration, send)
                into.append(run)
                log(f"{label} run {i + 1}/{args.auth_runs}: {describe(run)}")
        results.reconnects = client.reconnects
    conn.close()
    return results


# --- report -----------------------------------------------------------------------------------


def _ours(run: LoadRun) -> float:
    """Cores used by everything this benchmark runs: generator, server, projections
    process, Postgres backends."""
    return run.cpu.own + run.cpu.server + run.cpu.extra + run.cpu.postgres


def _per_request_ms(run: LoadRun, cores: float) -> float:
    return cores * run.wall / run.ok * 1000 if run.ok else float("nan")


# header, value of a run, format (bold in the median row when the flag is set)
Column = tuple[str, Callable[[LoadRun], float], Callable[[float], str], bool]
_COLUMNS: list[Column] = [
    ("target/s", lambda r: r.rate, lambda v: fmt(v, 0), False),
    ("achieved/s", lambda r: r.achieved, lambda v: fmt(v, 0), True),
    ("errors", lambda r: r.errors, lambda v: fmt(v, 0), False),
    ("p50 ms", lambda r: r.p(50), fmt, True),
    ("p95 ms", lambda r: r.p(95), fmt, True),
    ("p99 ms", lambda r: r.p(99), fmt, True),
    ("max ms", lambda r: max(r.latencies_ms, default=float("nan")), fmt, False),
    ("events/s", lambda r: r.events_per_s, lambda v: fmt(v, 0), False),
    ("CPU gen", lambda r: r.cpu.own, lambda v: f"{v:.2f}", False),
    ("CPU server", lambda r: r.cpu.server, lambda v: f"{v:.2f}", False),
    ("CPU pg", lambda r: r.cpu.postgres, lambda v: f"{v:.2f}", False),
    ("CPU other", lambda r: r.cpu.other, lambda v: f"{v:.2f}", False),
    ("CPU proj proc", lambda r: r.cpu.extra, lambda v: f"{v:.2f}", False),
    ("server ms/req", lambda r: _per_request_ms(r, r.cpu.server), lambda v: fmt(v, 2), False),
    ("pg ms/req", lambda r: _per_request_ms(r, r.cpu.postgres), lambda v: fmt(v, 2), False),
    ("all ms/req", lambda r: _per_request_ms(r, _ours(r)), lambda v: fmt(v, 2), False),
    ("lag at end", lambda r: r.lag_at_end, lambda v: fmt(v, 0), False),
]


def columns(split: bool) -> list[Column]:
    return [c for c in _COLUMNS if split or c[0] != "CPU proj proc"]


def load_headers(split: bool) -> list[str]:
    return ["run", *(c[0] for c in columns(split))]


def load_row(name: str, run: LoadRun, split: bool) -> list[str]:
    return [name, *(show(value(run)) for _, value, show, _ in columns(split))]


def median_row(runs: list[LoadRun], split: bool) -> list[str]:
    cells = ["**median**"]
    for _, value, show, bold in columns(split):
        text = show(median(value(r) for r in runs))
        cells.append(f"**{text}**" if bold else text)
    return cells


def load_table(runs: list[LoadRun], split: bool) -> str:
    rows = [load_row(str(i + 1), r, split) for i, r in enumerate(runs)]
    if len(runs) > 1:
        rows.append(median_row(runs, split))
    return Table(load_headers(split), rows).markdown()


def report(
    args: argparse.Namespace, machine: list[str], raw: list[RawRun], http: HttpResults
) -> str:
    out = ["# Command throughput (open-loop HTTP) vs the raw eventsourcing Application", ""]
    out += machine
    if args.split:
        out.append(
            "- **--split**: HTTP served by `shop run` with SHOP_PROJECTIONS=false, "
            "projections in a second process (`shop projections run`); 'CPU proj proc' "
            "is that process"
        )
    if args.workers > 1:
        out.append(
            f"- `shop run --workers {args.workers}`: HTTP from {args.workers} worker "
            "processes, rate limits in Redis; 'CPU server' counts the parent (which "
            "runs the projections, unless --split) and its workers"
        )
    out += [
        f"- {args.users} users; PATCH runs {args.duration:g} s x {args.runs}; ladder steps "
        f"{args.ladder_duration:g} s; auth runs {args.auth_duration:g} s x {args.auth_runs}; "
        f"raw {args.raw_threads} threads x {args.raw_seconds:g} s x {args.raw_runs}",
        f"- open-loop ({args.client} client, {args.connections} keep-alive connections): "
        "fixed arrival rate, latency from each request's due time (a request waiting for "
        "a free connection is late, and that counts); a run gives up waiting "
        f"{DRAIN_FACTOR:g}x its duration after the last send (the rest are errors)",
        "- CPU in cores (1.00 = one core busy all the time; the machine has "
        f"{os.cpu_count()}): gen = this load generator (time.process_time), server = the "
        "`shop run` process with its workers, pg = the Postgres backends of the benchmark "
        "database, "
        "other = everything else busy on the machine (other users' work, Postgres "
        "background processes); from /proc",
        "",
        "## Raw eventsourcing Application (no HTTP, no projections running)",
        "",
    ]
    labels = list(dict.fromkeys(r.label for r in raw))
    rows = []
    for label in labels:
        runs = [r for r in raw if r.label == label]
        rows.append(
            [
                label,
                str(runs[0].threads),
                " / ".join(fmt(r.saves_per_s, 0) for r in runs),
                f"**{fmt(median(r.saves_per_s for r in runs), 0)}**",
                fmt(median(r.events_per_s for r in runs), 0),
                f"{median(r.cpu.own for r in runs):.2f}",
                f"{median(r.cpu.postgres for r in runs):.2f}",
                f"{median(r.cpu.other for r in runs):.2f}",
                fmt(median(r.cpu.own * r.seconds / r.saves * 1000 for r in runs), 2),
                fmt(median(r.cpu.postgres * r.seconds / r.saves * 1000 for r in runs), 2),
            ]
        )
    out.append(
        Table(
            [
                "operation",
                "threads",
                "saves/s per run",
                "median saves/s",
                "events/s",
                "CPU client",
                "CPU pg",
                "CPU other",
                "client ms/save",
                "pg ms/save",
            ],
            rows,
        ).markdown()
    )
    raw_saves = (
        median(r.saves_per_s for r in raw if r.label == labels[0]) if labels else float("nan")
    )
    raw_cmd = (
        median(r.saves_per_s for r in raw if r.label == labels[-1]) if labels else float("nan")
    )

    out += [
        "",
        f"## PATCH /users/me at {args.rate:g}/s (1 event per command)",
        "",
        load_table(http.main, args.split),
    ]
    if http.ladder:
        out += [
            "",
            "## Rate ladder (PATCH /users/me, one run per rate; stops at the first failure)",
            "",
        ]
        out.append(
            Table(
                [*load_headers(args.split), "sustainable"],
                [
                    [
                        *load_row(f"{r.rate:g}/s", r, args.split),
                        "yes" if r.sustainable() else "**no**",
                    ]
                    for r in http.ladder
                ],
            ).markdown()
        )
    for title, auth_runs in (
        ("POST /auth/register", http.register),
        ("POST /auth/login", http.login),
    ):
        if auth_runs:
            out += [
                "",
                f"## {title} at {args.auth_rate:g}/s",
                "",
                load_table(auth_runs, args.split),
            ]

    main_rate = median(r.achieved for r in http.main) if http.main else float("nan")
    main_p95 = median(r.p(95) for r in http.main) if http.main else float("nan")
    passing = [r for r in http.ladder if r.sustainable()]
    best = max(passing, key=lambda r: r.achieved) if passing else None
    ratio = main_rate / raw_saves if raw_saves else float("nan")
    saves = [r for r in raw if r.label == labels[0]]
    raw_ms = median((r.cpu.own + r.cpu.postgres) * r.seconds / r.saves * 1000 for r in saves)
    http_ms = median(_per_request_ms(r, _ours(r)) for r in http.main)
    cores = os.cpu_count() or 1
    out += [
        "",
        "## Summary",
        "",
        f"- raw saves/s (2-event aggregates, median): **{fmt(raw_saves, 0)}**; "
        f"raw get+update+save/s: {fmt(raw_cmd, 0)}",
        f"- HTTP PATCH at {args.rate:g}/s: **{fmt(main_rate, 0)}/s** achieved, p95 "
        f"**{fmt(main_p95)} ms** (median of {len(http.main)})",
        f"- ratio HTTP commands/s / raw saves/s: **{ratio:.2f}** (target >= {RATIO_TARGET} "
        f"with p95 < {P95_TARGET_MS:g} ms: "
        f"{'met' if ratio >= RATIO_TARGET and main_p95 < P95_TARGET_MS else 'MISSED'})",
    ]
    out.append(
        f"- CPU per PATCH, everything measured (generator, server, projections, Postgres): "
        f"**{fmt(http_ms, 2)} ms** at {args.rate:g}/s; the raw save (client + Postgres): "
        f"{fmt(raw_ms, 2)} ms. At {cores} cores that alone caps HTTP at "
        f"{fmt(cores * 1000 / http_ms, 0)}/s, {cores * 1000 / http_ms / raw_saves:.2f}x the "
        "raw rate, before any queueing"
    )
    if best is not None:
        out.append(
            f"- highest sustainable rate on the ladder (p95 < {P95_TARGET_MS:g} ms, no errors, "
            f">= 95% achieved): **{best.rate:g}/s** (p95 {fmt(best.p(95))} ms), ratio "
            f"{best.achieved / raw_saves:.2f}"
        )
    elif http.ladder:
        out.append("- no ladder rate was sustainable")
    if http.ladder and http.ladder[-1].sustainable():
        out.append("- (the top of the ladder passed: the limit is higher; extend --ladder)")
    out.append(
        f"- setup: {http.logins} logins over HTTP took {http.login_setup_s:.1f} s "
        "(closed loop, 4 at a time)"
    )
    return "\n".join(out)


# --- main ----------------------------------------------------------------------------------------


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # clean up (database, server) on kill too
    machine = machine_lines(args.postgres)
    tmp = Path(tempfile.mkdtemp(prefix="bench-commands-"))
    secret = secrets.token_urlsafe(36)  # 48 characters
    password = "Bench-" + secrets.token_urlsafe(16)
    db_name, conninfo = create_database(args.postgres)
    log(f"database {db_name}, data dir {tmp}")
    try:
        settings = Settings(
            database_url=conninfo,
            data_dir=tmp / "var",
            secret_key=secret,  # type: ignore[arg-type]
        )
        started = time.perf_counter()
        password_hash = PasswordHasher().hash(password)
        raw = raw_baseline(args, settings, password_hash)
        prepared = time.perf_counter()
        users = prepare_users(settings, args.users, password_hash)
        log(f"{len(users)} verified users written in {time.perf_counter() - prepared:.1f}s")
        with shop_server(
            conninfo,
            tmp / "var",
            secret,
            tmp,
            split=args.split,
            workers=args.workers,
            redis_url=args.redis,
        ) as server:
            http = asyncio.run(http_phase(args, server, conninfo, users, password))
        print(report(args, machine, raw, http))
        print(
            f"\n(total {time.perf_counter() - started:.0f} s; events in the log: "
            f"{count_rows(conninfo, EVENTS_TABLE)})"
        )
    finally:
        discard_scratch(args.postgres, db_name, tmp, args.keep)


if __name__ == "__main__":
    main()
