"""Shared helpers of the benchmarks: throwaway databases, machine facts, CPU
accounting from /proc, percentiles and markdown tables."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import platform
import re
import shlex
import shutil
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from bench._rawhttp import RawHttp

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
_TICKS = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    """Progress lines, stamped with the wall clock, to stderr (results go to stdout)."""
    print(f"[{dt.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --- databases -----------------------------------------------------------------


def create_database(server: str, prefix: str = "bench") -> tuple[str, str]:
    """A fresh, empty database on ``server``: its name and its conninfo."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, make_conninfo(server, dbname=name)


def drop_database(server: str, name: str) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def discard_scratch(server: str, name: str, data_dir: Path, keep: bool) -> None:
    """A run's scratch database and data folder: dropped, or kept (``--keep``) and said."""
    if keep:
        log(f"kept database {name} and {data_dir}")
        return
    drop_database(server, name)
    shutil.rmtree(data_dir, ignore_errors=True)


def count_rows(conninfo: str, table: str) -> int:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


# --- the machine -----------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def postgres_version(server: str) -> str:
    """Its version and the cache size that the figures of a large catalog depend on."""
    with psycopg.connect(server, autocommit=True) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version'), current_setting('shared_buffers')"
        ).fetchone()
    return f"{row[0]} (shared_buffers {row[1]})" if row else "unknown"


def git_revision() -> str:
    """The commit measured, and whether the working tree differed from it."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.split("\n")
    except OSError:
        return "unknown"
    changed = [line[3:] for line in dirty if line.strip()]
    return head + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")


def machine_lines(server: str) -> list[str]:
    """Markdown bullet lines saying where and how the figures were measured."""
    argv = " ".join(shlex.quote(a) for a in sys.argv[1:])
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    module = spec.name if spec is not None else f"bench.{Path(sys.argv[0]).stem}"
    return [
        f"- date: {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
        f"{cpu_model()}, {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, PostgreSQL {postgres_version(server)}",
        f"- code: {git_revision()}",
        f"- command: `{f'uv run python -m {module} {argv}'.strip()}`",
    ]


# --- CPU accounting --------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the ")" the fields start at field 3 (state): utime is field 14, stime 15.
    return (int(fields[11]) + int(fields[12])) / _TICKS


def process_tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its descendants still running (``shop run
    --workers N`` serves HTTP from child processes)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        total += process_cpu_seconds(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return total


def machine_busy_seconds() -> float:
    """CPU seconds spent busy by the whole machine, all cores (from /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICKS


def pids_cpu_seconds(pids: Iterable[int]) -> float:
    return sum(process_cpu_seconds(pid) for pid in pids)


def postgres_cpu_seconds() -> float:
    """CPU seconds of every ``postgres`` process on this machine (server and backends,
    including backends that have exited: their time is in their parent's cutime
    only after they are reaped, so sample while connections are held open)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
        except OSError:
            continue
        total += process_cpu_seconds(int(entry.name))
    return total


# --- statistics and tables ---------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) by linear interpolation; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Iterable[float]) -> float:
    items = list(values)
    return statistics.median(items) if items else float("nan")


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str]]

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.headers) + " |"]
        lines.append("|" + "|".join("---:" if i else "---" for i in range(len(self.headers))) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


def fmt(value: float, digits: int = 1) -> str:
    if value != value:  # nan
        return "-"
    return f"{value:,.{digits}f}"


@dataclass(frozen=True)
class CpuShares:
    """CPU over an interval, in cores (1.0 = one core busy the whole time)."""

    own: float
    server: float
    postgres: float
    other: float
    """Everything else busy on the machine: other processes, other databases'
    backends, Postgres's background processes."""
    extra: float = 0.0
    """A second process of the system measured (e.g. a projections process)."""


class CpuMeter:
    """Samples this process, an optional server process (and a second one), the
    Postgres backends of one database (pids from pg_stat_activity) and the whole
    machine."""

    def __init__(
        self, server_pid: int | None, postgres_pids: list[int], extra_pid: int | None = None
    ) -> None:
        self._server_pid = server_pid
        self._extra_pid = extra_pid
        self._pg_pids = postgres_pids
        self._start = self._sample()

    def _sample(self) -> tuple[float, float, float, float, float, float]:
        return (
            time.perf_counter(),
            time.process_time(),
            process_tree_cpu_seconds(self._server_pid) if self._server_pid else 0.0,
            pids_cpu_seconds(self._pg_pids),
            machine_busy_seconds(),
            process_tree_cpu_seconds(self._extra_pid) if self._extra_pid else 0.0,
        )

    def shares(self) -> CpuShares:
        end = self._sample()
        wall, own, server, pg, busy, extra = (b - a for a, b in zip(self._start, end, strict=True))
        wall = max(wall, 1e-9)
        rest = max(0.0, busy - own - server - pg - extra)
        return CpuShares(own / wall, server / wall, pg / wall, rest / wall, extra / wall)


def database_backends(conn: psycopg.Connection[Any]) -> list[int]:
    """Pids of the backends connected to ``conn``'s database."""
    rows = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
    ).fetchall()
    return [int(r[0]) for r in rows]


def wait_for_quiet(max_wait: float, threshold: float = 0.3, window: float = 1.0) -> float:
    """Wait (up to ``max_wait`` seconds) until the machine is quiet: less than
    ``threshold`` cores busy over ``window`` seconds. Others may share the machine;
    returns the last busy figure measured (in cores)."""
    deadline = time.monotonic() + max_wait
    warned = False
    while True:
        before = machine_busy_seconds()
        time.sleep(window)
        busy = (machine_busy_seconds() - before) / window
        if busy < threshold or time.monotonic() >= deadline:
            if warned:
                log(f"  machine busy {busy:.2f} cores: going ahead")
            return busy
        if not warned:
            log(f"  machine busy ({busy:.2f} cores used by others): waiting up to {max_wait:.0f}s")
            warned = True


@dataclass(frozen=True)
class Schedule:
    """How an open-loop run went, as the scheduler saw it."""

    wall: float
    """Seconds from the first due time to the end of the wait for answers."""
    unfinished: int
    """Requests still unanswered when the wait ended (cancelled)."""
    max_send_lag_ms: float
    """How late the generator itself started the latest request."""


async def paced(
    rate: float,
    total: int,
    one: Callable[[int, float], Coroutine[Any, Any, None]],
    *,
    drain_timeout: float,
) -> Schedule:
    """The open-loop generator every HTTP benchmark uses: request ``i`` starts at
    ``due = start + i / rate`` (``loop.time()`` units) whatever happened before, so the
    caller measures latency from ``due`` and queueing is not hidden (no coordinated
    omission). Waits ``drain_timeout`` seconds for the answers, then cancels the rest."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.005
    tasks: list[asyncio.Task[None]] = []
    max_lag = 0.0
    for i in range(total):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            max_lag = max(max_lag, -delay * 1000)
        tasks.append(asyncio.create_task(one(i, due)))
    _, pending = await asyncio.wait(tasks, timeout=drain_timeout) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    return Schedule(loop.time() - start, len(pending), max_lag)


async def cache_counts(port: int, metric: str) -> Counter[str]:
    """A cache's outcomes so far (hit, miss, error, bypass), from the server's /metrics."""
    async with RawHttp("127.0.0.1", port, 1) as client:
        status, body = await client.request("GET", "/metrics")
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    pattern = re.compile(metric.encode() + rb'_total\{result="(\w+)"\} ([0-9.e+]+)')
    return Counter({m[1].decode(): int(float(m[2])) for m in pattern.finditer(body)})
