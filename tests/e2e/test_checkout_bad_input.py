"""Bad input to carts, checkout and orders: a clean 4xx problem+json, and nothing
written (no event, no gateway call). Card numbers and security codes are refused
wherever they appear, without being echoed."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.support.api import refused, written
from tests.support.catalog_client import Cast, listed_product
from tests.support.ordering_client import ADDRESS, checkout
from tests.support.server import Server
from tests.support.side_door import nothing_written
from tests.support.users_client import Account, verified_account

pytestmark = pytest.mark.e2e

PAN = "4242 4242 4242 4242"


@pytest.fixture(scope="module")
def product(server: Server, cast: Cast) -> str:
    with server.client() as client:
        return listed_product(client, cast, "9.99", stock=5)[0]


@pytest.fixture
def shopper(server: Server, client: httpx.Client) -> Account:
    return verified_account(server, client, "badinput")


def test_checking_out_an_empty_cart_is_refused(
    server: Server, client: httpx.Client, shopper: Account
) -> None:
    with nothing_written(server):
        refused(checkout(client, shopper.headers), 409, "cart-empty")
        no_key = client.post(
            "/checkout",
            json={"shipping_address": ADDRESS, "payment_method": "pm_card_visa"},
            headers=shopper.headers,
        )
        refused(no_key, 400, "idempotency-key-required")
        refused(
            client.post("/checkout", json={"shipping_address": ADDRESS, "payment_method": "x"}),
            401,
            "unauthenticated",
        )


@pytest.mark.parametrize(
    "line",
    [
        {"quantity": 0},
        {"quantity": 1_000_000_000},
        {"quantity": 1e9},
        {"quantity": "2"},
        {"quantity": 2.5},
        {"quantity": True},
        {"quantity": 1, "unit_price": {"amount": "0.01", "currency": "EUR"}},
    ],
)
def test_malformed_lines_are_refused(
    server: Server, client: httpx.Client, shopper: Account, product: str, line: dict[str, Any]
) -> None:
    with nothing_written(server):
        response = client.post(
            "/cart/lines", json={"product_id": product, **line}, headers=shopper.headers
        )
        refused(response, 422, "validation-failed")


def test_unknown_products_and_lines_are_refused(
    server: Server, client: httpx.Client, shopper: Account
) -> None:
    with nothing_written(server):
        unknown = client.post(
            "/cart/lines",
            json={"product_id": str(uuid.uuid4()), "quantity": 1},
            headers=shopper.headers,
        )
        refused(unknown, 404, "not-found")
        refused(
            client.put("/cart/lines/NOPE-1", json={"quantity": 2}, headers=shopper.headers),
            404,
            "not-found",
        )
        refused(client.get("/cart"), 404, "not-found")


def test_prices_and_lines_never_come_from_the_client(
    server: Server, client: httpx.Client, shopper: Account, product: str
) -> None:
    client.post("/cart/lines", json={"product_id": product, "quantity": 1}, headers=shopper.headers)
    with nothing_written(server):
        tampered = client.post(
            "/checkout",
            json={
                "shipping_address": ADDRESS,
                "payment_method": "pm_card_visa",
                "lines": [{"product_id": product, "quantity": 1, "unit_price": "0.01"}],
                "total": "0.01",
            },
            headers={**shopper.headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        body = refused(tampered, 422, "validation-failed")
        assert {tuple(e["location"])[-1] for e in body["errors"]} == {"lines", "total"}


@pytest.mark.parametrize(
    "body",
    [
        {"shipping_address": ADDRESS, "payment_method": "4242424242424242"},
        {"shipping_address": {**ADDRESS, "line2": f"card {PAN}"}, "payment_method": "pm_card_visa"},
        {"shipping_address": ADDRESS, "payment_method": "pm_card_visa", "cvc": "123"},
        {"shipping_address": ADDRESS, "payment_method": {"card": {"number": 4000000000000002}}},
    ],
)
def test_card_data_is_refused_and_never_echoed(
    server: Server, client: httpx.Client, shopper: Account, product: str, body: dict[str, Any]
) -> None:
    client.post("/cart/lines", json={"product_id": product, "quantity": 1}, headers=shopper.headers)
    with nothing_written(server):
        response = client.post(
            "/checkout", json=body, headers={**shopper.headers, "Idempotency-Key": uuid.uuid4().hex}
        )
        refused(response, 422, "card-data-refused")
        for secret in ("4242", "4000000000000002", "123"):
            assert secret not in response.text.replace(str(response.status_code), "")
    assert PAN not in server.log_path.read_text()


def test_a_replayed_key_with_another_body_is_refused(
    server: Server, client: httpx.Client, shopper: Account, product: str
) -> None:
    client.post("/cart/lines", json={"product_id": product, "quantity": 1}, headers=shopper.headers)
    key = uuid.uuid4().hex
    placed = checkout(client, shopper.headers, key=key)
    written(placed, 202, context="ordering")
    with nothing_written(server):
        other = checkout(client, shopper.headers, token="pm_card_mastercard", key=key)
        refused(other, 422, "idempotency-key-reused")


def test_others_orders_are_not_found_and_shoppers_cannot_ship(
    server: Server, client: httpx.Client, shopper: Account, product: str
) -> None:
    client.post("/cart/lines", json={"product_id": product, "quantity": 1}, headers=shopper.headers)
    order_id = written(checkout(client, shopper.headers), 202, context="ordering")
    stranger = verified_account(server, client, "stranger")
    with nothing_written(server):
        refused(client.get(f"/orders/{order_id}", headers=stranger.headers), 404, "not-found")
        refused(
            client.post(f"/orders/{order_id}/cancel", json={}, headers=stranger.headers),
            404,
            "not-found",
        )
        ship = client.post(
            f"/admin/orders/{order_id}/ship",
            json={"carrier": "UPS", "tracking_number": "1"},
            headers=shopper.headers,
        )
        refused(ship, 403, "not-permitted")
        refused(
            client.post(f"/orders/{order_id}/return", json={"reason": ""}, headers=shopper.headers),
            422,
            "validation-failed",
        )
        bad_filter = client.get(
            "/admin/orders", params={"min_total": "10"}, headers=server.admin_headers(client)
        )
        refused(bad_filter, 400, "bad-query")
        refused(
            client.get("/orders", params={"cursor": "nonsense"}, headers=shopper.headers),
            400,
            "bad-query",
        )
