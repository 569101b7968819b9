"""Free items over HTTP (ADR 14): a product priced "0" (or "-0", the same zero) is
checked out, confirmed without any payment, shipped and delivered with nothing
captured, and a refund of it is refused; a normal order placed right after is
confirmed as usual (the saga did not stall on the free one)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.api import CONSISTENCY, refused, written
from tests.support.catalog_client import Cast, listed_product
from tests.support.ordering_client import decided_order, order_status, place_order, stock_becomes
from tests.support.server import Server
from tests.support.side_door import gateway_calls
from tests.support.users_client import verified_account

pytestmark = pytest.mark.e2e


def order_of(
    server: Server, client: httpx.Client, product_id: str, token: str
) -> tuple[dict[str, str], str, str]:
    """A new shopper's checkout of one unit: (their headers, order id, position)."""
    shopper = verified_account(server, client, "free")
    return shopper.headers, *place_order(client, shopper.headers, product_id, token=token)


@pytest.mark.parametrize("zero", ["0", "-0"])
def test_a_free_order_is_confirmed_shipped_and_delivered_without_a_payment(
    server: Server, client: httpx.Client, cast: Cast, zero: str
) -> None:
    product_id, sku = listed_product(client, cast, "9.00", stock=2)
    repriced = client.put(
        f"/products/{product_id}/price",
        json={"amount": zero, "currency": "EUR"},
        headers=cast.seller.headers,
    )
    written(repriced)
    product = client.get(
        f"/products/{product_id}", headers={CONSISTENCY: repriced.json()["position"]}
    )
    assert product.json()["price"] == {"amount": "0.00", "currency": "EUR"}, product.text

    # A declining card: the token of a free order is never used.
    shopper, order_id, position = order_of(server, client, product_id, "pm_card_chargeDeclined")
    order = decided_order(client, shopper, order_id, position)
    assert (order["status"], order["total"]) == ("confirmed", "0.00"), order
    assert order["payment_reference"] is None
    assert order["timeline"][-1]["note"] == "nothing to pay, stock reserved"
    assert gateway_calls(server, "authorize", order_id) == 0
    stock_becomes(client, cast, sku, on_hand=2, reserved=1)

    admin = cast.admin
    shipped = client.post(
        f"/admin/orders/{order_id}/ship",
        json={"carrier": "UPS", "tracking_number": "1ZFREE"},
        headers=admin,
    )
    written(shipped, context="ordering")
    assert order_status(client, shopper, order_id, shipped.json()["position"])["captured"] == "0"
    assert gateway_calls(server, "capture", order_id) == 0
    stock_becomes(client, cast, sku, on_hand=1, reserved=0)
    delivered = client.post(f"/admin/orders/{order_id}/deliver", headers=admin)
    written(delivered, context="ordering")
    seen = order_status(client, shopper, order_id, delivered.json()["position"])
    assert [step["status"] for step in seen["timeline"]] == [
        "placed",
        "confirmed",
        "shipped",
        "delivered",
    ]
    # Nothing was paid, so nothing goes back: refunds are refused, nothing written.
    for amount, problem in ((None, "invalid-payment"), ("0.01", "refund-exceeds-captured")):
        body = {"reason": "goodwill"} | (
            {} if amount is None else {"amount": {"amount": amount, "currency": "EUR"}}
        )
        attempt = client.post(
            f"/admin/orders/{order_id}/refunds",
            json=body,
            headers={**admin, "Idempotency-Key": uuid.uuid4().hex},
        )
        refused(attempt, 422 if amount is None else 409, problem)
    payments = client.get(f"/orders/{order_id}/payments", headers=shopper)
    assert payments.status_code == 200 and payments.json() == {"items": []}, payments.text

    # The next order, paid, placed right after: decided as usual.
    paid_id, paid_sku = listed_product(client, cast, "15.00", stock=1)
    shopper, order_id, position = order_of(server, client, paid_id, "pm_card_visa")
    order = decided_order(client, shopper, order_id, position)
    assert (order["status"], order["total"]) == ("confirmed", "15.00"), order
    assert gateway_calls(server, "authorize", order_id) == 1
    stock_becomes(client, cast, paid_sku, on_hand=1, reserved=1)
