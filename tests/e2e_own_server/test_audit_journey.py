"""Who did what, over HTTP against ``shop run`` (Stripe, on localstripe, so that a
webhook takes part): a shopper buys with a 3-D Secure card, Stripe's webhook reports
the authentication, the checkout saga confirms, the admin ships and refunds. The
admin audit view names each actor on each event (with the request id each sent and
the client's address), shows the order as it was at a version and at a time, and the
order's own timeline says who acted; the CLI-made admin's account names the command
line. Nobody else may read the audit routes, and bad values are refused."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import stripe

from tests.e2e_own_server.test_stripe_checkout import signed, webhook
from tests.e2e_own_server.test_stripe_checkout import stripe_server as stripe_server
from tests.integration.test_payment_gateways import localstripe_url as localstripe_url
from tests.support.api import refused, written
from tests.support.catalog_client import Cast, listed_product, make_cast
from tests.support.ordering_client import ADDRESS, add_to_cart, awaiting_order, decided_order
from tests.support.server import Server
from tests.support.users_client import Account, verified_account

pytestmark = pytest.mark.e2e

LOOPBACK = "127.0.0.1"


def user(account_id: str, request_id: str) -> dict[str, Any]:
    return {"kind": "user", "id": account_id, "request_id": request_id, "client_address": LOOPBACK}


def audit(client: httpx.Client, admin: dict[str, str], path: str, **params: Any) -> dict[str, Any]:
    answer = client.get(f"/admin/audit/{path}", headers=admin, params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def whole_history(
    client: httpx.Client, admin: dict[str, str], path: str, limit: int = 200
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        page = audit(client, admin, path, **params)
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        params["cursor"] = page["next_cursor"]


def bought_shipped_refunded(
    server: Server, client: httpx.Client, cast: Cast, localstripe_url: str
) -> tuple[Account, str, str]:
    """The journey: (the shopper, the order id, the payment id). The admin ships,
    marks delivered and refunds part of it."""
    sdk = stripe.StripeClient("sk_test_eventshop", base_addresses={"api": localstripe_url})
    method = sdk.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4000002500003155", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        }
    )
    product_id, _ = listed_product(client, cast, "30.00", stock=2)
    shopper = verified_account(server, client, "audited")
    add_to_cart(client, shopper.headers, product_id, 1)
    placed = client.post(
        "/checkout",
        json={"shipping_address": ADDRESS, "payment_method": method.id},
        headers={
            **shopper.headers,
            "Idempotency-Key": uuid.uuid4().hex,
            "X-Request-ID": "req-checkout",
        },
    )
    order_id = written(placed, 202, context="ordering")
    position = str(placed.json()["position"])
    authentication = awaiting_order(client, shopper.headers, order_id, position)["authentication"]
    intent_id = authentication["payment_reference"]
    httpx.post(
        f"{localstripe_url}/v1/payment_intents/{intent_id}/_authenticate",
        data={
            "client_secret": authentication["client_secret"],
            "success": "true",
            "key": "pk_test_eventshop",
        },
    ).raise_for_status()
    capturable = webhook(
        "payment_intent.amount_capturable_updated",
        sdk.v1.payment_intents.retrieve(intent_id).to_dict(),
    )
    delivered = client.post(
        "/webhooks/stripe",
        content=capturable,
        headers={**signed(capturable), "X-Request-ID": "req-webhook"},
    )
    assert delivered.json()["recorded"] == 1, delivered.text
    assert decided_order(client, shopper.headers, order_id)["status"] == "confirmed"
    shipped = client.post(
        f"/admin/orders/{order_id}/ship",
        json={"carrier": "UPS", "tracking_number": "1ZAUDIT"},
        headers={**cast.admin, "X-Request-ID": "req-ship"},
    )
    written(shipped, context="ordering,payments")
    delivered = client.post(
        f"/admin/orders/{order_id}/deliver", headers={**cast.admin, "X-Request-ID": "req-deliver"}
    )
    written(delivered, context="ordering")
    refund = client.post(
        f"/admin/orders/{order_id}/refunds",
        json={"amount": {"amount": "5.00", "currency": "EUR"}, "reason": "goodwill"},
        headers={**cast.admin, "Idempotency-Key": uuid.uuid4().hex, "X-Request-ID": "req-refund"},
    )
    written(refund, 201, context="ordering,payments")
    payments = client.get(f"/orders/{order_id}/payments", headers=shopper.headers).json()
    return shopper, order_id, payments["items"][0]["payment_id"]


def test_the_history_of_an_order_names_each_actor(
    stripe_server: Server, localstripe_url: str
) -> None:
    server = stripe_server
    cast = make_cast(server)
    with server.client() as client:
        admin = cast.admin
        admin_id = client.get("/users/me", headers=admin).json()["user_id"]
        shopper, order_id, payment_id = bought_shipped_refunded(
            server, client, cast, localstripe_url
        )
        shopper_id = shopper.id
        by_admin = {
            "req-ship": user(admin_id, "req-ship"),
            "req-refund": user(admin_id, "req-refund"),
        }

        payment = whole_history(client, admin, f"payment/{payment_id}")
        saga_steps = [
            e for e in payment if e["type"] in ("Payment.Requested", "Payment.ActionRequired")
        ]
        assert [e["type"] for e in saga_steps] == ["Payment.Requested", "Payment.ActionRequired"]
        for entry in saga_steps:
            assert entry["actor"]["kind"] == "system"
            assert entry["actor"]["id"].startswith("checkout_saga")
        (authorized,) = [e for e in payment if e["type"] == "Payment.Authorized"]
        assert authorized["actor"] == {
            "kind": "webhook",
            "id": "stripe",
            "request_id": "req-webhook",
            "client_address": LOOPBACK,
        }
        (captured,) = [e for e in payment if e["type"] == "Payment.Captured"]
        assert captured["actor"] == by_admin["req-ship"]
        (refunded,) = [e for e in payment if e["type"] == "Payment.Refunded"]
        assert refunded["actor"] == by_admin["req-refund"]

        order = whole_history(client, admin, f"order/{order_id}")
        assert order[0]["type"] == "Order.Placed"
        assert order[0]["actor"] == user(shopper_id, "req-checkout")
        kinds = {e["type"]: e["actor"] for e in order}
        for decided in ("Order.AuthenticationRequested", "Order.Confirmed"):
            assert kinds[decided]["kind"] == "system", decided
        assert kinds["Order.Shipped"] == by_admin["req-ship"]
        assert kinds["Order.Refunded"] == by_admin["req-refund"]
        assert [e["version"] for e in order] == list(range(1, len(order) + 1))
        assert whole_history(client, admin, f"order/{order_id}", limit=2) == order

        # The order's own timeline says who acted at each step (a partial refund
        # leaves a delivered order delivered: its step is a second "delivered"); to
        # the shopper, by kind only but for their own acts.
        steps = client.get(f"/orders/{order_id}", headers=admin).json()["timeline"]
        assert [s["status"] for s in steps] == [
            "placed",
            "awaiting_authentication",
            "confirmed",
            "shipped",
            "delivered",
            "delivered",
        ]
        assert steps[0]["actor"] == user(shopper_id, "req-checkout")
        assert [s["actor"]["kind"] for s in steps[1:3]] == ["system", "system"]
        assert steps[1]["actor"]["id"].startswith("checkout_saga")
        assert [s["actor"] for s in steps[3:]] == [
            by_admin["req-ship"],
            user(admin_id, "req-deliver"),
            by_admin["req-refund"],
        ]
        seen = client.get(f"/orders/{order_id}", headers=shopper.headers).json()["timeline"]
        anonymous = {"id": None, "request_id": None, "client_address": None}
        assert [s["actor"] for s in seen] == [
            user(shopper_id, "req-checkout"),
            {"kind": "system", **anonymous},
            {"kind": "system", **anonymous},
            {"kind": "user", **anonymous},
            {"kind": "user", **anonymous},
            {"kind": "user", **anonymous},
        ]

        # As it was: at its first version, at the time of the shipment, and now.
        first = audit(client, admin, f"order/{order_id}/state", version=1)
        assert (first["version"], first["state"]["status"]) == (1, "placed")
        assert first["last_version"] == len(order)
        (shipment,) = [e for e in order if e["type"] == "Order.Shipped"]
        then = audit(client, admin, f"order/{order_id}/state", as_of=shipment["at"])
        assert then["version"] == shipment["version"]
        assert (then["state"]["status"], then["state"]["refunded_amount"]) == ("shipped", "0")
        assert then["state"]["authentication"]["client_secret"] == "[redacted]"
        now = audit(client, admin, f"order/{order_id}/state")
        assert now["version"] == len(order)
        assert (now["state"]["status"], now["state"]["refunded_amount"]) == ("delivered", "5.00")

        # The shopper registered without a token; the CLI-made admin by the command line.
        account = whole_history(client, admin, f"user/{shopper_id}")
        assert account[0]["type"] == "User.Registered"
        assert account[0]["actor"]["kind"] == "user" and account[0]["actor"]["id"] is None
        assert account[0]["data"]["password_hash"] == "[redacted]"
        made = whole_history(client, admin, f"user/{admin_id}")
        assert made[0]["actor"] == {
            "kind": "system",
            "id": "cli:shop users create-admin",
            "request_id": None,
            "client_address": None,
        }


def test_only_admins_read_the_audit_view_and_bad_values_are_refused(
    stripe_server: Server,
) -> None:
    server = stripe_server
    with server.client() as client:
        admin = server.admin_headers(client)
        shopper = verified_account(server, client, "curious")
        own = f"user/{shopper.id}"
        refused(client.get(f"/admin/audit/{own}", headers=shopper.headers), 403, "not-permitted")
        refused(
            client.get(f"/admin/audit/{own}/state", headers=shopper.headers), 403, "not-permitted"
        )
        refused(client.get(f"/admin/audit/{own}"), 401, "unauthenticated")

        def get(path: str, **params: Any) -> httpx.Response:
            return client.get(f"/admin/audit/{path}", headers=admin, params=params)

        refused(get(f"order/{uuid.uuid4()}"), 404, "not-found")
        refused(get(f"order/{shopper.id}"), 404, "not-found")  # a user's id as an order's
        refused(get(f"spaceship/{shopper.id}"), 422, "validation-failed")
        refused(get(f"{own}/state", version=0), 422, "validation-failed")
        refused(get(f"{own}/state", version="two"), 422, "validation-failed")
        refused(get(f"{own}/state", as_of="2026-12-01T10:00:00"), 422, "validation-failed")
        refused(get(f"{own}/state", as_of="yesterday"), 422, "validation-failed")
        refused(
            get(f"{own}/state", version=1, as_of="2026-12-01T10:00:00Z"), 422, "version-or-time"
        )
        refused(get(f"{own}/state", version=999), 404, "not-found")
        refused(get(f"{own}/state", as_of="2000-01-01T00:00:00Z"), 404, "not-found")
        refused(get(own, limit=0), 422, "validation-failed")
        refused(get(own, cursor="not-a-cursor"), 400, "bad-query")
        other = verified_account(server, client, "other")
        page = get(own, limit=1).json()
        assert page["next_cursor"] is not None
        # A cursor of one aggregate's history is refused for another's.
        refused(get(f"user/{other.id}", cursor=page["next_cursor"]), 400, "bad-query")
