"""Open Server-Sent Events streams held by one API process, and the delivery latency of
one in-app notification to every connected user.

Target (the issue): 10,000 connections, p95 delivery under 1 s, under 40 KB of server
memory per connection; and the event loop's longest pause.

Three processes per run (``--role`` picks one; the orchestrator is the default):

- **server**: the real ``create_app`` (projections off: the sessions' access view is
  filled during setup) with its ``StreamHub``, under one uvicorn worker with uvloop
  and httptools on a loopback port. The bench's wrapper adds a loop-lag probe
  (a task sleeping 10 ms that records its overshoot) and times the garbage
  collector's generation-2 passes (``gc.callbacks``); both go to a file the
  orchestrator reads. The ``--variants`` (default ``stock,untuned``):

  - ``stock``: the app as ``shop run`` and ``shop serve`` serve it (the item carried in
    the NOTIFY payload, the collector tuned: ``tune_gc_for_serving``);
  - ``untuned``: the same without the collector's tuning, to show what it buys.

  ``--census`` (SIGUSR1) writes the tracked objects by type and a few tasks' await
  chains to the probe file (keep it with ``--keep``); ``--profile DIR`` runs
  ``py-spy record`` on the server during each broadcast.
- **client**: raw asyncio protocols (uvloop), ``--connections`` of them opened in
  batches of ``--batch``: each POSTs for a ticket with its user's access token, then
  GETs the stream on the same keep-alive connection, and records when the first
  ``event: notification`` arrives.
- **orchestrator**: a fresh database with the users and their sessions written in
  bulk (no argon2 login per user; access tokens signed with the server's secret), the
  access view caught up in-process; per run and variant a new server and client; RSS
  (``/proc/<pid>/status`` VmRSS) before any connection and with all of them open and
  idle; then one ``put_many`` of an item for every connected user, the latency of each
  stream counted from the commit's return (``time.monotonic``: CLOCK_MONOTONIC, one
  clock for every process of the machine).

    uv run python -m bench.sse_fanout --connections 10000 --runs 3

Every process is stopped and the database dropped at the end, on failure or SIGTERM
too (``--keep`` keeps the database and the logs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, TypeVar, cast
from uuid import UUID, uuid4

import psycopg
from psycopg_pool import ConnectionPool

from bench._common import (
    DEFAULT_SERVER,
    Table,
    create_database,
    discard_scratch,
    fmt,
    log,
    machine_lines,
    median,
    percentile,
    wait_for_quiet,
)

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")
SECRET = "bench-sse-fanout-secret-key-0123456789abcdef-0123456789"
TICKETS = "/me/notifications/stream-tickets"
STREAM = "/me/notifications/stream"
MARKER = b"event: notification"
PROBE_SECONDS = 0.010
"""The loop-lag probe's sleep: its overshoot is the loop's pause."""
PROBE_FLOOR_MS = 2.0
"""Overshoots below this are not written to the probe file (its maximum is kept)."""
P95_TARGET_S = 1.0
KB_TARGET = 40.0
VARIANTS = ("stock", "untuned")


# --- arguments ------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.sse_fanout",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--role", choices=["orchestrator", "server", "client"], default="orchestrator")
    p.add_argument("--postgres", default=DEFAULT_SERVER, help="maintenance conninfo")
    p.add_argument("--connections", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=3, help="runs of each variant")
    p.add_argument(
        "--variants",
        default="stock,untuned",
        help=f"comma-separated, of {', '.join(VARIANTS)}",
    )
    p.add_argument("--batch", type=int, default=500, help="connections opened at once")
    p.add_argument("--idle", type=float, default=3.0, help="seconds idle before RSS is read")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for delivery")
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="folder: py-spy record (collapsed stacks) of the server during each broadcast "
        "(uvx py-spy; perturbs the figures)",
    )
    p.add_argument(
        "--census",
        action="store_true",
        help="with all streams open, the server writes its tracked objects by type to the "
        "probe file (in the logs: use with --keep)",
    )
    p.add_argument("--keep", action="store_true", help="keep the database and the logs")
    # internal: the server's and the client's own
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--probe-file", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--untuned", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--tokens-file", type=Path, default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def raise_nofile() -> int:
    """The soft limit of descriptors up to the hard one: 10k sockets need it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# --- the server (--role server) ----------------------------------------------------------


class LoopProbe:
    """A task that sleeps ``PROBE_SECONDS`` and records how late it wakes: the event
    loop's pauses. Generation-2 collections are timed too (``gc.callbacks``). Lines
    ``lag <monotonic> <ms>`` / ``gc2 <monotonic> <ms> <collected>`` go to ``path``."""

    def __init__(self, path: Path) -> None:
        self._out: IO[str] = path.open("a", buffering=1)
        self._gc_start = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, self.census)
        self._task = asyncio.create_task(self._run(), name="loop-lag-probe")

    def stop(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            self._task.cancel()
        self._out.close()

    def census(self) -> None:
        """SIGUSR1: the objects the collector tracks, by type (the 25 commonest)."""
        from collections import Counter

        kinds = Counter(type(o).__qualname__ for o in gc.get_objects())
        self._out.write(f"census {time.monotonic():.6f} {sum(kinds.values())} total\n")
        for name, count in kinds.most_common(25):
            self._out.write(f"census-type {time.monotonic():.6f} {count} {name}\n")
        for task in list(asyncio.all_tasks())[-8:]:
            chain: list[str] = []
            coro: Any = task.get_coro()
            while coro is not None:
                chain.append(getattr(coro, "__qualname__", type(coro).__qualname__))
                coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
            self._out.write(f"census-task {time.monotonic():.6f} {len(chain)} {'<'.join(chain)}\n")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(PROBE_SECONDS)
            lag_ms = (loop.time() - before - PROBE_SECONDS) * 1000
            if lag_ms >= PROBE_FLOOR_MS:
                self._out.write(f"lag {time.monotonic():.6f} {lag_ms:.2f}\n")

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            ms = (time.perf_counter() - self._gc_start) * 1000
            self._out.write(f"gc2 {time.monotonic():.6f} {ms:.2f} {info.get('collected', 0)}\n")


def serve(args: argparse.Namespace) -> None:
    """One uvicorn worker (uvloop, httptools) serving the real ``create_app`` with the
    stream mounted; the settings come from the ``SHOP_*`` environment."""
    import uvicorn
    from fastapi import FastAPI

    from infra.entrypoints.http import create_app
    from infra.settings import Settings
    from infra.wiring.process import bootstrap

    raise_nofile()
    settings = Settings()
    container = bootstrap(settings)
    app = create_app(container, run_projections=False, tune_gc=not args.untuned)
    if not hasattr(app.state, "notification_stream"):
        raise SystemExit("create_app does not mount the notification stream (StreamHub)")
    probe = LoopProbe(args.probe_file or Path(os.devnull))
    outer = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with outer(app):
            print(
                f"after start-up: {len(gc.get_objects())} tracked objects, "
                f"{gc.get_freeze_count()} frozen",
                file=sys.stderr,
            )
            probe.start()
            try:
                yield
            finally:
                probe.stop()

    app.router.lifespan_context = lifespan
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level="warning",
        access_log=False,
        backlog=4096,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()


# --- the client (--role client) ------------------------------------------------------------


class StreamClient(asyncio.Protocol):
    """One user's connection: POST for a ticket, GET the stream on the same
    connection, then note when the first notification arrives."""

    def __init__(self, host: str, token: str, opened: asyncio.Future[bool]) -> None:
        self._host = host
        self._token = token
        self._opened = opened
        self._buffer = b""
        self._state = "ticket"
        self.transport: asyncio.Transport | None = None
        self.received: float | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        transport = self.transport
        transport.write(
            (
                f"POST {TICKETS} HTTP/1.1\r\nHost: {self._host}\r\n"
                f"Authorization: Bearer {self._token}\r\nContent-Length: 0\r\n\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        if self._state == "stream":
            if self.received is None and MARKER in self._buffer[-32:] + data:
                self.received = time.monotonic()
            self._buffer = data[-32:]
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self._buffer[: end + 4]
        status = int(head[9:12])
        if self._state == "ticket":
            lower = head.lower()
            mark = lower.find(b"\r\ncontent-length:")
            length = int(lower[mark + 17 : lower.index(b"\r\n", mark + 2)]) if mark >= 0 else 0
            if len(self._buffer) < end + 4 + length:
                return
            body = self._buffer[end + 4 : end + 4 + length]
            if status != 201:
                self._fail(f"ticket {status} {body[:200]!r}")
                return
            ticket = json.loads(body)["ticket"]
            self._buffer = b""
            self._state = "open"
            assert self.transport is not None
            self.transport.write(
                f"GET {STREAM}?ticket={ticket} HTTP/1.1\r\nHost: {self._host}\r\n"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            return
        if status != 200:
            self._fail(f"stream {status} {self._buffer[:300]!r}")
            return
        rest = self._buffer[end + 4 :]
        self._state = "stream"
        self._buffer = b""
        if not self._opened.done():
            self._opened.set_result(True)
        if rest:
            self.data_received(rest)

    def _fail(self, why: str) -> None:
        if not self._opened.done():
            self._opened.set_exception(RuntimeError(why))
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self._opened.done():
            self._opened.set_exception(ConnectionError(f"closed before the stream: {exc!r}"))


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def client_main(args: argparse.Namespace) -> None:
    """Opens the streams in batches, says so on stdout after each batch; then reads
    the commit time from stdin and answers each stream's delivery latency."""
    raise_nofile()
    loop = asyncio.get_running_loop()
    assert args.tokens_file is not None
    tokens: list[str] = json.loads(args.tokens_file.read_text())[: args.connections]
    host = f"127.0.0.1:{args.port}"
    clients: list[StreamClient] = []
    failures: dict[str, int] = {}
    started = time.monotonic()
    for start in range(0, len(tokens), args.batch):
        batch = []
        for token in tokens[start : start + args.batch]:
            opened: asyncio.Future[bool] = loop.create_future()
            client = StreamClient(host, token, opened)

            async def connect(c: StreamClient = client) -> StreamClient:
                await loop.create_connection(lambda: c, "127.0.0.1", args.port)
                return c

            batch.append((client, opened, asyncio.ensure_future(connect())))
        for client, opened, connecting in batch:
            try:
                await asyncio.wait_for(connecting, 60)
                await asyncio.wait_for(opened, 60)
                clients.append(client)
            except (OSError, RuntimeError, TimeoutError, ConnectionError) as error:
                why = type(error).__name__ + ": " + str(error)[:120]
                failures[why] = failures.get(why, 0) + 1
                if client.transport is not None:
                    client.transport.close()
        emit({"open": len(clients), "failed": sum(failures.values()), "at": time.monotonic()})
    emit(
        {
            "ready": len(clients),
            "failures": failures,
            "ramp_s": time.monotonic() - started,
            "user_index": [i for i, c in enumerate(clients)],
        }
    )
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    order = json.loads(await reader.readline())
    deadline = time.monotonic() + order["timeout"]
    while time.monotonic() < deadline:
        if all(c.received is not None or c.closed for c in clients):
            break
        await asyncio.sleep(0.02)
    emit(
        {
            "received": [c.received for c in clients if c.received is not None],
            "missing": sum(1 for c in clients if c.received is None),
            "closed": sum(1 for c in clients if c.closed),
        }
    )
    await reader.readline()  # "close"
    for c in clients:
        if c.transport is not None:
            c.transport.close()


# --- the orchestrator ------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    user_id: UUID
    session_id: UUID


@dataclass
class RunResult:
    variant: str
    run: int
    connections: int = 0
    failed: int = 0
    ramp_s: float = 0.0
    rss_before_kb: int = 0
    rss_open_kb: int = 0
    rss_at_tenth_kb: int = 0
    tenth: int = 0
    put_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    missing: int = 0
    pause_broadcast_ms: float = 0.0
    pause_ramp_ms: float = 0.0
    pause_idle_ms: float = 0.0
    gc2_max_ms: float = 0.0
    gc2_count: int = 0
    rss_after_kb: int = 0
    busy_before: float = 0.0
    """Cores the machine was busy with (others' work) before the run started."""

    @property
    def kb_per_conn(self) -> float:
        if not self.connections:
            return float("nan")
        return (self.rss_open_kb - self.rss_before_kb) / self.connections

    @property
    def kb_marginal(self) -> float:
        """The slope from a tenth of the connections to all of them (the first ones
        also pay one-off warm-up: thread pool, caches)."""
        if self.connections <= self.tenth or not self.tenth:
            return float("nan")
        return (self.rss_open_kb - self.rss_at_tenth_kb) / (self.connections - self.tenth)

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)

    @property
    def worst(self) -> float:
        return max(self.latencies) if self.latencies else float("nan")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def setup(args: argparse.Namespace, conninfo: str, data_dir: Path) -> list[Account]:
    """Verified users and one session each, written in bulk; the access view (which
    authenticates the access tokens) caught up in this process; the inbox's and the
    tickets' tables."""
    from bench.commands import prepare_users
    from commands.users.passwords import PasswordHasher
    from domain.sessions import Session
    from infra.postgres import inbox, stream_tickets
    from infra.wiring.process import bootstrap
    from projections.positions import tracked_position

    settings = shop_settings(conninfo, data_dir)
    users = prepare_users(settings, args.connections, PasswordHasher().hash("Bench-password-1"))
    container = bootstrap(settings)
    accounts: list[Account] = []
    try:
        with container.pool.connection() as conn:
            conn.execute(inbox.DDL)
            conn.execute(stream_tickets.DDL)
        expires_at = datetime.now(UTC) + timedelta(days=1)
        for start in range(0, len(users), 100):
            sessions = [Session(uuid4(), u.id, 1, expires_at) for u in users[start : start + 100]]
            container.users_app.save(*sessions)
            accounts += [Account(s.user_id, s.id) for s in sessions]
        log(f"{len(accounts)} users and sessions written; the access view catching up")
        from infra.entrypoints.status import log_head

        deadline = time.monotonic() + 900
        with psycopg.connect(conninfo, autocommit=True) as conn:
            head = log_head(conn, "users")
            container.start_projections()
            while tracked_position(conn, "user_access", "users") < head:
                if time.monotonic() > deadline:
                    raise TimeoutError("the access view did not catch up")
                time.sleep(0.5)
    finally:
        container.close()
    return accounts


def shop_settings(conninfo: str, data_dir: Path) -> Any:
    from infra.settings import Settings

    return Settings(
        database_url=conninfo,
        data_dir=data_dir,
        secret_key=SECRET,  # type: ignore[arg-type]
        access_token_minutes=60,
        projections=False,
    )


def sign(accounts: list[Account]) -> list[str]:
    """Access tokens as a login answers them, signed with the server's secret (fresh
    for each run: they live an hour at most)."""
    from commands.users.tokens import TokenCodec

    codec = TokenCodec(SECRET, timedelta(minutes=60), timedelta(days=1))
    now = datetime.now(UTC)
    return [codec.issue(a.user_id, a.session_id, 1, now).access_token for a in accounts]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for_health(proc: subprocess.Popen[Any], port: int, log_path: Path) -> None:
    import socket

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {log_path.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError("the server did not answer /health")


@contextlib.contextmanager
def child(command: list[str], env: dict[str, str], out: Path, **kw: Any) -> Iterator[Any]:
    with out.open("wb") as log_file:
        proc = subprocess.Popen(command, env=env, cwd=REPO, stderr=log_file, **kw)
        try:
            yield proc
        finally:
            stop(proc)


def read_probe(path: Path) -> list[tuple[str, float, float]]:
    lines = []
    for line in path.read_text().splitlines():
        kind, at, ms, *_ = line.split()
        lines.append((kind, float(at), float(ms)))
    return lines


def window_max(probe: list[tuple[str, float, float]], kind: str, start: float, end: float) -> float:
    """The longest pause ending in [start, end] (a pause ending after the probe's
    wake-up counts where it ended)."""
    return max((ms for k, at, ms in probe if k == kind and start <= at <= end), default=0.0)


def one_run(
    args: argparse.Namespace,
    conninfo: str,
    data_dir: Path,
    logs: Path,
    accounts: list[Account],
    variant: str,
    number: int,
) -> RunResult:
    from infra.postgres.inbox import PostgresInbox
    from projections.notifications.inbox import InboxItem

    result = RunResult(variant, number)
    port = free_port()
    probe_file = logs / f"probe-{variant}-{number}.txt"
    probe_file.write_text("")
    tokens_file = logs / "tokens.json"
    tokens_file.write_text(json.dumps(sign(accounts)))
    env = {
        **os.environ,
        "SHOP_DATABASE_URL": conninfo,
        "SHOP_DATA_DIR": str(data_dir),
        "SHOP_SECRET_KEY": SECRET,
        "SHOP_ACCESS_TOKEN_MINUTES": "60",
        "SHOP_PROJECTIONS": "false",
        "SHOP_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    me = [sys.executable, "-m", "bench.sse_fanout"]
    server_cmd = [*me, "--role", "server", "--port", str(port), "--probe-file", str(probe_file)]
    if variant == "untuned":
        server_cmd.append("--untuned")
    client_cmd = [*me, "--role", "client", "--port", str(port), "--tokens-file", str(tokens_file)]
    client_cmd += ["--connections", str(args.connections), "--batch", str(args.batch)]
    server_log = logs / f"server-{variant}-{number}.log"
    result.busy_before = wait_for_quiet(60.0)
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(child(server_cmd, env, server_log))
        wait_for_health(server, port, server_log)
        time.sleep(1.0)
        result.rss_before_kb = rss_kb(server.pid)
        log(f"  {variant} #{number}: server pid {server.pid}, RSS {result.rss_before_kb} KB")
        client = stack.enter_context(
            child(
                client_cmd,
                env,
                logs / f"client-{variant}-{number}.log",
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        )
        assert client.stdout is not None and client.stdin is not None
        ramp_start = time.monotonic()
        result.tenth = max(1, args.connections // 10)
        ready: dict[str, Any] = {}
        while True:
            line = client.stdout.readline()
            if not line:
                raise RuntimeError(f"the client exited ({client.wait()}); see {logs}")
            message = json.loads(line)
            if "open" in message:
                if not result.rss_at_tenth_kb and message["open"] >= result.tenth:
                    result.tenth = message["open"]
                    result.rss_at_tenth_kb = rss_kb(server.pid)
                continue
            ready = message
            break
        ramp_end = time.monotonic()
        # Connected before the measurement: Postgres's connections are shared with
        # others here, and waiting for one must not count as writing.
        pool = stack.enter_context(
            ConnectionPool(conninfo, min_size=1, max_size=1, timeout=300, open=True)
        )
        pool.wait(timeout=300)
        inbox = PostgresInbox(pool)
        result.connections, result.ramp_s = ready["ready"], ready["ramp_s"]
        result.failed = sum(ready["failures"].values())
        if ready["failures"]:
            log(f"  failures: {ready['failures']}")
        log(f"  {result.connections} streams open in {result.ramp_s:.1f}s; idle {args.idle}s")
        time.sleep(args.idle)
        result.rss_open_kb = rss_kb(server.pid)
        if args.census:
            server.send_signal(signal.SIGUSR1)
            time.sleep(2.0)
        idle_end = time.monotonic()
        connected = [accounts[i] for i in ready["user_index"]]
        now = datetime.now(UTC)
        items = [
            InboxItem(
                user_id=a.user_id,
                notification_id=uuid4(),
                kind="announcement",
                title="Flash sale",
                body="Everything is 20% off until midnight.",
                link="/sale",
                created_at=now,
            )
            for a in connected
        ]
        profiler = None
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            out = args.profile / f"server-{variant}-{number}.txt"
            spy = ["uvx", "py-spy", "record", "-p", str(server.pid), "-d", "8", "-r", "200"]
            profiler = subprocess.Popen(
                [*spy, "-o", str(out), "-f", "raw", "--nonblocking"],
                stdout=subprocess.DEVNULL,
                stderr=(logs / "py-spy.log").open("ab"),
            )
            time.sleep(2.0)
        put_start = time.monotonic()
        inbox.put_many(items)
        committed = time.monotonic()
        result.put_s = committed - put_start
        client.stdin.write((json.dumps({"timeout": args.timeout}) + "\n").encode())
        client.stdin.flush()
        line = client.stdout.readline()
        if not line:
            raise RuntimeError(f"the client exited ({client.wait()}); see {logs}")
        delivered = json.loads(line)
        result.latencies = [at - committed for at in delivered["received"]]
        result.missing = delivered["missing"]
        last = max(delivered["received"], default=committed)
        if profiler is not None:
            profiler.wait(timeout=30)
        time.sleep(0.5)
        result.rss_after_kb = rss_kb(server.pid)
        client.stdin.write(b"close\n")
        client.stdin.flush()
        client.wait(timeout=30)
    probe = read_probe(probe_file)
    result.pause_ramp_ms = window_max(probe, "lag", ramp_start, ramp_end)
    result.pause_idle_ms = window_max(probe, "lag", ramp_end + 1.0, idle_end)
    result.pause_broadcast_ms = window_max(probe, "lag", put_start, last + 0.2)
    gcs = [ms for kind, _, ms in probe if kind == "gc2"]
    result.gc2_max_ms = max(gcs, default=0.0)
    result.gc2_count = len(gcs)
    log(
        f"  {variant} #{number}: {result.connections} conns, {fmt(result.kb_per_conn)} KB/conn "
        f"(marginal {fmt(result.kb_marginal)}), put_many {result.put_s:.2f}s, p50 "
        f"{fmt(result.p(50), 3)} p95 {fmt(result.p(95), 3)} p99 {fmt(result.p(99), 3)} max "
        f"{fmt(result.worst, 3)} s, missing {result.missing}; loop pause broadcast "
        f"{result.pause_broadcast_ms:.0f} ms ramp {result.pause_ramp_ms:.0f} ms; gen2 GC "
        f"{result.gc2_count}x max {result.gc2_max_ms:.0f} ms"
    )
    return result


def report(args: argparse.Namespace, results: list[RunResult]) -> None:
    headers = [
        "variant",
        "run",
        "connections",
        "failed",
        "ramp s",
        "KB/conn",
        "KB/conn marginal",
        "put_many s",
        "p50 s",
        "p95 s",
        "p99 s",
        "max s",
        "missing",
        "loop pause broadcast ms",
        "loop pause ramp ms",
        "gen2 GC max ms (count)",
        "busy before (cores)",
    ]

    def row(r: RunResult, label: str) -> list[str]:
        return [
            r.variant,
            label,
            str(r.connections),
            str(r.failed),
            fmt(r.ramp_s),
            fmt(r.kb_per_conn),
            fmt(r.kb_marginal),
            fmt(r.put_s, 2),
            fmt(r.p(50), 3),
            fmt(r.p(95), 3),
            fmt(r.p(99), 3),
            fmt(r.worst, 3),
            str(r.missing),
            fmt(r.pause_broadcast_ms, 0),
            fmt(r.pause_ramp_ms, 0),
            f"{fmt(r.gc2_max_ms, 0)} ({r.gc2_count})",
            fmt(r.busy_before, 2),
        ]

    rows: list[list[str]] = []
    for variant in dict.fromkeys(r.variant for r in results):
        mine = [r for r in results if r.variant == variant]
        rows += [row(r, str(r.run)) for r in mine]
        rows.append(
            [
                f"**{variant}**",
                "**median**",
                fmt(median(r.connections for r in mine), 0),
                fmt(median(r.failed for r in mine), 0),
                fmt(median(r.ramp_s for r in mine)),
                fmt(median(r.kb_per_conn for r in mine)),
                fmt(median(r.kb_marginal for r in mine)),
                fmt(median(r.put_s for r in mine), 2),
                *(fmt(median(r.p(q) for r in mine), 3) for q in (50, 95, 99)),
                fmt(median(r.worst for r in mine), 3),
                fmt(median(r.missing for r in mine), 0),
                fmt(median(r.pause_broadcast_ms for r in mine), 0),
                fmt(median(r.pause_ramp_ms for r in mine), 0),
                fmt(median(r.gc2_max_ms for r in mine), 0),
                fmt(median(r.busy_before for r in mine), 2),
            ]
        )
        p95 = median(r.p(95) for r in mine)
        kb = median(r.kb_per_conn for r in mine)
        n = median(r.connections for r in mine)
        verdict = (
            "meets" if n >= args.connections and p95 < P95_TARGET_S and kb < KB_TARGET else "misses"
        )
        log(f"{variant}: {verdict} the target (p95 {p95:.3f} s, {kb:.1f} KB/conn, {n:.0f} open)")
    print(Table(headers, rows).markdown())
    print()
    print("\n".join(machine_lines(args.postgres)))


def patiently(call: Callable[[], T], tries: int = 30) -> T:
    """``call`` again while Postgres has no connection to spare (its
    ``max_connections`` is shared with whatever else runs on the machine)."""
    for attempt in range(tries):
        try:
            return call()
        except psycopg.OperationalError as error:
            if "too many clients" not in str(error) or attempt == tries - 1:
                raise
            time.sleep(2.0)
    raise AssertionError("unreachable")


def orchestrate(args: argparse.Namespace) -> None:
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants: {', '.join(sorted(unknown))}")
    raise_nofile()
    signal.signal(signal.SIGTERM, _exit_on_term)  # clean up as on Ctrl-C
    data_dir = Path(tempfile.mkdtemp(prefix="bench-sse-"))
    logs = data_dir / "logs"
    logs.mkdir()
    name, conninfo = patiently(lambda: create_database(args.postgres, "bench_sse"))
    log(f"database {name}, logs in {logs}")
    results: list[RunResult] = []
    try:
        accounts = setup(args, conninfo, data_dir)
        for number in range(1, args.runs + 1):
            for variant in variants:
                results.append(one_run(args, conninfo, data_dir, logs, accounts, variant, number))
    finally:
        if results:
            report(args, results)
        patiently(lambda: discard_scratch(args.postgres, name, data_dir, args.keep))


def _exit_on_term(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.role == "server":
        serve(args)
    elif args.role == "client":
        import uvloop

        uvloop.run(client_main(args))
    else:
        orchestrate(args)


if __name__ == "__main__":
    main()
