"""One checkout followed as one trace in the embedded mode: the whole app in this
process (``create_app`` under a TestClient, projections and the checkout saga running
in its followers), spans recorded in memory by the OpenTelemetry SDK."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from domain.access import Principal
from domain.money import Money
from infra.wiring.process import Container
from tests.support.api import CONSISTENCY, bearer
from tests.support.in_process import in_process_app
from tests.support.ordering_client import ADDRESS
from tests.support.polling import eventually
from tests.support.tracing import recorded_spans, trace_id_of
from tests.support.users_client import STRONG_PASSWORD, unique_email

pytestmark = pytest.mark.integration

ADMIN = Principal(uuid4(), uuid4(), frozenset({"customer", "admin"}))


@pytest.fixture
def shop(database_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Container]]:
    with in_process_app(database_url, tmp_path) as (app, container), TestClient(app) as client:
        yield client, container


def listed_product(container: Container) -> uuid.UUID:
    catalog, product_id, category = container.catalog_commands, uuid4(), uuid4()
    catalog.create_category(ADMIN, category, "Shoes")
    sku = f"SKU-{uuid4().hex[:10].upper()}"
    catalog.create_product(
        ADMIN, product_id, ADMIN.user_id, sku, "Shoe", price=Money.of("20.00", "EUR")
    )
    catalog.categorise(ADMIN, product_id, [category])
    catalog.publish(ADMIN, product_id)
    container.inventory_commands.receive(ADMIN, sku, 5)
    return product_id


def shopper(client: TestClient, container: Container) -> dict[str, str]:
    email = unique_email("tracer")
    container.user_commands.create_admin(email, STRONG_PASSWORD, "Tracer")
    answer = client.post("/auth/login", json={"email": email, "password": STRONG_PASSWORD})
    assert answer.status_code == 200, answer.text
    headers = bearer(answer.json()["access_token"])
    eventually(lambda: client.get("/users/me", headers=headers).status_code == 200)
    return headers


def in_trace(spans: InMemorySpanExporter, trace_id: str) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if trace_id_of(s) == trace_id]


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def test_a_checkout_is_one_trace_from_its_post_to_its_confirmed_order(
    shop: tuple[TestClient, Container],
) -> None:
    client, container = shop
    with recorded_spans() as spans:
        headers = shopper(client, container)
        product_id = listed_product(container)
        added = client.post(
            "/cart/lines", json={"product_id": str(product_id), "quantity": 1}, headers=headers
        )
        assert added.status_code == 200, added.text
        # The cart's events applied before the checkout: a batch of the saga's then
        # holds only this checkout's events, and its span is a child of their save.
        cart = client.get("/cart", headers={**headers, CONSISTENCY: added.headers[CONSISTENCY]})
        assert cart.status_code == 200, cart.text

        placed = client.post(
            "/checkout",
            json={"shipping_address": ADDRESS, "payment_method": "pm_card_visa"},
            headers={**headers, "Idempotency-Key": uuid4().hex},
        )
        assert placed.status_code == 202, placed.text
        trace_id = placed.headers["X-Trace-Id"]
        order_id = placed.json()["id"]

        def confirmed() -> bool:
            order = client.get(f"/orders/{order_id}", headers=headers).json()
            return bool(order["status"] == "confirmed")

        eventually(confirmed, f"order {order_id} confirmed")

        def applied_confirmation() -> list[ReadableSpan] | None:
            # The orders view's batch that took what the saga saved, in this trace.
            found = in_trace(spans, trace_id)
            sagas = [s for s in found if s.name.startswith("apply checkout_saga")]
            views = named(found, "apply orders")
            done = any(descends(found, v, saga) for v in views for saga in sagas)
            return found if done else None

        found = eventually(applied_confirmation, "the confirmation applied in the trace")

    (request,) = named(found, "POST /checkout")
    assert request.kind is SpanKind.SERVER
    assert request.attributes is not None
    assert request.attributes["http.request.method"] == "POST"
    assert request.attributes["http.route"] == "/checkout"
    assert request.attributes["http.response.status_code"] == 202

    (command,) = named(found, "CartCommands.checkout")
    assert command.parent is not None and command.parent.span_id == span_id(request)
    placing = [s for s in named(found, "save ordering") if parent_of(found, s) is command]
    assert placing and placing[0].attributes is not None
    assert placing[0].attributes["eventshop.log"] == "ordering"
    assert int(placing[0].attributes["eventshop.events"]) >= 1  # type: ignore[arg-type]

    # The saga's partitions applied the placed order as children of its save; the
    # order's partition saved the stock reserved, the payment authorized and the
    # order confirmed in the trace, and the orders view applied that confirmation.
    sagas = [
        s
        for s in found
        if s.name.startswith("apply checkout_saga_") and parent_of(found, s) is placing[0]
    ]
    assert sagas and all(s.kind is SpanKind.CONSUMER for s in sagas)
    (decider,) = [s for s in sagas if any(descends(found, d, s) for d in found)]
    saved = {s.name for s in found if s.name.startswith("save ") and descends(found, s, decider)}
    assert {"save inventory", "save payments", "save ordering"} <= saved
    assert any(descends(found, s, decider) for s in named(found, "apply orders"))


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def parent_of(spans: list[ReadableSpan], span: ReadableSpan) -> ReadableSpan | None:
    if span.parent is None:
        return None
    return next((s for s in spans if span_id(s) == span.parent.span_id), None)


def descends(spans: list[ReadableSpan], span: ReadableSpan, ancestor: ReadableSpan) -> bool:
    parent = parent_of(spans, span)
    while parent is not None:
        if parent is ancestor:
            return True
        parent = parent_of(spans, parent)
    return False
