"""End-to-end fixtures: the app started exactly as an operator starts it.

One ``shop run`` process serves the whole e2e session (starting it costs seconds;
every test makes its own accounts, so they do not see each other's state). The
first admin is made beforehand with ``shop users create-admin``, as in production.
Everything is driven over HTTP with httpx; the only side door is a count of rows in
the event store, to prove that refused requests wrote nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support.catalog_client import Cast, make_cast
from tests.support.server import NO_ADDRESS_LIMITS, Server, running_server


@pytest.fixture(scope="package")
def server(
    make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """``shop run`` on a fresh database, for the e2e tests only (stopped after them:
    its connections count against the server's ``max_connections``, which the
    scaled-mode tests need). The per-address limits (every test comes
    from 127.0.0.1) are raised so that the suite itself is not throttled; the
    per-account limits keep their defaults and are tested on their own accounts."""
    with running_server(
        make_database(), tmp_path_factory.mktemp("shop-data"), NO_ADDRESS_LIMITS
    ) as running:
        yield running


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture(scope="module")
def cast(server: Server) -> Cast:
    """An admin, two sellers, a customer and a category, per test module."""
    return make_cast(server)
