"""The ordering area over HTTP: carts, checkout, and waiting for the checkout
saga's decision (it works after the answer); stock levels as the seller sees them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from tests.support.api import CONSISTENCY, written
from tests.support.catalog_client import Cast, listed_product
from tests.support.polling import eventually
from tests.support.users_client import Account, verified_account

if TYPE_CHECKING:
    from tests.support.server import Server

ADDRESS = {"name": "Ada Lovelace", "line1": "1 Main St", "city": "Lyon", "country": "FR"}
DECIDED = {"confirmed", "rejected"}
THREE_D_SECURE = "pm_card_threeDSecure2Required"


def add_to_cart(
    client: httpx.Client, headers: dict[str, str], product_id: str, quantity: int = 1
) -> httpx.Response:
    """A line added to the shopper's cart (checked written)."""
    added = client.post(
        "/cart/lines", json={"product_id": product_id, "quantity": quantity}, headers=headers
    )
    written(added, context="ordering")
    return added


def checkout(
    client: httpx.Client,
    headers: dict[str, str],
    token: str = "pm_card_visa",
    key: str | None = None,
) -> httpx.Response:
    return client.post(
        "/checkout",
        json={"shipping_address": ADDRESS, "payment_method": token},
        headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex},
    )


def place_order(
    client: httpx.Client,
    headers: dict[str, str],
    product_id: str,
    quantity: int = 1,
    token: str = "pm_card_visa",
) -> tuple[str, str]:
    """``quantity`` units of a product put in the cart and checked out: the order's
    id and the position of its placing (the saga decides later)."""
    add_to_cart(client, headers, product_id, quantity)
    placed = checkout(client, headers, token=token)
    return written(placed, 202, context="ordering"), str(placed.json()["position"])


def order_status(
    client: httpx.Client, headers: dict[str, str], order_id: str, token: str | None = None
) -> dict[str, Any]:
    """The order as its shopper sees it (once the view holds ``token``, if given)."""
    extra = {CONSISTENCY: token} if token else {}
    response = client.get(f"/orders/{order_id}", headers={**headers, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def decided_order(
    client: httpx.Client, headers: dict[str, str], order_id: str, token: str | None = None
) -> dict[str, Any]:
    """The order once the saga confirmed or rejected it."""
    return _order_once(
        client, headers, order_id, token, lambda status: status in DECIDED, "confirmed or rejected"
    )


def awaiting_order(
    client: httpx.Client, headers: dict[str, str], order_id: str, token: str | None = None
) -> dict[str, Any]:
    """The order once the saga has it awaiting the shopper's authentication (never
    decided on the way)."""

    def awaiting(status: str) -> bool:
        assert status not in DECIDED, status
        return status == "awaiting_authentication"

    return _order_once(client, headers, order_id, token, awaiting, "awaiting authentication")


def _order_once(
    client: httpx.Client,
    headers: dict[str, str],
    order_id: str,
    token: str | None,
    reached: Callable[[str], bool],
    what: str,
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body = order_status(client, headers, order_id, token)
        return body if reached(body["status"]) else None

    # Fail fast: an assertion in ``reached`` (or a refused read) does not pass later.
    return eventually(check, f"order {order_id} {what}", retry_on=())


def confirmed_order(
    client: httpx.Client, cast: Cast, shopper: Account, price: str = "30.00"
) -> tuple[str, str]:
    """An order of one unit of a new product, confirmed by the saga: (order id, SKU)."""
    product_id, sku = listed_product(client, cast, price, stock=5)
    order_id, position = place_order(client, shopper.headers, product_id)
    order = decided_order(client, shopper.headers, order_id, position)
    assert order["status"] == "confirmed", order
    return order_id, sku


def awaiting_checkout(
    server: Server, client: httpx.Client, cast: Cast, label: str
) -> tuple[Account, str, str, dict[str, Any]]:
    """A shopper's order of two units paid with the 3-D Secure card, awaiting its
    authentication: (shopper, order id, SKU, the order as the read API shows it)."""
    product_id, sku = listed_product(client, cast, "15.00", stock=3)
    shopper = verified_account(server, client, label)
    order_id, position = place_order(client, shopper.headers, product_id, 2, THREE_D_SECURE)
    order = awaiting_order(client, shopper.headers, order_id, position)
    stock_becomes(client, cast, sku, on_hand=3, reserved=2)  # held while it waits
    return shopper, order_id, sku, order


def stock_level(client: httpx.Client, cast: Cast, sku: str) -> dict[str, Any]:
    page = client.get("/inventory", headers=cast.seller.headers, params={"limit": 200})
    assert page.status_code == 200, page.text
    found = [row for row in page.json()["items"] if row["sku"] == sku]
    cursor = page.json()["next_cursor"]
    while not found and cursor:
        page = client.get(
            "/inventory", headers=cast.seller.headers, params={"limit": 200, "cursor": cursor}
        )
        found = [row for row in page.json()["items"] if row["sku"] == sku]
        cursor = page.json()["next_cursor"]
    assert found, sku
    row: dict[str, Any] = found[0]
    return row


def stock_becomes(client: httpx.Client, cast: Cast, sku: str, **expected: int) -> None:
    def reached() -> bool:
        row = stock_level(client, cast, sku)
        return all(row[k] == v for k, v in expected.items())

    eventually(reached, f"stock of {sku} is {expected}")
