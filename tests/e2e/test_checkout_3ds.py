"""3-D Secure over HTTP against ``shop run`` (sandbox payments): the order awaits the
shopper's authentication with its challenge, holding the stock; the shopper answers
the sandbox's challenge and confirms; the order is then confirmed (approved) or
rejected with the stock given back (denied). Confirming another's order, an order
that needs no authentication, or answering an unknown challenge is refused."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.api import refused, written
from tests.support.catalog_client import Cast, listed_product
from tests.support.ordering_client import (
    awaiting_checkout,
    awaiting_order,
    decided_order,
    place_order,
    stock_becomes,
)
from tests.support.polling import eventually
from tests.support.server import Server
from tests.support.users_client import verified_account

pytestmark = pytest.mark.e2e


def challenge_path(order: dict[str, Any], server: Server) -> str:
    url: str = order["authentication"]["approval_url"]
    assert url.startswith(f"{server.base_url}/sandbox/3ds/"), url
    return url.removeprefix(server.base_url)


def test_an_approved_challenge_confirms_the_order(
    server: Server, client: httpx.Client, cast: Cast
) -> None:
    shopper, order_id, sku, order = awaiting_checkout(server, client, cast, "threeds")
    reference = order["authentication"]["payment_reference"]
    assert order["authentication"]["client_secret"] is None  # the sandbox needs no stripe.js
    assert order["timeline"][-1]["status"] == "awaiting_authentication"
    history = client.get("/orders", headers=shopper.headers).json()["items"]
    assert [(o["order_id"], o["status"]) for o in history] == [
        (order_id, "awaiting_authentication")
    ]
    path = challenge_path(order, server)
    assert client.get(path).json() == {"reference": reference, "status": "awaiting_authentication"}

    answered = client.post(path, json={"outcome": "approve"})
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "authorized"
    confirmed = client.post(f"/orders/{order_id}/payment/confirm", headers=shopper.headers)
    written(confirmed, context="payments")
    assert confirmed.json()["position"] is not None

    decided = decided_order(client, shopper.headers, order_id)
    assert (decided["status"], decided["payment_reference"]) == ("confirmed", reference)
    assert decided["authentication"] is None
    assert [step["status"] for step in decided["timeline"]] == [
        "placed",
        "awaiting_authentication",
        "confirmed",
    ]
    stock_becomes(client, cast, sku, on_hand=3, reserved=2)
    history = client.get("/orders", headers=shopper.headers).json()["items"]
    assert [(o["order_id"], o["status"]) for o in history] == [(order_id, "confirmed")]

    def payment_kinds() -> list[str] | None:
        items = client.get("/payments", headers=shopper.headers).json()["items"]
        kinds = [entry["kind"] for entry in items[0]["history"]] if items else []
        return kinds if "authorized" in kinds else None

    kinds = eventually(payment_kinds, "the authorization in the payment history")
    assert kinds == ["requested", "action_required", "authorized"]
    # Confirmed already: there is no authentication left to confirm.
    again = client.post(f"/orders/{order_id}/payment/confirm", headers=shopper.headers)
    refused(again, 409, "order-transition-not-allowed")


def test_a_denied_challenge_rejects_the_order_and_gives_the_stock_back(
    server: Server, client: httpx.Client, cast: Cast
) -> None:
    shopper, order_id, sku, order = awaiting_checkout(server, client, cast, "denied")
    path = challenge_path(order, server)
    assert client.post(path, json={"outcome": "deny"}).json()["status"] == "failed"
    assert client.post(path, json={"outcome": "approve"}).json()["status"] == "failed"
    written(
        client.post(f"/orders/{order_id}/payment/confirm", headers=shopper.headers),
        context="payments",
    )
    decided = decided_order(client, shopper.headers, order_id)
    assert decided["status"] == "rejected"
    assert decided["rejection_reason"] == (
        "payment declined: The card issuer could not authenticate the payment."
    )
    stock_becomes(client, cast, sku, on_hand=3, reserved=0)


def test_confirming_a_payment_is_refused_where_it_makes_no_sense(
    server: Server, client: httpx.Client, cast: Cast
) -> None:
    shopper, order_id, _, order = awaiting_checkout(server, client, cast, "owner")
    stranger = verified_account(server, client, "stranger")
    others = client.post(f"/orders/{order_id}/payment/confirm", headers=stranger.headers)
    refused(others, 404, "not-found")
    anonymous = client.post(f"/orders/{order_id}/payment/confirm")
    assert anonymous.status_code == 401
    # Awaited, but not authenticated yet: nothing to record, the order still waits.
    pending = client.post(f"/orders/{order_id}/payment/confirm", headers=shopper.headers)
    assert pending.status_code == 200 and pending.json()["position"] is None
    assert awaiting_order(client, shopper.headers, order_id)["status"] == "awaiting_authentication"

    product_id, _ = listed_product(client, cast, "5.00", stock=1)
    plain, position = place_order(client, shopper.headers, product_id)
    decided = decided_order(client, shopper.headers, plain, position)
    assert decided["status"] == "confirmed"
    needless = client.post(f"/orders/{plain}/payment/confirm", headers=shopper.headers)
    refused(needless, 409, "order-transition-not-allowed")

    refused(client.get("/sandbox/3ds/sbx_pay_unknown"), 404, "payment-not-found")
    unknown = client.post("/sandbox/3ds/sbx_pay_unknown", json={"outcome": "approve"})
    refused(unknown, 404, "payment-not-found")
    wrong = client.post(challenge_path(order, server), json={"outcome": "maybe"})
    assert wrong.status_code == 422
    extra = client.post(challenge_path(order, server), json={"outcome": "approve", "note": "x"})
    assert extra.status_code == 422
    # Neither answered the challenge.
    standing = client.get(challenge_path(order, server)).json()
    assert standing["status"] == "awaiting_authentication"
    # The shopper gives up: cancelling releases the stock and voids the authorization.
    written(
        client.post(f"/orders/{order_id}/cancel", json={}, headers=shopper.headers), 200, "ordering"
    )
