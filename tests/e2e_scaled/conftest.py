"""The embedded mode's end-to-end journeys again, against the scaled mode: a write
API, a read API, the relay and two stream workers, each a ``shop serve`` process,
on a Tansu broker. The client routes as the load balancer does (infra/aws/alb.tf):
GET and HEAD to the read API, everything else to the write API. Mail, the checkout
saga and every read model run in the workers, off Kafka."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import httpx
import pytest

from tests.e2e.conftest import cast, client
from tests.integration.kafka.conftest import (
    Broker,
    Roles,
    broker,
    scaled_settings,
    settings_env,
)
from tests.support.api import bearer
from tests.support.polling import eventually
from tests.support.server import Server, create_admin, free_port

__all__ = ["broker", "cast", "client"]

READY_SECONDS = 90.0


class _ByMethod(httpx.BaseTransport):
    """The load balancer's rule: reads to the read API, the rest to the write API."""

    def __init__(self, read_port: int) -> None:
        self._read_port = read_port
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method in ("GET", "HEAD"):
            request.url = request.url.copy_with(port=self._read_port)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


@dataclass
class ScaledServer(Server):
    """``base_url`` is the write API's; reads go to ``read_port``."""

    read_port: int = 0

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, timeout=30.0, transport=_ByMethod(self.read_port)
        )


def _healthy(url: str) -> bool:
    return httpx.get(url).status_code == 200


def _ready(check: Callable[[], bool], what: str) -> None:
    waited = f"the scaled deployment: {what}"
    eventually(check, waited, timeout=READY_SECONDS, interval=0.5, retry_on=(httpx.TransportError,))


@pytest.fixture(scope="package")
def server(
    make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory, broker: Broker
) -> Iterator[ScaledServer]:
    directory = tmp_path_factory.mktemp("scaled")
    database = make_database()
    write_port, read_port = free_port(), free_port()
    limits = {
        "login_attempts_per_address": 100000,
        "reset_requests_per_address": 100000,
        # The first events wait for the workers to join their group.
        "read_your_writes_timeout": 15,
        "public_url": f"http://127.0.0.1:{write_port}",
        # Five processes and the test share the database's 100 connections: one saga
        # view instead of four (each is a connection per log it follows, per worker).
        "checkout_saga_partitions": 1,
    }
    settings = scaled_settings(database, directory / "var", broker)
    env = settings_env(settings, **limits)
    create_admin(env)
    roles = Roles(settings, directory)
    try:
        write_api = roles.start("write-api", port=write_port, db_pool_size=3, **limits)
        roles.start("read-api", port=read_port, db_pool_size=3, **limits)
        roles.start("relay", db_pool_size=2, **limits)
        # One worker: with the notifications area (its own log, delivery loops, the
        # inbox stream) two did not fit beside the rest in Postgres's 100 connections.
        roles.start("worker", **limits)
        running = ScaledServer(
            f"http://127.0.0.1:{write_port}", env, database, write_api.log_path, read_port=read_port
        )
        with running.client() as http:
            for port in (write_port, read_port):
                _ready(partial(_healthy, f"http://127.0.0.1:{port}/health"), f"/health on {port}")
            # The admin can read once the workers have built the access view.
            headers = bearer(running.admin_token(http))
            _ready(lambda: http.get("/users/me", headers=headers).status_code == 200, "workers")
        yield running
    finally:
        for role in roles.started:
            role.stop()
    for role in roles.started:
        assert "unhandled error" not in role.log(), role.name
