"""Gateway outcomes survive the ledger's JSON unchanged (a replayed idempotency key
answers exactly the first outcome), and ``record_outcome`` applies each kind."""

from __future__ import annotations

from uuid import uuid4

import pytest

from commands.ordering.payment_gateway import (
    ActionRequired,
    Authorized,
    Captured,
    Declined,
    GatewayOutcome,
    Refunded,
    Voided,
    gateway_event_id,
    record_outcome,
)
from domain.money import Money
from domain.payments import request_payment
from infra.payments.ledger import decode, encode

AMOUNT = Money.of("12.34", "EUR")
CAPTURE = Captured("pi_1", "ch_1", AMOUNT, gateway_event_id("stripe", "captured", "ch_1"))


@pytest.mark.parametrize(
    "outcome",
    [
        Authorized("pi_1", AMOUNT, "stripe:authorized:pi_1"),
        Authorized("pi_1", AMOUNT, "stripe:authorized:pi_1", CAPTURE),
        Declined(None, "card_declined", "Your card was declined.", "stripe:declined:ch_2"),
        ActionRequired("pi_3", "stripe:action-required:pi_3", client_secret="pi_3_secret"),
        ActionRequired("O-1", "paypal:action-required:O-1", approval_url="https://x/approve"),
        CAPTURE,
        Voided("pi_1", "stripe:voided:pi_1"),
        Refunded("pi_1", "re_1", Money.of("1.00", "EUR"), "stripe:refunded:re_1"),
    ],
)
def test_outcomes_round_trip_through_json(outcome: GatewayOutcome) -> None:
    assert decode(encode(outcome)) == outcome


def test_an_automatic_capture_records_the_authorization_and_the_capture_once() -> None:
    payment = request_payment(uuid4(), AMOUNT, "stripe", "automatic")
    authorized = Authorized("pi_1", AMOUNT, "stripe:authorized:pi_1", CAPTURE)
    record_outcome(payment, authorized)
    record_outcome(payment, authorized)
    record_outcome(payment, CAPTURE)  # the webhook for the same capture
    names = [type(e).__name__ for e in payment.collect_events()]
    assert names == ["Requested", "Authorized", "Captured"]
    assert payment.captured == AMOUNT and payment.capture_reference == "ch_1"


def test_three_d_secure_then_authorized() -> None:
    payment = request_payment(uuid4(), AMOUNT, "sandbox", "manual")
    record_outcome(payment, ActionRequired("pi_1", "sandbox:action-required:pi_1"))
    record_outcome(payment, Authorized("pi_1", AMOUNT, "sandbox:authorized:pi_1"))
    assert (payment.status, payment.reference) == ("authorized", "pi_1")
