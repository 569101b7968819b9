"""Checkout through Stripe: ``shop run`` with ``SHOP_PAYMENT_GATEWAY=stripe`` against
localstripe on loopback. The order is authorized and captured through the real SDK;
``POST /webhooks/stripe`` verifies signatures and records each fact once, however
often it is delivered (and not again when our own API call already recorded it); a
refund made at Stripe reaches the order's history too. A 3-D Secure card makes the
order await authentication until Stripe reports it (webhook) or the shopper confirms."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import stripe

from tests.integration.test_payment_gateways import WEBHOOK_SECRET
from tests.integration.test_payment_gateways import localstripe_url as localstripe_url
from tests.support.api import refused, written
from tests.support.catalog_client import Cast, listed_product, make_cast
from tests.support.ordering_client import awaiting_order, decided_order, place_order, stock_becomes
from tests.support.polling import eventually
from tests.support.server import NO_ADDRESS_LIMITS, Server, running_server
from tests.support.users_client import verified_account

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stripe_server(
    make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory, localstripe_url: str
) -> Iterator[Server]:
    settings = {
        "SHOP_PAYMENT_GATEWAY": "stripe",
        "SHOP_STRIPE_API_KEY": "sk_test_eventshop",
        "SHOP_STRIPE_API_BASE": localstripe_url,
        "SHOP_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        **NO_ADDRESS_LIMITS,
    }
    with running_server(
        make_database(), Path(tmp_path_factory.mktemp("shop-stripe")), settings
    ) as running:
        yield running


def signed(payload: bytes, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    stamp = int(time.time())
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={stamp},v1={mac}", "Content-Type": "application/json"}


def webhook(kind: str, data: dict[str, Any]) -> bytes:
    event = {
        "id": f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "type": kind,
        "data": {"object": data},
    }
    return orjson.dumps(event)


def test_stripe_checkout_capture_and_webhooks_recorded_once(
    stripe_server: Server, localstripe_url: str
) -> None:
    server = stripe_server
    cast: Cast = make_cast(server)
    with server.client() as client:
        product_id, _ = listed_product(client, cast, "42.00", stock=3)
        shopper = verified_account(server, client, "stripe")
        order_id, position = place_order(client, shopper.headers, product_id)
        order = decided_order(client, shopper.headers, order_id, position)
        assert order["status"] == "confirmed", order
        intent_id = order["payment_reference"]
        assert intent_id.startswith("pi_")
        shipped = client.post(
            f"/admin/orders/{order_id}/ship",
            json={"carrier": "UPS", "tracking_number": "1Z"},
            headers=cast.admin,
        )
        written(shipped, context="ordering,payments")

        sdk = stripe.StripeClient("sk_test_eventshop", base_addresses={"api": localstripe_url})
        intent = sdk.v1.payment_intents.retrieve(intent_id).to_dict()
        assert intent["status"] == "succeeded"  # captured at Stripe
        # The webhook for the capture our API call already recorded: nothing new.
        succeeded = webhook("payment_intent.succeeded", intent)
        answer = client.post("/webhooks/stripe", content=succeeded, headers=signed(succeeded))
        assert answer.status_code == 200, answer.text
        assert answer.json()["recorded"] == 0

        # A refund made at Stripe (its dashboard): the webhook records it, once.
        sdk.v1.refunds.create(params={"payment_intent": intent_id, "amount": 1000})

        def capture_reference() -> str | None:
            body = client.get(f"/orders/{order_id}/payments", headers=shopper.headers).json()
            history = body["items"][0]["history"] if body["items"] else []
            return next((e["reference"] for e in history if e["kind"] == "captured"), None)

        charge_id = eventually(capture_reference, "the capture in the payment history")
        assert charge_id.startswith("ch_")
        charge = sdk.v1.charges.retrieve(charge_id).to_dict()
        refunded = webhook("charge.refunded", charge)
        first = client.post("/webhooks/stripe", content=refunded, headers=signed(refunded))
        again = client.post("/webhooks/stripe", content=refunded, headers=signed(refunded))
        assert (first.json()["recorded"], again.json()["recorded"]) == (1, 0)

        forged = client.post(
            "/webhooks/stripe", content=refunded, headers=signed(refunded, "whsec_wrong")
        )
        refused(forged, 400, "invalid-webhook")

        def history() -> list[str] | None:
            items = client.get(f"/orders/{order_id}/payments", headers=shopper.headers).json()[
                "items"
            ]
            kinds = [entry["kind"] for entry in items[0]["history"]] if items else []
            return kinds if "refunded" in kinds else None

        kinds = eventually(history, "the refund in the payment history")
        assert kinds == ["requested", "authorized", "captured", "refunded"]
        payments = client.get(f"/orders/{order_id}/payments", headers=shopper.headers).json()
        assert payments["items"][0]["gateway"] == "stripe"
        assert payments["items"][0]["refunded"] == "10.00"

        def order_refunded() -> dict[str, Any] | None:
            seen: dict[str, Any] = client.get(f"/orders/{order_id}", headers=shopper.headers).json()
            return seen if seen["refunded"] == "10.00" else None

        seen = eventually(order_refunded, "the refund made at Stripe on the order")
        assert seen["timeline"][-1]["note"] == (
            "partially refunded 10.00 EUR: refunded at the payment provider"
        )


def test_stripe_3ds_checkout_waits_for_the_authentication_webhook(
    stripe_server: Server, localstripe_url: str
) -> None:
    server = stripe_server
    cast: Cast = make_cast(server)
    sdk = stripe.StripeClient("sk_test_eventshop", base_addresses={"api": localstripe_url})
    method = sdk.v1.payment_methods.create(  # as stripe.js does in the browser
        params={
            "type": "card",
            "card": {"number": "4000002500003155", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        }
    )
    with server.client() as client:
        product_id, sku = listed_product(client, cast, "30.00", stock=2)
        shopper = verified_account(server, client, "stripe3ds")
        order_id, position = place_order(client, shopper.headers, product_id, token=method.id)
        waiting = awaiting_order(client, shopper.headers, order_id, position)
        authentication = waiting["authentication"]
        intent_id = authentication["payment_reference"]
        assert authentication["client_secret"].startswith(f"{intent_id}_secret_")
        # stripe.js runs the challenge in the shopper's browser with the client secret.
        httpx.post(
            f"{localstripe_url}/v1/payment_intents/{intent_id}/_authenticate",
            data={
                "client_secret": authentication["client_secret"],
                "success": "true",
                "key": "pk_test_eventshop",
            },
        ).raise_for_status()
        intent = sdk.v1.payment_intents.retrieve(intent_id).to_dict()
        capturable = webhook("payment_intent.amount_capturable_updated", intent)
        for expected in (1, 0):  # delivered twice: recorded once
            answer = client.post("/webhooks/stripe", content=capturable, headers=signed(capturable))
            assert answer.json()["recorded"] == expected, answer.text
        order = decided_order(client, shopper.headers, order_id)
        assert (order["status"], order["payment_reference"]) == ("confirmed", intent_id)
        assert order["authentication"] is None  # no client secret kept past its use
        late = client.post(f"/orders/{order_id}/payment/confirm", headers=shopper.headers)
        refused(late, 409, "order-transition-not-allowed")
        shipped = client.post(
            f"/admin/orders/{order_id}/ship",
            json={"carrier": "UPS", "tracking_number": "1Z3DS"},
            headers=cast.admin,
        )
        written(shipped, context="ordering,payments")
        assert sdk.v1.payment_intents.retrieve(intent_id).status == "succeeded"
        stock_becomes(client, cast, sku, on_hand=1, reserved=0)
