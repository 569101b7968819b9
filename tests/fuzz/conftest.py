"""Fuzz fixtures: ``shop run`` started as an operator starts it (the e2e
``start_server``) on a fresh database, seeded over HTTP with a little of everything
(a category, a published product with a price and stock, an order, a review, a
cart) so that generated requests can name ids that exist; the bearer tokens of a
customer, a seller and an admin; and the summary of what the fuzz sent, printed at
the end of the run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import schemathesis
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.support.api import written
from tests.support.catalog_client import listed_product, make_cast
from tests.support.ordering_client import add_to_cart, decided_order, place_order
from tests.support.server import NO_ADDRESS_LIMITS, Server, running_server

MODES = ("anonymous", "customer", "seller", "admin")
"""In this order: the admin's run comes last, as it may deactivate the others."""


@dataclass(frozen=True)
class Target:
    base_url: str
    schema: OpenApiSchema
    tokens: dict[str, str | None]
    """Per auth mode, the bearer token sent (None: no Authorization header)."""
    ids: dict[str, str]
    """Per path parameter name, a value that exists."""


@dataclass
class Tally:
    """What one auth mode's run sent and got."""

    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0


_TALLY = "fuzz_tally"


@pytest.fixture(scope="package")
def fuzz_server(
    make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with running_server(
        make_database(), tmp_path_factory.mktemp("fuzz-data"), NO_ADDRESS_LIMITS
    ) as running:
        yield running


@pytest.fixture(scope="package")
def target(fuzz_server: Server) -> Target:
    cast = make_cast(fuzz_server)
    with fuzz_server.client() as client:
        product_id, sku = listed_product(client, cast, "19.99", stock=100)
        customer = cast.customer.headers
        order_id, position = place_order(client, customer, product_id)
        decided_order(client, customer, order_id, position)
        review = {"rating": 5, "title": "Good", "body": "Fits well."}
        posted = client.post(f"/products/{product_id}/reviews", json=review, headers=customer)
        review_id = written(posted, 201, context="reviews")
        add_to_cart(client, customer, product_id)  # a cart with a line, for the cart routes
        admin_token = fuzz_server.admin_token(client)
    return Target(
        base_url=fuzz_server.base_url,
        schema=schemathesis.openapi.from_url(f"{fuzz_server.base_url}/openapi.json"),
        tokens={
            "anonymous": None,
            "customer": cast.customer.access_token,
            "seller": cast.seller.access_token,
            "admin": admin_token,
        },
        ids={
            "product_id": product_id,
            "sku": sku,
            "category_id": cast.category_id,
            "order_id": order_id,
            "review_id": review_id,
            "user_id": cast.customer.id,
            "role": "seller",
        },
    )


@pytest.fixture
def tally(request: pytest.FixtureRequest, mode: str) -> Iterator[Tally]:
    """What this auth mode's run sends: kept as a user property of the test, which
    pytest-xdist carries from its worker to the summary printed by the controller."""
    found = Tally()
    yield found
    # Plain types only: execnet cannot send a Counter.
    kept = (mode, found.requests, dict(found.statuses), found.seconds)
    request.node.user_properties.append((_TALLY, kept))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    kept = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        for name, value in getattr(report, "user_properties", ())
        if name == _TALLY
    ]
    tallies = {
        mode: Tally(requests, Counter(statuses), seconds)
        for mode, requests, statuses, seconds in kept
    }
    if not tallies:
        return
    terminalreporter.section("API fuzz")
    for mode, found in tallies.items():
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(found.statuses.items()))
        terminalreporter.line(
            f"{mode:>9}: {found.requests} requests in {found.seconds:.0f} s ({statuses})"
        )
    total = sum(found.requests for found in tallies.values())
    terminalreporter.line(f"{'total':>9}: {total} requests")
