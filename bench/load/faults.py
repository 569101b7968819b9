"""Faults under the load (issue 18 item 5): a fault schedule (``--fault
kill-projections@30``), a supervisor that restarts a killed process as systemd or
ECS would, a Redis server of the run's own (restarting the machine's shared one
would disturb everyone else), and the recovery figures computed from the samples.

A fault's time counts from the start of the measured window. ``KIND@AT+DOWN``: the
killed process (or the stopped Redis) stays down ``DOWN`` seconds (default 1 s,
about what a supervisor's restart delay is) before it is started again.

The pure parts (parsing, per-second buckets, recovery) are unit-tested in
tests/unit/test_load_faults.py; the processes are exercised by the smoke runs in
bench/README.md ("Faults under the load")."""

from __future__ import annotations

import contextlib
import math
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench._common import log, percentile
from bench.commands import REPO, Server, free_port, server_env
from bench.load.stats import Samples

KINDS = ("kill-projections", "restart-redis", "kill-api")
DEFAULT_DOWN_S = 1.0
P95_BOUND_MS = 200.0
HOLD_S = 3
PER_SECOND_KEPT = 60
"""Seconds after a fault whose sent / failed / p95 the JSON keeps."""
"""Clean seconds in a row that count as recovered."""
READY_TIMEOUT_S = 120.0


# --- the schedule (pure) ---------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    kind: str
    at_s: float
    """Seconds into the measured window."""
    down_s: float = DEFAULT_DOWN_S
    """How long the process stays down before it is started again."""

    def __str__(self) -> str:
        return f"{self.kind}@{self.at_s:g}+{self.down_s:g}"


def parse_fault(text: str) -> Fault:
    """``KIND@AT`` or ``KIND@AT+DOWN`` (seconds)."""
    kind, at, rest = text.strip().partition("@")
    if not at or kind not in KINDS:
        raise ValueError(f"a fault is KIND@SECONDS[+DOWN] with KIND one of {', '.join(KINDS)}")
    when, _, down = rest.partition("+")
    try:
        at_s = float(when)
        down_s = float(down) if down else DEFAULT_DOWN_S
    except ValueError:
        raise ValueError(f"{text!r}: the times must be numbers of seconds") from None
    if not (math.isfinite(at_s) and math.isfinite(down_s)) or at_s < 0 or down_s < 0:
        raise ValueError(f"{text!r}: the times must be finite and >= 0")
    return Fault(kind, at_s, down_s)


def parse_faults(values: list[str], duration: float) -> list[Fault]:
    """Every ``--fault`` (each may be a comma-separated list), in time order; each
    must fall inside the measured window."""
    faults = [parse_fault(part) for value in values for part in value.split(",") if part.strip()]
    for fault in faults:
        if fault.at_s >= duration:
            raise ValueError(f"{fault}: after the measured window ({duration:g} s)")
    return sorted(faults, key=lambda f: f.at_s)


# --- recovery (pure) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Second:
    """The requests due in one second: sent and failed per kind, p95 of all (ms)."""

    sent: dict[str, int]
    failed: dict[str, int]
    p95_ms: float

    @property
    def clean(self) -> bool:
        """Something was sent, and every kind sent was answered without an error."""
        return sum(self.sent.values()) > 0 and not any(self.failed.values())


def seconds_from(by_kind: dict[str, Samples], origin: float, end: float) -> list[Second]:
    """One ``Second`` per second of [origin, end), by due time (answer time minus
    latency): what the shoppers asked for in that second, however long it took."""
    n = max(0, math.ceil(end - origin))
    sent: list[dict[str, int]] = [{} for _ in range(n)]
    failed: list[dict[str, int]] = [{} for _ in range(n)]
    latencies: list[list[float]] = [[] for _ in range(n)]
    for kind, samples in by_kind.items():
        for at, ms, ok in zip(samples.at, samples.ms, samples.ok, strict=True):
            k = math.floor(at - ms / 1000 - origin)
            if 0 <= k < n:
                sent[k][kind] = sent[k].get(kind, 0) + 1
                failed[k][kind] = failed[k].get(kind, 0) + (0 if ok else 1)
                latencies[k].append(ms)
    return [Second(sent[k], failed[k], percentile(sorted(latencies[k]), 95)) for k in range(n)]


def recovery(
    seconds: list[Second],
    p95_bound_ms: float = P95_BOUND_MS,
    hold: int = HOLD_S,
    back_s: float = 0.0,
) -> tuple[int | None, int | None]:
    """Seconds from the fault (the first of ``seconds``) until every kind is
    answered without errors again, and until, besides, p95 is under the bound: the
    first second from which every second is clean (and fast) until the process is
    back (``back_s`` after the fault) and for ``hold`` seconds at least (fewer when
    the window ends first). One clean second is not enough: an effect may start a
    moment after the fault (a pool notices a dead Redis on its next call), or a quiet
    second fall among failing ones. None when it did not happen in the window."""

    def first(ok: Callable[[Second], bool], since: int) -> int | None:
        for k in range(since, len(seconds)):
            if all(ok(s) for s in seconds[k : max(k + hold, math.ceil(back_s))]):
                return k
        return None

    if back_s >= len(seconds):  # not back before the window ended
        return None, None
    errors = first(lambda s: s.clean, 0)
    if errors is None:
        return None, None
    return errors, first(lambda s: s.clean and s.p95_ms < p95_bound_ms, errors)


@dataclass(frozen=True)
class FaultWindow:
    """What the shoppers saw from a fault until it was over (the process back and
    the first clean second), by kind."""

    seconds: float
    sent: dict[str, int]
    failed: dict[str, int]

    @property
    def error_rate(self) -> float:
        total = sum(self.sent.values())
        return sum(self.failed.values()) / total if total else 0.0


def fault_window(by_kind: dict[str, Samples], start: float, end: float) -> FaultWindow:
    """Requests that ended at or after ``start`` and were due before ``end``: those
    in flight when the fault struck count too (they are the ones it cut)."""
    sent: dict[str, int] = {}
    failed: dict[str, int] = {}
    for kind, samples in by_kind.items():
        for at, ms, ok in zip(samples.at, samples.ms, samples.ok, strict=True):
            if at >= start and at - ms / 1000 < end:
                sent[kind] = sent.get(kind, 0) + 1
                failed[kind] = failed.get(kind, 0) + (0 if ok else 1)
    return FaultWindow(end - start, dict(sorted(sent.items())), dict(sorted(failed.items())))


# --- processes -----------------------------------------------------------------------------


@dataclass
class Life:
    """One death of a supervised process and its return (monotonic s)."""

    died: float
    started: float | None = None
    ready: float | None = None


class Supervised:
    """A process restarted whenever it dies, after ``down_s`` (as ``Restart=always``
    in systemd or an ECS service would), until ``stop``. Each incarnation logs to a
    file of its own, so readiness is read from the new one only."""

    def __init__(
        self,
        name: str,
        command: list[str],
        env: dict[str, str],
        logs: Path,
        ready: Callable[[Path], bool],
    ) -> None:
        self.name = name
        self._command = command
        self._env = env
        self._logs = logs
        self._ready = ready
        self._down_s = DEFAULT_DOWN_S
        self._stopping = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self.lives: list[Life] = []

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def start(self) -> None:
        self._launch()
        self._await_ready()
        self._thread = threading.Thread(target=self._watch, name=f"supervise-{self.name}")
        self._thread.daemon = True
        self._thread.start()

    def kill(self, down_s: float) -> None:
        """SIGKILL: no handler runs, nothing is flushed, as in an OOM kill."""
        self._down_s = down_s
        assert self._proc is not None
        self._proc.send_signal(signal.SIGKILL)

    def stop(self) -> None:
        self._stopping.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # graceful, as at the end of any run
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _log_path(self) -> Path:
        n = len(self.lives)
        return self._logs / (f"{self.name}.log" if n == 0 else f"{self.name}.{n}.log")

    def _launch(self) -> None:
        with self._log_path().open("wb") as out:  # the child keeps its own descriptor
            self._proc = subprocess.Popen(
                self._command, env=self._env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT
            )

    def _await_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        path = self._log_path()
        while not self._ready(path):
            assert self._proc is not None
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start:\n{path.read_text()[-3000:]}")
            time.sleep(0.05)

    def _watch(self) -> None:
        while not self._stopping.is_set():
            assert self._proc is not None
            code = self._proc.wait()
            if self._stopping.is_set():
                return
            life = Life(time.monotonic())
            self.lives.append(life)
            log(
                f"{self.name} (pid {self._proc.pid}) died ({code}); "
                f"restarting in {self._down_s:g} s"
            )
            if self._stopping.wait(self._down_s):
                return
            self._down_s = DEFAULT_DOWN_S
            self._launch()
            life.started = time.monotonic()
            with contextlib.suppress(RuntimeError):  # a failed start: the next loop restarts it
                self._await_ready()
                life.ready = time.monotonic()
                log(
                    f"{self.name} back (pid {self._proc.pid}), {life.ready - life.died:.1f} s after"
                )


def _answers(base: str) -> Callable[[Path], bool]:
    def ready(_log: Path) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{base}/health", timeout=1).status_code == 200
        return False

    return ready


def _says_running(log_path: Path) -> bool:
    with contextlib.suppress(OSError):
        return "projections running" in log_path.read_text()
    return False


@dataclass
class Processes:
    """What the faults act on."""

    api: Supervised
    projections: Supervised | None
    redis: RedisServer


@contextlib.contextmanager
def supervised_shop(
    conninfo: str, data_dir: Path, secret: str, logs: Path, *, split: bool, redis: RedisServer
) -> Iterator[tuple[Server, Processes]]:
    """``shop run`` (and with ``split`` ``shop projections run``) as ``shop_server``
    starts them, but each under a supervisor, on a fixed port so that a restarted
    API is found where the shoppers left it."""
    base = f"http://127.0.0.1:{free_port()}"
    env = server_env(conninfo, data_dir, secret, base, redis_url=redis.url)
    shop = str(Path(sys.executable).parent / "shop")
    projections = None
    if split:
        projections = Supervised(
            "projections-all",
            [shop, "projections", "run", "--part", "all"],
            env,
            logs,
            _says_running,
        )
        env = {**env, "SHOP_PROJECTIONS": "false"}
    port = base.rsplit(":", 1)[1]
    api = Supervised(
        "server", [shop, "run", "--host", "127.0.0.1", "--port", port], env, logs, _answers(base)
    )
    started: list[Supervised] = []
    try:
        for process in (projections, api):
            if process is not None:
                process.start()
                started.append(process)
                log(f"{process.name} (pid {process.pid}) up, supervised")
        yield (
            Server(base, api.pid, projections.pid if projections else None),
            Processes(api, projections, redis),
        )
    finally:
        for process in reversed(started):
            process.stop()


class RedisServer:
    """``/usr/bin/redis-server`` on a free loopback port with a data dir of its own
    and no persistence: a restart comes back empty, the harder case for the caches
    and the rate limits (they must refill, not fail)."""

    def __init__(self, data_dir: Path, binary: str = "/usr/bin/redis-server") -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = data_dir
        self._binary = binary
        self._proc: subprocess.Popen[bytes] | None = None
        self._starts = 0

    def start(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        command = [self._binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--dir", str(self._dir), "--save", "", "--appendonly", "no"]
        with (self._dir / f"redis.{self._starts}.log").open("wb") as out:
            self._proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        self._starts += 1
        deadline = time.monotonic() + 10
        while not self._pings():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM: Redis shuts down (saving nothing, ``--save ""``) and exits."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def _pings(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), 0.5) as s,
        ):
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
        return False


# --- the injector ----------------------------------------------------------------------------


@dataclass
class Struck:
    """A fault as it happened (monotonic s): when it struck, when the process was
    started again and when it answered (or said it was running)."""

    fault: Fault
    at: float
    started: float | None = None
    ready: float | None = None
    notes: list[str] = field(default_factory=list)


class Injector:
    """Strikes each fault at its time, from a thread of the parent (the generator
    processes know nothing of it: they just see the server fail and come back)."""

    def __init__(self, faults: list[Fault], processes: Processes) -> None:
        self.faults = faults
        self.processes = processes
        self.struck: list[Struck] = []
        self._thread: threading.Thread | None = None

    def start(self, origin: float) -> None:
        self._thread = threading.Thread(target=self._run, args=(origin,), name="faults")
        self._thread.daemon = True
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=READY_TIMEOUT_S)
        for struck in self.struck:  # the supervisor's record of the restart
            target = self._supervised(struck.fault)
            if target is not None:
                life = next((life for life in target.lives if life.died >= struck.at), None)
                if life is not None:
                    struck.started, struck.ready = life.started, life.ready

    def _supervised(self, fault: Fault) -> Supervised | None:
        if fault.kind == "kill-api":
            return self.processes.api
        if fault.kind == "kill-projections":
            return self.processes.projections
        return None

    def _run(self, origin: float) -> None:
        for fault in self.faults:
            time.sleep(max(0.0, origin + fault.at_s - time.monotonic()))
            struck = Struck(fault, time.monotonic())
            self.struck.append(struck)
            log(f"fault: {fault}")
            target = self._supervised(fault)
            if target is not None:
                target.kill(fault.down_s)
                continue
            self.processes.redis.stop()
            time.sleep(fault.down_s)
            struck.started = time.monotonic()
            self.processes.redis.start()
            struck.ready = time.monotonic()


def figures(struck: Struck, by_kind: dict[str, Samples], end: float) -> dict[str, Any]:
    """One fault's figures: its window's error rate by kind, the restart and the
    recovery times (seconds from the fault)."""
    seconds = seconds_from(by_kind, struck.at, end)
    back = (struck.ready - struck.at) if struck.ready is not None else None
    clean, fast = recovery(seconds, back_s=back if back is not None else math.inf)
    over = max(1.0, back or 0.0, float(clean) if clean is not None else end - struck.at)
    window = fault_window(by_kind, struck.at, min(end, struck.at + over))
    return {
        "fault": str(struck.fault),
        "at_s": struck.fault.at_s,
        "back_after_s": back,
        "window_s": window.seconds,
        "sent": window.sent,
        "failed": window.failed,
        "error_rate": window.error_rate,
        "errors_recovered_after_s": clean,
        "p95_recovered_after_s": fast,
        "per_second": [
            [
                sum(x.sent.values()),
                sum(x.failed.values()),
                None if math.isnan(x.p95_ms) else x.p95_ms,
            ]
            for x in seconds[:PER_SECOND_KEPT]
        ],
        "notes": struck.notes,
    }
