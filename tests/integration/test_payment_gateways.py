"""The payment gateway port, one contract for every adapter: the sandbox directly,
Stripe through the real SDK against localstripe (started on loopback here), PayPal
against recorded request/response contracts (respx). Each adapter keeps its ledger in
a fresh Postgres database.

``GatewayContract`` holds what every gateway must do alike (authorize, capture part,
void, refund within the capture and never above it, decline, idempotency keys); the
classes below it add what is each adapter's own (Stripe's webhooks, PayPal's tokens
and request shapes, the sandbox's test tokens and concurrency).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar
from uuid import uuid4

import httpx
import pytest
import stripe
from psycopg_pool import ConnectionPool

from commands.errors import IdempotencyKeyReused
from commands.ordering.payment_gateway import (
    ActionRequired,
    Authorized,
    Captured,
    Declined,
    GatewayRefused,
    GatewayUnavailable,
    PaymentGateway,
    Refunded,
    UnknownGatewayReference,
    record_outcome,
)
from domain.money import Money
from domain.payments import (
    CaptureExceedsAuthorized,
    PaymentTransitionNotAllowed,
    RefundExceedsCaptured,
    request_payment,
)
from infra.payments import ledger as payments_ledger
from infra.payments.ledger import PaymentLedger
from infra.payments.paypal import PayPalGateway
from infra.payments.sandbox import SandboxGateway
from infra.payments.stripe import InvalidWebhook, StripeGateway, StripeWebhooks
from tests.integration.paypal_fake import (
    BASE_URL,
    VAULT_DECLINED,
    VAULT_OK,
    VAULT_PAYER_ACTION,
    PayPalFake,
)
from tests.support.polling import eventually
from tests.support.server import answers, free_port

pytestmark = pytest.mark.integration

AUTHORIZED = Money.of("100.00", "EUR")
CAPTURED = Money.of("60.00", "EUR")
FIRST_REFUND = Money.of("25.00", "EUR")
REST = Money.of("35.00", "EUR")
CENT = Money.of("0.01", "EUR")


def key() -> str:
    return f"test-{uuid4()}"


@pytest.fixture(scope="module")
def pool(make_database: Callable[[], str]) -> Iterator[ConnectionPool[Any]]:
    """One database for the module: every test uses keys and references of its own."""
    with ConnectionPool(make_database(), min_size=1, max_size=6, open=True) as pool:
        with pool.connection() as conn:
            conn.execute(payments_ledger.DDL)
        yield pool


def requests_recorded(pool: ConnectionPool[Any], key: str) -> int:
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM payment_gateway_requests WHERE key = %s", (key,)
        ).fetchone()
    assert row is not None
    return int(row[0])


class GatewayContract:
    """What every payment gateway does alike. Subclasses provide ``gateway`` and the
    tokens that succeed, decline and need the payer's action there."""

    succeeding: ClassVar[str]
    declining: ClassVar[str]
    decline_code: ClassVar[str]
    needing_action: ClassVar[str]

    @pytest.fixture
    def action_token(self) -> str:
        return self.needing_action

    def authorized(self, gateway: PaymentGateway) -> Authorized:
        outcome = gateway.authorize(AUTHORIZED, self.succeeding, key())
        assert isinstance(outcome, Authorized), outcome
        return outcome

    def test_authorize_capture_part_then_refund_up_to_the_capture(
        self, gateway: PaymentGateway
    ) -> None:
        authorized = self.authorized(gateway)
        assert (authorized.amount, authorized.captured) == (AUTHORIZED, None)
        captured = gateway.capture(authorized.reference, CAPTURED, key())
        assert (captured.reference, captured.amount) == (authorized.reference, CAPTURED)
        first = gateway.refund(authorized.reference, FIRST_REFUND, key())
        rest = gateway.refund(authorized.reference, REST, key())
        assert (first.amount, rest.amount) == (FIRST_REFUND, REST)
        assert first.refund_id != rest.refund_id
        with pytest.raises(RefundExceedsCaptured):
            gateway.refund(authorized.reference, CENT, key())

        # Recorded on the Payment aggregate, every outcome twice: once each.
        payment = request_payment(uuid4(), AUTHORIZED, gateway.name, "manual")
        for outcome in (authorized, captured, first, rest) * 2:
            record_outcome(payment, outcome)
        assert [type(e).__name__ for e in payment.collect_events()] == [
            "Requested",
            "Authorized",
            "Captured",
            "Refunded",
            "Refunded",
        ]
        assert (payment.status, payment.captured, payment.refunded) == (
            "refunded",
            CAPTURED,
            CAPTURED,
        )

    def test_a_refund_above_the_capture_is_refused_before_money_moves(
        self, gateway: PaymentGateway
    ) -> None:
        authorized = self.authorized(gateway)
        gateway.capture(authorized.reference, CAPTURED, key())
        with pytest.raises(RefundExceedsCaptured):
            gateway.refund(authorized.reference, CAPTURED + CENT, key())
        gateway.refund(authorized.reference, CAPTURED, key())  # all of it, still there
        with pytest.raises(RefundExceedsCaptured):
            gateway.refund(authorized.reference, CENT, key())

    def test_capture_once_and_never_above_the_authorization(self, gateway: PaymentGateway) -> None:
        authorized = self.authorized(gateway)
        with pytest.raises(CaptureExceedsAuthorized):
            gateway.capture(authorized.reference, AUTHORIZED + CENT, key())
        with pytest.raises(PaymentTransitionNotAllowed):
            gateway.refund(authorized.reference, CENT, key())  # nothing captured yet
        gateway.capture(authorized.reference, CAPTURED, key())
        with pytest.raises(PaymentTransitionNotAllowed):
            gateway.capture(authorized.reference, CENT, key())
        with pytest.raises(PaymentTransitionNotAllowed):
            gateway.void(authorized.reference, key())

    def test_void_releases_the_authorization(self, gateway: PaymentGateway) -> None:
        authorized = self.authorized(gateway)
        voided = gateway.void(authorized.reference, key())
        assert voided.reference == authorized.reference
        assert gateway.void(authorized.reference, key()) == voided  # again: the same fact
        with pytest.raises(PaymentTransitionNotAllowed):
            gateway.capture(authorized.reference, CAPTURED, key())
        payment = request_payment(uuid4(), AUTHORIZED, gateway.name, "manual")
        record_outcome(payment, authorized)
        record_outcome(payment, voided)
        assert payment.status == "voided"

    def test_a_declined_card_is_an_outcome_with_a_readable_reason(
        self, gateway: PaymentGateway
    ) -> None:
        declined = gateway.authorize(AUTHORIZED, self.declining, key())
        assert isinstance(declined, Declined), declined
        assert declined.code == self.decline_code
        assert declined.reason.endswith(".") and len(declined.reason) > 10
        payment = request_payment(uuid4(), AUTHORIZED, gateway.name, "manual")
        record_outcome(payment, declined)
        record_outcome(payment, declined)
        assert (payment.status, payment.failure_code) == ("failed", self.decline_code)

    def test_a_payment_needing_the_payers_action_says_so(
        self, gateway: PaymentGateway, action_token: str
    ) -> None:
        outcome = gateway.authorize(AUTHORIZED, action_token, key())
        assert isinstance(outcome, ActionRequired), outcome
        assert outcome.client_secret or outcome.approval_url
        assert gateway.void(outcome.reference, key()).reference == outcome.reference

    def test_automatic_capture_captures_at_authorization(self, gateway: PaymentGateway) -> None:
        authorized = gateway.authorize(AUTHORIZED, self.succeeding, key(), capture="automatic")
        assert isinstance(authorized, Authorized) and authorized.captured is not None
        assert authorized.captured.amount == AUTHORIZED
        with pytest.raises(PaymentTransitionNotAllowed):
            gateway.capture(authorized.reference, CAPTURED, key())
        gateway.refund(authorized.reference, AUTHORIZED, key())
        with pytest.raises(RefundExceedsCaptured):
            gateway.refund(authorized.reference, CENT, key())

    def test_a_key_answers_its_first_outcome_and_only_for_the_same_request(
        self, gateway: PaymentGateway
    ) -> None:
        authorize_key = key()
        first = gateway.authorize(AUTHORIZED, self.succeeding, authorize_key)
        assert gateway.authorize(AUTHORIZED, self.succeeding, authorize_key) == first
        with pytest.raises(IdempotencyKeyReused):
            gateway.authorize(CAPTURED, self.succeeding, authorize_key)
        assert isinstance(first, Authorized)
        capture_key = key()
        captured = gateway.capture(first.reference, CAPTURED, capture_key)
        assert gateway.capture(first.reference, CAPTURED, capture_key) == captured
        refund_key = key()
        refunded = gateway.refund(first.reference, CAPTURED, refund_key)
        assert gateway.refund(first.reference, CAPTURED, refund_key) == refunded  # not twice
        with pytest.raises(IdempotencyKeyReused):
            gateway.refund(first.reference, FIRST_REFUND, refund_key)

    def test_an_unknown_reference_is_not_found(self, gateway: PaymentGateway) -> None:
        with pytest.raises(UnknownGatewayReference):
            gateway.capture("never-authorized", CAPTURED, key())
        with pytest.raises(UnknownGatewayReference):
            gateway.refund("never-authorized", CAPTURED, key())


# --- the sandbox ------------------------------------------------------------------------


class TestSandboxGateway(GatewayContract):
    succeeding = "pm_card_visa"
    declining = "pm_card_chargeDeclined"
    decline_code = "card_declined"
    needing_action = "pm_card_threeDSecure2Required"

    @pytest.fixture
    def gateway(self, pool: ConnectionPool[Any]) -> SandboxGateway:
        return SandboxGateway(pool)

    @pytest.mark.parametrize(
        ("token", "code"),
        [
            ("tok_chargeDeclined", "card_declined"),
            ("pm_card_visa_chargeDeclined", "card_declined"),
            ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
            ("tok_chargeDeclinedInsufficientFunds", "insufficient_funds"),
            ("pm_card_chargeDeclinedExpiredCard", "expired_card"),
            ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc"),
            ("4242424242424242", "invalid_payment_method"),
            ("pm_card_unknown", "invalid_payment_method"),
        ],
    )
    def test_the_public_test_tokens_decline_as_at_stripe(
        self, gateway: SandboxGateway, token: str, code: str
    ) -> None:
        outcome = gateway.authorize(AUTHORIZED, token, key())
        assert isinstance(outcome, Declined) and outcome.code == code

    @pytest.mark.parametrize("token", ["tok_visa", "pm_card_mastercard", "tok_amex"])
    def test_the_public_test_tokens_succeed_as_at_stripe(
        self, gateway: SandboxGateway, token: str
    ) -> None:
        assert isinstance(gateway.authorize(AUTHORIZED, token, key()), Authorized)

    def test_three_d_secure_tokens_need_the_payers_action(self, gateway: SandboxGateway) -> None:
        for token in ("tok_threeDSecure2Required", "pm_card_authenticationRequired"):
            assert isinstance(gateway.authorize(AUTHORIZED, token, key()), ActionRequired)

    def test_the_3ds_challenge_approved_authorizes_and_capture_follows(
        self, pool: ConnectionPool[Any]
    ) -> None:
        gateway = SandboxGateway(pool, "https://shop.example/")
        action = gateway.authorize(AUTHORIZED, self.needing_action, key())
        assert isinstance(action, ActionRequired)
        assert action.approval_url == f"https://shop.example/sandbox/3ds/{action.reference}"
        assert gateway.retrieve(action.reference) == action  # still with the shopper
        with pytest.raises(PaymentTransitionNotAllowed):
            gateway.capture(action.reference, CAPTURED, key())
        approved = gateway.authenticate(action.reference, approve=True)
        assert approved == Authorized(
            action.reference, AUTHORIZED, f"sandbox:authorized:{action.reference}"
        )
        assert gateway.authenticate(action.reference, approve=False) == approved  # first counts
        assert gateway.retrieve(action.reference) == approved
        gateway.capture(action.reference, CAPTURED, key())

    def test_the_3ds_challenge_denied_declines(self, gateway: SandboxGateway) -> None:
        action = gateway.authorize(AUTHORIZED, self.needing_action, key())
        assert isinstance(action, ActionRequired)
        denied = gateway.authenticate(action.reference, approve=False)
        assert isinstance(denied, Declined)
        assert denied.code == "payment_intent_authentication_failure"
        assert gateway.retrieve(action.reference) == denied
        with pytest.raises(PaymentTransitionNotAllowed):
            gateway.capture(action.reference, CAPTURED, key())
        with pytest.raises(UnknownGatewayReference):
            gateway.retrieve("sbx_pay_unknown")

    def test_concurrent_refunds_of_one_capture_never_exceed_it(
        self, gateway: SandboxGateway
    ) -> None:
        authorized = self.authorized(gateway)
        gateway.capture(authorized.reference, CAPTURED, key())
        results: list[object] = []

        def refund() -> None:
            try:
                results.append(gateway.refund(authorized.reference, CAPTURED, key()))
            except RefundExceedsCaptured as error:
                results.append(error)

        threads = [threading.Thread(target=refund) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(isinstance(r, Refunded) for r in results) == 1
        assert sum(isinstance(r, RefundExceedsCaptured) for r in results) == 4

    def test_concurrent_calls_with_one_key_move_money_once(self, gateway: SandboxGateway) -> None:
        authorized = self.authorized(gateway)
        gateway.capture(authorized.reference, CAPTURED, key())
        shared = key()
        results: list[Refunded] = []
        threads = [
            threading.Thread(
                target=lambda: results.append(gateway.refund(authorized.reference, CENT, shared))
            )
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len({r.refund_id for r in results}) == 1 and len(results) == 4
        gateway.refund(authorized.reference, CAPTURED - CENT, key())  # the rest is all there

    def test_state_survives_a_new_gateway_instance(self, pool: ConnectionPool[Any]) -> None:
        authorized = self.authorized(SandboxGateway(pool))
        restarted = SandboxGateway(pool)  # as after a restart, or in another process
        restarted.capture(authorized.reference, CAPTURED, key())
        with pytest.raises(RefundExceedsCaptured):
            restarted.refund(authorized.reference, AUTHORIZED, key())


# --- Stripe, against localstripe -----------------------------------------------------------

# localstripe's own CLI binds every interface and pickles its whole store to the fixed
# path /tmp/localstripe.pickle after each write (racing with any other run): serve its
# app on loopback instead, with the pickling switched off.
LOCALSTRIPE = """
import sys
from aiohttp import web
import localstripe.resources
import localstripe.server
localstripe.resources.Store.dump_to_disk = lambda self: None
web.run_app(localstripe.server.app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""
WEBHOOK_SECRET = "whsec_test_" + "s" * 32


@pytest.fixture(scope="module")
def localstripe_url() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", LOCALSTRIPE, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def answering() -> bool:
        if process.poll() is not None:
            assert process.stderr is not None
            pytest.fail(f"localstripe failed to start: {process.stderr.read().decode()[-2000:]}")
        return answers(port)

    try:
        eventually(answering, "localstripe to start", timeout=15)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()  # a fake with nothing to keep: no graceful drain of its webhooks
        process.wait(timeout=10)


@pytest.fixture
def stripe_client(localstripe_url: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_eventshop", base_addresses={"api": localstripe_url}, max_network_retries=0
    )


class TestStripeGateway(GatewayContract):
    succeeding = "pm_card_visa"
    # localstripe declines this one at charge time, as Stripe does.
    declining = "pm_card_chargeCustomerFail"
    decline_code = "card_declined"

    @pytest.fixture
    def gateway(
        self, pool: ConnectionPool[Any], stripe_client: stripe.StripeClient
    ) -> StripeGateway:
        return StripeGateway(stripe_client, PaymentLedger(pool, "stripe"))

    @pytest.fixture
    def action_token(self, stripe_client: stripe.StripeClient) -> str:
        """localstripe has no 3-D Secure test method id: make one from Stripe's 3-D
        Secure test card, as stripe.js does in the shopper's browser."""
        method = stripe_client.v1.payment_methods.create(
            params={
                "type": "card",
                "card": {
                    "number": "4000002500003155",
                    "exp_month": 12,
                    "exp_year": 2030,
                    "cvc": "123",
                },
            }
        )
        return method.id

    def test_money_moves_at_stripe_as_the_outcomes_say(
        self, gateway: StripeGateway, stripe_client: stripe.StripeClient
    ) -> None:
        authorized = self.authorized(gateway)
        intent = stripe_client.v1.payment_intents.retrieve(authorized.reference)
        assert (intent.status, intent.amount, intent.currency) == ("requires_capture", 10000, "eur")
        gateway.capture(authorized.reference, CAPTURED, key())
        assert stripe_client.v1.payment_intents.retrieve(authorized.reference).status == "succeeded"
        refund = gateway.refund(authorized.reference, FIRST_REFUND, key())
        assert stripe_client.v1.refunds.retrieve(refund.refund_id).amount == 2500
        with pytest.raises(RefundExceedsCaptured):
            gateway.refund(authorized.reference, CAPTURED, key())
        refunds = stripe_client.v1.refunds.list(params={"payment_intent": authorized.reference})
        # localstripe books a partial capture's remainder (40.00) as a refund; ours is
        # the 25.00, and the refused 60.00 never reached it.
        assert sorted(r.amount for r in refunds.data) == [2500, 4000]

    @pytest.mark.parametrize("success", [True, False])
    def test_3ds_authenticated_in_the_browser_is_retrieved(
        self,
        gateway: StripeGateway,
        action_token: str,
        localstripe_url: str,
        success: bool,
    ) -> None:
        action = gateway.authorize(AUTHORIZED, action_token, key())
        assert isinstance(action, ActionRequired) and action.client_secret
        assert gateway.retrieve(action.reference) == action
        # What stripe.js does in the shopper's browser (localstripe's stand-in for
        # the issuer's challenge), with the client secret and the publishable key.
        httpx.post(
            f"{localstripe_url}/v1/payment_intents/{action.reference}/_authenticate",
            data={
                "client_secret": action.client_secret,
                "success": str(success).lower(),
                "key": "pk_test_eventshop",
            },
        ).raise_for_status()
        outcome = gateway.retrieve(action.reference)
        if success:
            assert outcome == Authorized(
                action.reference, AUTHORIZED, f"stripe:authorized:{action.reference}"
            )
            captured = gateway.capture(action.reference, CAPTURED, key())  # the ledger knows
            assert captured.amount == CAPTURED
        else:
            assert isinstance(outcome, Declined)
            assert outcome.code == "payment_intent_authentication_failure"
            with pytest.raises(PaymentTransitionNotAllowed):
                gateway.capture(action.reference, CAPTURED, key())
        payment = request_payment(uuid4(), AUTHORIZED, "stripe", "manual")
        for recorded in (action, outcome, outcome):
            record_outcome(payment, recorded)
        assert payment.status == ("authorized" if success else "failed")

    def test_an_unknown_payment_method_is_declined(self, gateway: StripeGateway) -> None:
        outcome = gateway.authorize(AUTHORIZED, "pm_card_doesNotExist", key())
        assert isinstance(outcome, Declined) and outcome.code == "invalid_payment_method"

    def test_stripe_out_of_reach_is_unavailable_and_records_nothing(
        self, pool: ConnectionPool[Any]
    ) -> None:
        unreachable = stripe.StripeClient(
            "sk_test_eventshop",
            base_addresses={"api": f"http://127.0.0.1:{free_port()}"},
            max_network_retries=0,
        )
        gateway = StripeGateway(unreachable, PaymentLedger(pool, "stripe"))
        retried = key()
        with pytest.raises(GatewayUnavailable):
            gateway.authorize(AUTHORIZED, self.succeeding, retried)
        assert requests_recorded(pool, retried) == 0

    def test_a_refusal_by_stripe_is_reported_not_hidden(
        self, gateway: StripeGateway, stripe_client: stripe.StripeClient
    ) -> None:
        authorized = self.authorized(gateway)
        stripe_client.v1.payment_intents.cancel(authorized.reference)  # behind our back
        with pytest.raises(GatewayRefused):
            gateway.void(authorized.reference, key())
        # Nothing was recorded: the ledger still holds the authorization.
        entry = gateway._ledger.entry(authorized.reference)
        assert entry is not None and entry.status == "authorized"


# --- Stripe webhooks ------------------------------------------------------------------------


def signed(payload: dict[str, Any], secret: str = WEBHOOK_SECRET) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    timestamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return body, f"t={timestamp},v1={digest.hexdigest()}"


class WebhookReceiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[bytes, str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((body, self.headers["Stripe-Signature"]))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def webhooks(stripe_client: stripe.StripeClient) -> StripeWebhooks:
    return StripeWebhooks(stripe_client, WEBHOOK_SECRET)


def test_webhooks_delivered_by_localstripe_verify_and_match_the_api_answers(
    pool: ConnectionPool[Any],
    localstripe_url: str,
    stripe_client: stripe.StripeClient,
    webhooks: StripeWebhooks,
) -> None:
    receiver = HTTPServer(("127.0.0.1", 0), WebhookReceiver)
    WebhookReceiver.received = []
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        httpx.post(
            f"{localstripe_url}/_config/webhooks/eventshop-{uuid4().hex[:8]}",
            data={
                "url": f"http://127.0.0.1:{receiver.server_port}/webhooks/stripe",
                "secret": WEBHOOK_SECRET,
                "events[]": ["payment_intent.succeeded", "payment_intent.payment_failed"],
            },
            headers={"Authorization": "Bearer sk_test_eventshop"},
        ).raise_for_status()
        gateway = StripeGateway(stripe_client, PaymentLedger(pool, "stripe"))
        authorized = gateway.authorize(AUTHORIZED, "pm_card_visa", key(), capture="automatic")
        declined = gateway.authorize(AUTHORIZED, "pm_card_chargeCustomerFail", key())
        assert isinstance(authorized, Authorized) and isinstance(declined, Declined)
        assert authorized.captured is not None
        ours = {authorized.captured.event_id, declined.event_id}

        def delivered() -> list[Any]:
            # localstripe also delivers what earlier tests did: keep this test's own.
            outcomes = [o for b, sig in WebhookReceiver.received for o in webhooks.outcomes(b, sig)]
            return [o for o in outcomes if o.event_id in ours]

        eventually(lambda: len(delivered()) >= 2, "both webhooks delivered", timeout=15)
    finally:
        receiver.shutdown()
    outcomes = delivered()
    captured = [o for o in outcomes if isinstance(o, Captured)]
    failed = [o for o in outcomes if isinstance(o, Declined)]
    assert captured == [authorized.captured]  # the same fact, the same event id
    assert [(d.code, d.event_id) for d in failed] == [(declined.code, declined.event_id)]
    assert failed[0].reference is not None  # the webhook names the PaymentIntent

    payment = request_payment(uuid4(), AUTHORIZED, "stripe", "automatic")
    record_outcome(payment, authorized)
    for outcome in captured:
        record_outcome(payment, outcome)  # the webhook after the answer: nothing new
    assert [type(e).__name__ for e in payment.collect_events()] == [
        "Requested",
        "Authorized",
        "Captured",
    ]


def test_charge_refunded_webhooks_become_refunds_once_each(
    pool: ConnectionPool[Any], stripe_client: stripe.StripeClient, webhooks: StripeWebhooks
) -> None:
    gateway = StripeGateway(stripe_client, PaymentLedger(pool, "stripe"))
    authorized = gateway.authorize(AUTHORIZED, "pm_card_visa", key(), capture="automatic")
    assert isinstance(authorized, Authorized) and authorized.captured is not None
    first = gateway.refund(authorized.reference, FIRST_REFUND, key())
    second = gateway.refund(authorized.reference, REST, key())
    charge = stripe_client.v1.charges.retrieve(authorized.captured.capture_id).to_dict()
    event = {
        "id": "evt_1",
        "object": "event",
        "type": "charge.refunded",
        "data": {"object": charge},
    }
    # As localstripe sends it (the refunds listed), and as Stripe's newer API versions
    # do (no refunds in the charge: the verifier lists them).
    without_refunds = {**event, "data": {"object": {**charge, "refunds": None}}}
    for payload in (event, without_refunds):
        refunds = webhooks.outcomes(*signed(payload))
        assert sorted(refunds, key=lambda r: r.event_id) == sorted(
            [first, second], key=lambda r: r.event_id
        )
    payment = request_payment(uuid4(), AUTHORIZED, "stripe", "automatic")
    for outcome in (authorized, first, *webhooks.outcomes(*signed(event)), second):
        record_outcome(payment, outcome)
    assert payment.refunded == FIRST_REFUND + REST
    assert [type(e).__name__ for e in payment.collect_events()].count("Refunded") == 2


def test_authentication_webhooks_match_what_retrieve_answers(
    pool: ConnectionPool[Any], webhooks: StripeWebhooks
) -> None:
    """Recorded payloads, as Stripe sends them after 3-D Secure: authorized (the
    amount now capturable), or failed (back to requires_payment_method)."""
    intent = {
        "id": "pi_3ds_1",
        "object": "payment_intent",
        "amount": 10000,
        "amount_capturable": 10000,
        "currency": "eur",
        "capture_method": "manual",
        "client_secret": "pi_3ds_1_secret_x",
        "latest_charge": "ch_3ds_1",
        "status": "requires_capture",
    }
    capturable = {
        "id": "evt_3ds_1",
        "object": "event",
        "type": "payment_intent.amount_capturable_updated",
        "data": {"object": intent},
    }
    assert webhooks.outcomes(*signed(capturable)) == [
        Authorized("pi_3ds_1", AUTHORIZED, "stripe:authorized:pi_3ds_1")
    ]
    failure = {
        "code": "payment_intent_authentication_failure",
        "message": "The provided PaymentMethod has failed authentication.",
    }
    failed = {
        **capturable,
        "type": "payment_intent.payment_failed",
        "data": {
            "object": {
                **intent,
                "status": "requires_payment_method",
                "amount_capturable": 0,
                "last_payment_error": failure,
            }
        },
    }
    [declined] = webhooks.outcomes(*signed(failed))
    assert isinstance(declined, Declined)
    assert (declined.code, declined.event_id) == (
        "payment_intent_authentication_failure",
        "stripe:declined:pi_3ds_1",
    )


def test_webhooks_with_a_bad_signature_or_body_are_refused(webhooks: StripeWebhooks) -> None:
    body, signature = signed({"id": "evt_1", "type": "charge.refunded", "data": {"object": {}}})
    with pytest.raises(InvalidWebhook):
        webhooks.outcomes(body, signature.replace("v1=", "v1=0"))
    with pytest.raises(InvalidWebhook):
        webhooks.outcomes(*signed({"id": "evt_1"}, secret="whsec_someone_else"))
    with pytest.raises(InvalidWebhook):
        webhooks.outcomes(b"not json", signed({})[1])
    stale = int(time.time()) - 3600
    digest = hmac.new(WEBHOOK_SECRET.encode(), f"{stale}.".encode() + body, hashlib.sha256)
    with pytest.raises(InvalidWebhook):
        webhooks.outcomes(body, f"t={stale},v1={digest.hexdigest()}")
    ignored = {"id": "evt_2", "object": "event", "type": "customer.created", "data": {"object": {}}}
    assert webhooks.outcomes(*signed(ignored)) == []


# --- PayPal, against recorded contracts --------------------------------------------------


@pytest.fixture
def paypal_fake() -> Iterator[PayPalFake]:
    fake = PayPalFake()
    with fake.router:
        yield fake


class TestPayPalGateway(GatewayContract):
    succeeding = VAULT_OK
    declining = VAULT_DECLINED
    decline_code = "instrument_declined"
    needing_action = VAULT_PAYER_ACTION

    @pytest.fixture
    def gateway(
        self, pool: ConnectionPool[Any], paypal_fake: PayPalFake
    ) -> Iterator[PayPalGateway]:
        with httpx.Client(base_url=BASE_URL, timeout=5) as http:
            yield PayPalGateway(http, "client-id", "client-secret", PaymentLedger(pool, "paypal"))

    def test_every_call_carries_our_key_and_a_bearer_token_fetched_once(
        self, gateway: PayPalGateway, paypal_fake: PayPalFake
    ) -> None:
        authorize_key, capture_key, refund_key = key(), key(), key()
        authorized = gateway.authorize(AUTHORIZED, VAULT_OK, authorize_key)
        assert isinstance(authorized, Authorized)
        gateway.capture(authorized.reference, CAPTURED, capture_key)
        gateway.refund(authorized.reference, FIRST_REFUND, refund_key)
        assert paypal_fake.tokens_issued == 1
        ids = {
            name: [r.headers["PayPal-Request-Id"] for r in paypal_fake.sent(name)]
            for name in (
                "create_order_authorize",
                "authorize_order",
                "capture_authorization",
                "refund_capture",
            )
        }
        assert ids == {
            "create_order_authorize": [authorize_key],
            "authorize_order": [f"{authorize_key}:authorize"],
            "capture_authorization": [capture_key],
            "refund_capture": [refund_key],
        }
        created = json.loads(paypal_fake.sent("create_order_authorize")[0].content)
        assert created["purchase_units"][0]["amount"] == {"currency_code": "EUR", "value": "100.00"}
        captured = json.loads(paypal_fake.sent("capture_authorization")[0].content)
        assert captured == {
            "amount": {"currency_code": "EUR", "value": "60.00"},
            "final_capture": True,
        }
        # The refund went to the capture PayPal named, not to the authorization.
        capture_id = paypal_fake.sent("refund_capture")[0].url.path.split("/")[-2]
        assert capture_id != authorized.reference and capture_id.startswith("FAKE")

    def test_the_payers_approval_is_read_back_from_the_order(
        self, gateway: PayPalGateway, paypal_fake: PayPalFake
    ) -> None:
        action = gateway.authorize(AUTHORIZED, VAULT_PAYER_ACTION, key())
        assert isinstance(action, ActionRequired)
        assert gateway.retrieve(action.reference) == action
        assert paypal_fake.sent("get_order")[0].url.path.endswith(action.reference)
        paypal_fake.orders[action.reference]["status"] = "VOIDED"
        voided = gateway.retrieve(action.reference)
        assert isinstance(voided, Declined) and voided.reference == action.reference
        with pytest.raises(PaymentTransitionNotAllowed):  # our ledger followed
            gateway.void(action.reference, key())

    @staticmethod
    def approved(
        gateway: PayPalGateway, paypal_fake: PayPalFake
    ) -> tuple[ActionRequired, Authorized]:
        """A payment that awaited its payer, approved at PayPal and read back."""
        action = gateway.authorize(AUTHORIZED, VAULT_PAYER_ACTION, key())
        assert isinstance(action, ActionRequired)
        paypal_fake.orders[action.reference]["status"] = "APPROVED"
        authorized = gateway.retrieve(action.reference)
        assert isinstance(authorized, Authorized), authorized
        return action, authorized

    def test_an_order_the_payer_approved_is_authorized_and_captured_under_its_id(
        self, gateway: PayPalGateway, paypal_fake: PayPalFake
    ) -> None:
        action, authorized = self.approved(gateway, paypal_fake)
        assert authorized.reference == action.reference  # the payment keeps its reference
        assert authorized.amount == AUTHORIZED and authorized.captured is None
        authorization_id = authorized.authorization_id
        assert authorization_id is not None and authorization_id != action.reference
        (step,) = paypal_fake.sent("authorize_order")
        assert step.headers["PayPal-Request-Id"] == f"{action.reference}:authorize"
        # Asked again (a crash before the answer was recorded, a webhook and the
        # sweep both asking): the completed order answers, nothing is authorized twice.
        assert gateway.retrieve(action.reference) == authorized
        assert len(paypal_fake.sent("authorize_order")) == 1
        gateway.capture(action.reference, CAPTURED, key())
        (capture,) = paypal_fake.sent("capture_authorization")
        assert capture.url.path == f"/v2/payments/authorizations/{authorization_id}/capture"
        gateway.refund(action.reference, CAPTURED, key())
        with pytest.raises(RefundExceedsCaptured):
            gateway.refund(action.reference, CENT, key())

    def test_an_approved_order_is_voided_through_its_authorization(
        self, gateway: PayPalGateway, paypal_fake: PayPalFake
    ) -> None:
        action, authorized = self.approved(gateway, paypal_fake)
        gateway.void(action.reference, key())
        (void,) = paypal_fake.sent("void_authorization")
        assert void.url.path == f"/v2/payments/authorizations/{authorized.authorization_id}/void"

    def test_a_payment_still_awaiting_the_payer_is_voided_without_a_call(
        self, gateway: PayPalGateway, paypal_fake: PayPalFake
    ) -> None:
        action = gateway.authorize(AUTHORIZED, VAULT_PAYER_ACTION, key())
        assert isinstance(action, ActionRequired)
        sent = len(paypal_fake.requests)
        voided = gateway.void(action.reference, key())
        assert voided.reference == action.reference
        assert len(paypal_fake.requests) == sent, "an unapproved order holds no money"
        with pytest.raises(PaymentTransitionNotAllowed):  # our ledger followed
            gateway.capture(action.reference, CAPTURED, key())

    def test_an_expired_token_is_fetched_again(
        self, pool: ConnectionPool[Any], paypal_fake: PayPalFake
    ) -> None:
        now = [0.0]
        with httpx.Client(base_url=BASE_URL, timeout=5) as http:
            gateway = PayPalGateway(
                http,
                "client-id",
                "client-secret",
                PaymentLedger(pool, "paypal"),
                clock=lambda: now[0],
            )
            gateway.authorize(AUTHORIZED, VAULT_OK, key())
            now[0] = 32400 - 61.0
            gateway.authorize(AUTHORIZED, VAULT_OK, key())
            assert paypal_fake.tokens_issued == 1
            now[0] = 32400 - 59.0
            gateway.authorize(AUTHORIZED, VAULT_OK, key())
            assert paypal_fake.tokens_issued == 2

    def test_a_token_refused_early_is_fetched_again_once(
        self, gateway: PayPalGateway, paypal_fake: PayPalFake
    ) -> None:
        create_order = paypal_fake._create_order
        calls: list[httpx.Request] = []

        def revoked_once(request: httpx.Request) -> httpx.Response:
            calls.append(request)
            if len(calls) == 1:
                return httpx.Response(401, json={"error": "invalid_token"})
            return create_order(request)

        paypal_fake.router.post("/v2/checkout/orders").mock(side_effect=revoked_once)
        assert isinstance(gateway.authorize(AUTHORIZED, VAULT_OK, key()), Authorized)
        assert (len(calls), paypal_fake.tokens_issued) == (2, 2)
        paypal_fake.router.post("/v2/checkout/orders").mock(
            return_value=httpx.Response(401, json={"error": "invalid_token"})
        )
        with pytest.raises(GatewayUnavailable):
            gateway.authorize(AUTHORIZED, VAULT_OK, key())

    def test_paypal_down_is_unavailable_and_records_nothing(
        self, gateway: PayPalGateway, paypal_fake: PayPalFake, pool: ConnectionPool[Any]
    ) -> None:
        paypal_fake.router.post("/v2/checkout/orders").mock(
            return_value=httpx.Response(503, json={"name": "SERVICE_UNAVAILABLE"})
        )
        retried = key()
        with pytest.raises(GatewayUnavailable):
            gateway.authorize(AUTHORIZED, VAULT_OK, retried)
        paypal_fake.router.post("/v2/checkout/orders").mock(side_effect=httpx.ConnectError("down"))
        with pytest.raises(GatewayUnavailable):
            gateway.authorize(AUTHORIZED, VAULT_OK, retried)
        assert requests_recorded(pool, retried) == 0
