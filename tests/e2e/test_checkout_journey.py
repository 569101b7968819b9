"""A shopper's whole journey over HTTP against ``shop run`` (sandbox payments): cart,
checkout, the saga's decision, shipment, delivery, return, refunds, histories; a
declined card and short stock end rejected with everything given back; a changed
price is shown before paying; a guest cart merges at login."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.api import CONSISTENCY, refused, written
from tests.support.catalog_client import Cast, listed_product
from tests.support.ordering_client import (
    checkout,
    decided_order,
    order_status,
    place_order,
    stock_becomes,
    stock_level,
)
from tests.support.polling import eventually
from tests.support.server import Server
from tests.support.side_door import gateway_calls
from tests.support.users_client import verified_account

pytestmark = pytest.mark.e2e


def test_cart_checkout_ship_deliver_return_refund(
    server: Server, client: httpx.Client, cast: Cast
) -> None:
    product_id, sku = listed_product(client, cast, "25.00", stock=5)
    shopper = verified_account(server, client, "journey")
    admin = cast.admin

    added = client.post(
        "/cart/lines", json={"product_id": product_id, "quantity": 2}, headers=shopper.headers
    )
    written(added, context="ordering")
    cart = client.get("/cart", headers={**shopper.headers, CONSISTENCY: added.json()["position"]})
    assert cart.status_code == 200, cart.text
    assert cart.json()["total"] == {"amount": "50.00", "currency": "EUR"}
    assert [(line["sku"], line["quantity"]) for line in cart.json()["lines"]] == [(sku, 2)]

    key = uuid.uuid4().hex
    placed = checkout(client, shopper.headers, key=key)
    order_id = written(placed, 202, context="ordering")
    again = checkout(client, shopper.headers, key=key)  # a retry: the same order
    assert again.status_code == 202 and again.json() == placed.json()
    assert again.headers["Idempotent-Replayed"] == "true"

    order = decided_order(client, shopper.headers, order_id, placed.json()["position"])
    assert order["status"] == "confirmed", order
    assert order["total"] == "50.00"
    assert gateway_calls(server, "authorize", order_id) == 1  # one charge for two requests
    emptied = client.get("/cart", headers=shopper.headers).json()
    assert emptied["lines"] == [] and emptied["last_order_id"] == order_id
    history = client.get("/orders", headers=shopper.headers).json()
    assert [o["order_id"] for o in history["items"]] == [order_id]
    stock_becomes(client, cast, sku, on_hand=5, reserved=2)

    shipped = client.post(
        f"/admin/orders/{order_id}/ship",
        json={"carrier": "UPS", "tracking_number": "1Z999AA10123456784"},
        headers=admin,
    )
    token = shipped.json()["position"]
    written(shipped, context="ordering,payments")
    assert order_status(client, shopper.headers, order_id, token)["captured"] == "50.00"
    stock_becomes(client, cast, sku, on_hand=3, reserved=0)

    delivered = client.post(f"/admin/orders/{order_id}/deliver", headers=admin)
    written(delivered, context="ordering")
    seen = order_status(client, shopper.headers, order_id, delivered.json()["position"])
    assert seen["status"] == "delivered"
    # A delivered order proves the purchase: the shopper's review is marked verified.
    reviewed = client.post(
        f"/products/{product_id}/reviews",
        json={"rating": 4, "title": "Fits", "body": "As described."},
        headers=shopper.headers,
    )
    written(reviewed, 201, context="reviews")
    reviews = client.get(
        f"/products/{product_id}/reviews", headers={CONSISTENCY: reviewed.json()["position"]}
    ).json()
    assert [r["verified_purchase"] for r in reviews["items"]] == [True]
    returned = client.post(
        f"/orders/{order_id}/return", json={"reason": "too small"}, headers=shopper.headers
    )
    written(returned, context="ordering")
    approved = client.post(f"/admin/orders/{order_id}/return/approve", headers=admin)
    written(approved, context="ordering")
    written(client.post(f"/admin/orders/{order_id}/returned", headers=admin), context="ordering")
    stock_becomes(client, cast, sku, on_hand=5, reserved=0)

    refund_key = uuid.uuid4().hex
    partial = {"amount": {"amount": "20.00", "currency": "EUR"}, "reason": "goodwill"}
    first = client.post(
        f"/admin/orders/{order_id}/refunds",
        json=partial,
        headers={**admin, "Idempotency-Key": refund_key},
    )
    written(first, 201, context="ordering,payments")
    replay = client.post(
        f"/admin/orders/{order_id}/refunds",
        json=partial,
        headers={**admin, "Idempotency-Key": refund_key},
    )
    assert replay.json() == first.json()
    too_much = client.post(
        f"/admin/orders/{order_id}/refunds",
        json={"amount": {"amount": "30.01", "currency": "EUR"}, "reason": "oops"},
        headers={**admin, "Idempotency-Key": uuid.uuid4().hex},
    )
    refused(too_much, 409, "refund-exceeds-captured")
    rest = client.post(
        f"/admin/orders/{order_id}/refunds",
        json={"reason": "returned"},
        headers={**admin, "Idempotency-Key": uuid.uuid4().hex},
    )
    final = order_status(client, shopper.headers, order_id, rest.json()["position"])
    assert final["status"] == "refunded" and final["refunded"] == "50.00"
    assert [step["status"] for step in final["timeline"]] == [
        "placed",
        "confirmed",
        "shipped",
        "delivered",
        "return_requested",
        "return_approved",
        "returned",
        "returned",  # the partial refund, noted on the timeline
        "refunded",
    ]

    def payment_kinds() -> list[str] | None:
        items = client.get("/payments", headers=shopper.headers).json()["items"]
        kinds = [entry["kind"] for entry in items[0]["history"]] if items else []
        return kinds if kinds.count("refunded") == 2 else None

    kinds = eventually(payment_kinds, "both refunds in the payment history")
    assert kinds == ["requested", "authorized", "captured", "refunded", "refunded"]
    admin_view = client.get(
        "/admin/payments", params={"customer_id": shopper.id}, headers=admin
    ).json()
    assert admin_view["items"][0]["refunded"] == "50.00"
    assert all(entry["reference"] for entry in admin_view["items"][0]["history"][1:])


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("pm_card_chargeDeclined", "payment declined: Your card was declined."),
        (
            "pm_card_chargeDeclinedInsufficientFunds",
            "payment declined: Your card has insufficient funds.",
        ),
    ],
)
def test_a_declined_card_rejects_the_order_and_gives_the_stock_back(
    server: Server, client: httpx.Client, cast: Cast, token: str, reason: str
) -> None:
    product_id, sku = listed_product(client, cast, "10.00", stock=3)
    shopper = verified_account(server, client, "declined")
    order_id, position = place_order(client, shopper.headers, product_id, 3, token)
    order = decided_order(client, shopper.headers, order_id, position)
    assert order["status"] == "rejected" and order["rejection_reason"] == reason
    stock_becomes(client, cast, sku, on_hand=3, reserved=0)
    assert gateway_calls(server, "capture", order_id) == 0


def test_short_stock_rejects_the_order_without_charging(
    server: Server, client: httpx.Client, cast: Cast
) -> None:
    product_id, sku = listed_product(client, cast, "10.00", stock=1)
    shopper = verified_account(server, client, "short")
    order_id, position = place_order(client, shopper.headers, product_id, 2)
    order = decided_order(client, shopper.headers, order_id, position)
    assert order["status"] == "rejected"
    assert order["rejection_reason"].startswith("not enough stock")
    assert gateway_calls(server, "authorize", order_id) == 0
    assert stock_level(client, cast, sku)["available"] == 1


def test_a_shopper_cancels_before_shipment_and_the_authorization_is_voided(
    server: Server, client: httpx.Client, cast: Cast
) -> None:
    product_id, sku = listed_product(client, cast, "12.00", stock=2)
    shopper = verified_account(server, client, "cancels")
    order_id, token = place_order(client, shopper.headers, product_id)
    assert decided_order(client, shopper.headers, order_id, token)["status"] == "confirmed"
    cancelled = client.post(f"/orders/{order_id}/cancel", json={}, headers=shopper.headers)
    written(cancelled, context="ordering")
    stock_becomes(client, cast, sku, on_hand=2, reserved=0)
    assert gateway_calls(server, "void", order_id) == 1
    delivered = client.post(
        f"/admin/orders/{order_id}/ship",
        json={"carrier": "UPS", "tracking_number": "1"},
        headers=cast.admin,
    )
    refused(delivered, 409, "order-transition-not-allowed")


def test_a_changed_price_is_shown_before_paying(
    server: Server, client: httpx.Client, cast: Cast
) -> None:
    product_id, _ = listed_product(client, cast, "30.00", stock=5)
    shopper = verified_account(server, client, "pricey")
    client.post(
        "/cart/lines", json={"product_id": product_id, "quantity": 1}, headers=shopper.headers
    )
    written(
        client.put(
            f"/products/{product_id}/price",
            json={"amount": "35.00", "currency": "EUR"},
            headers=cast.seller.headers,
        )
    )
    key = uuid.uuid4().hex
    changed = refused(checkout(client, shopper.headers, key=key), 409, "prices-changed")
    assert changed["changes"][0]["previous"] == {"amount": "30.00", "currency": "EUR"}
    assert changed["changes"][0]["current"] == {"amount": "35.00", "currency": "EUR"}

    def repriced() -> dict[str, str] | None:
        # The 409 carries no consistency token: the cart view follows within ms.
        total: dict[str, str] = client.get("/cart", headers=shopper.headers).json()["total"]
        return total if total["amount"] == "35.00" else None

    assert eventually(repriced, "the new price in the cart") == {
        "amount": "35.00",
        "currency": "EUR",
    }
    # Seen: the same request now goes through at the new price.
    placed = checkout(client, shopper.headers, key=key)
    order_id = written(placed, 202, context="ordering")
    order = decided_order(client, shopper.headers, order_id, placed.json()["position"])
    assert order["total"] == "35.00"


def test_a_guest_cart_merges_into_the_account_cart_at_login(
    server: Server, client: httpx.Client, cast: Cast
) -> None:
    first, _ = listed_product(client, cast, "5.00", stock=10)
    second, second_sku = listed_product(client, cast, "7.00", stock=10)
    shopper = verified_account(server, client, "guest")
    client.post("/cart/lines", json={"product_id": first, "quantity": 1}, headers=shopper.headers)

    guest = client.post("/cart/lines", json={"product_id": second, "quantity": 2})
    written_id = guest.json()["id"]
    cart_token = guest.json()["cart_token"]
    more = client.post(
        "/cart/lines",
        json={"product_id": first, "quantity": 3},
        headers={"X-Cart-Token": cart_token},
    )
    assert more.json()["id"] == written_id
    seen = client.get(
        "/cart", headers={"X-Cart-Token": cart_token, CONSISTENCY: more.json()["position"]}
    ).json()
    assert seen["total"] == {"amount": "29.00", "currency": "EUR"}
    forged = client.get("/cart", headers={"X-Cart-Token": f"{uuid.uuid4()}.{'0' * 32}"})
    refused(forged, 400, "invalid-token")

    logged_in = client.post(
        "/auth/login",
        json={"email": shopper.email, "password": shopper.password},
        headers={"X-Cart-Token": cart_token},
    )
    assert logged_in.status_code == 200, logged_in.text
    position = logged_in.json()["position"]
    assert "ordering:" in position
    ordering = ",".join(p for p in position.split(",") if p.startswith("ordering:"))
    merged = client.get("/cart", headers={**shopper.headers, CONSISTENCY: ordering}).json()
    assert {(line["sku"], line["quantity"]) for line in merged["lines"]} >= {(second_sku, 2)}
    assert sum(line["quantity"] for line in merged["lines"]) == 6
    # The guest cart is closed: it takes no more lines.
    closed = client.post(
        "/cart/lines",
        json={"product_id": first, "quantity": 1},
        headers={"X-Cart-Token": cart_token},
    )
    refused(closed, 409, "cart-closed")
