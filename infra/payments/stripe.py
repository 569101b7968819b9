"""The Stripe adapter: PaymentIntents through the official SDK (``StripeClient``),
and the webhook verifier.

- ``authorize`` creates and confirms a PaymentIntent on the given PaymentMethod id
  (``pm_...``), ``capture_method`` manual (captured at shipment) or automatic.
  ``requires_capture`` -> ``Authorized``; ``succeeded`` -> ``Authorized`` with its
  ``Captured``; ``requires_action`` -> ``ActionRequired`` (the client secret lets
  stripe.js run 3-D Secure); a card error or an unknown payment method -> ``Declined``.
- ``capture`` (``amount_to_capture``), ``void`` (cancel the PaymentIntent) and
  ``refund`` (a Refund on the PaymentIntent).
- ``retrieve`` reads the PaymentIntent after the shopper's 3-D Secure: still
  ``requires_action``, ``requires_capture`` (authorized), or back to
  ``requires_payment_method`` (authentication failed: declined) or ``canceled``.
- Every call passes our idempotency key to Stripe, and runs inside ``PaymentLedger``,
  which enforces the key and the money limits itself (localstripe, our test server,
  enforces neither; real Stripe would, but two of our workers must not even try).

``StripeWebhooks`` checks a webhook's signature (``stripe.Webhook.construct_event``)
and turns ``payment_intent.amount_capturable_updated`` (authorized after 3-D
Secure), ``payment_intent.succeeded``, ``payment_intent.payment_failed`` and
``charge.refunded`` into gateway outcomes whose ``event_id`` equals that of the API
answer for the same fact, so recording both records it once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import stripe

from commands.ordering.payment_gateway import (
    ActionRequired,
    AuthorizationOutcome,
    Authorized,
    Captured,
    CaptureMode,
    Declined,
    GatewayOutcome,
    GatewayRefused,
    GatewayUnavailable,
    Refunded,
    Voided,
    gateway_event_id,
)
from domain.money import Money
from domain.refusals import Refused
from infra.payments.ledger import LedgerEntry, PaymentLedger

NAME = "stripe"
WEBHOOK_TOLERANCE_SECONDS = 300

T = TypeVar("T")


class InvalidWebhook(Refused):
    """A webhook whose signature does not verify (or is too old), or not JSON."""

    status = 400
    code = "invalid-webhook"


def _event(kind: str, object_id: str) -> str:
    return gateway_event_id(NAME, kind, object_id)


def _id(value: Any) -> str:
    """An id from a field that is either the id or the expanded object."""
    return str(value if isinstance(value, str) else value["id"])


def _refusal(error: stripe.StripeError) -> Refused:
    """Stripe's refusal of a call our records allowed, or its absence, in our terms."""
    if isinstance(error, stripe.InvalidRequestError):
        return GatewayRefused(f"Stripe refused: {error.user_message or error}")
    return GatewayUnavailable(f"Stripe did not answer: {type(error).__name__}")


def _call(action: Callable[[], T]) -> T:
    try:
        return action()
    except stripe.StripeError as error:
        raise _refusal(error) from error


class StripeGateway:
    name = NAME

    def __init__(
        self, client: stripe.StripeClient, ledger: PaymentLedger, return_url: str | None = None
    ) -> None:
        """``return_url``: where Stripe sends the shopper back after a redirect-based
        authentication. Stripe requires one when the account accepts redirecting
        payment methods (its default); localstripe refuses the parameter."""
        self._client = client
        self._ledger = ledger
        self._return_url = return_url

    def authorize(
        self,
        amount: Money,
        payment_method_token: str,
        idempotency_key: str,
        capture: CaptureMode = "manual",
    ) -> AuthorizationOutcome:
        def create() -> AuthorizationOutcome:
            params: stripe.params.PaymentIntentCreateParams = {
                "amount": amount.minor_units,
                "currency": amount.currency.lower(),
                "payment_method": payment_method_token,
                "capture_method": capture,
                "confirm": True,
            }
            if self._return_url is not None:
                params["return_url"] = self._return_url
            try:
                intent = self._client.v1.payment_intents.create(
                    params=params, options={"idempotency_key": idempotency_key}
                ).to_dict()
            except stripe.CardError as error:
                return _declined_by(error, idempotency_key)
            except stripe.StripeError as error:
                unknown = error.http_status == 404 or error.code == "resource_missing"
                if not (isinstance(error, stripe.InvalidRequestError) and unknown):
                    raise _refusal(error) from error
                return Declined(
                    None,
                    "invalid_payment_method",
                    "This payment method is not recognised.",
                    _event("declined", idempotency_key),
                )
            return _authorization(intent, amount)

        request = {"amount": amount.to_dict(), "token": payment_method_token, "capture": capture}
        return self._ledger.authorize(idempotency_key, request, amount, create)

    def capture(self, reference: str, amount: Money, idempotency_key: str) -> Captured:
        def capture(entry: LedgerEntry) -> Captured:
            intent = _call(
                lambda: self._client.v1.payment_intents.capture(
                    reference,
                    params={"amount_to_capture": amount.minor_units},
                    options={"idempotency_key": idempotency_key},
                ).to_dict()
            )
            charge = _id(intent["latest_charge"])
            return Captured(reference, charge, amount, _event("captured", charge))

        return self._ledger.capture(reference, amount, idempotency_key, capture)

    def void(self, reference: str, idempotency_key: str) -> Voided:
        def cancel(entry: LedgerEntry) -> Voided:
            _call(
                lambda: self._client.v1.payment_intents.cancel(
                    reference, options={"idempotency_key": idempotency_key}
                )
            )
            return Voided(reference, _event("voided", reference))

        return self._ledger.void(reference, idempotency_key, cancel)

    def refund(self, reference: str, amount: Money, idempotency_key: str) -> Refunded:
        def refund(entry: LedgerEntry) -> Refunded:
            created = _call(
                lambda: self._client.v1.refunds.create(
                    params={"payment_intent": reference, "amount": amount.minor_units},
                    options={"idempotency_key": idempotency_key},
                )
            )
            return Refunded(reference, created.id, amount, _event("refunded", created.id))

        return self._ledger.refund(reference, amount, idempotency_key, refund)

    def retrieve(self, reference: str) -> AuthorizationOutcome:
        def fetch(entry: LedgerEntry) -> AuthorizationOutcome:
            intent = _call(lambda: self._client.v1.payment_intents.retrieve(reference).to_dict())
            return _authorization(intent, _requested(intent))

        return self._ledger.settle(reference, fetch)


def _requested(intent: Mapping[str, Any]) -> Money:
    return Money.from_minor_units(int(intent["amount"]), intent["currency"])


def _authorization(intent: Mapping[str, Any], amount: Money) -> AuthorizationOutcome:
    reference = str(intent["id"])
    status = intent["status"]
    if status == "requires_capture":
        return Authorized(reference, amount, _event("authorized", reference))
    if status == "succeeded":
        charge = _id(intent["latest_charge"])
        captured = Captured(reference, charge, amount, _event("captured", charge))
        return Authorized(reference, amount, _event("authorized", reference), captured)
    if status == "requires_action":
        return ActionRequired(
            reference,
            _event("action-required", reference),
            client_secret=intent.get("client_secret"),
        )
    if status == "requires_payment_method":  # failed without raising, or authentication
        return _declined(intent)
    if status == "canceled":  # behind our back (or by us, after a lost answer)
        return Declined(
            reference, "canceled", "The payment was cancelled.", _event("declined", reference)
        )
    raise GatewayUnavailable(f"Stripe answered a PaymentIntent that is {status!r}")


def _declined_by(error: stripe.CardError, idempotency_key: str) -> Declined:
    body = error.json_body.get("error", {}) if isinstance(error.json_body, dict) else {}
    intent = body.get("payment_intent")
    reference = _id(intent) if intent else None
    fact = body.get("charge") or reference or idempotency_key
    return Declined(
        reference,
        str(body.get("decline_code") or error.code or "card_declined"),
        error.user_message or "Your card was declined.",
        _event("declined", str(fact)),
    )


def _declined(intent: Mapping[str, Any]) -> Declined:
    failure = intent.get("last_payment_error") or {}
    reference = str(intent["id"])
    return Declined(
        reference,
        str(failure.get("decline_code") or failure.get("code") or "card_declined"),
        str(failure.get("message") or "Your card was declined."),
        _event("declined", str(failure.get("charge") or reference)),
    )


class StripeWebhooks:
    """Verifies Stripe webhooks and turns them into gateway outcomes."""

    def __init__(self, client: stripe.StripeClient, secret: str) -> None:
        self._client = client
        self._secret = secret

    def outcomes(self, payload: bytes, signature: str) -> list[GatewayOutcome]:
        """The outcomes a webhook reports (none for types we do not follow)."""
        try:
            event = stripe.Webhook.construct_event(
                payload, signature, self._secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
            ).to_dict()
        except stripe.SignatureVerificationError as error:
            raise InvalidWebhook("the webhook signature does not verify") from error
        except ValueError as error:
            raise InvalidWebhook("the webhook body is not a Stripe event") from error
        data = event["data"]["object"]
        match event["type"]:
            case "payment_intent.amount_capturable_updated":
                return [_authorization(data, _requested(data))]
            case "payment_intent.succeeded":
                charge = _id(data["latest_charge"])
                received = data.get("amount_received") or data["amount"]
                amount = Money.from_minor_units(int(received), data["currency"])
                return [Captured(data["id"], charge, amount, _event("captured", charge))]
            case "payment_intent.payment_failed":
                return [_declined(data)]
            case "charge.refunded":
                return self._refunds(data)
        return []

    def _refunds(self, charge: Mapping[str, Any]) -> list[GatewayOutcome]:
        listed = (charge.get("refunds") or {}).get("data")
        if listed is None:  # API versions since 2022-11-15 leave refunds out
            listed = _call(
                lambda: self._client.v1.refunds.list(params={"charge": charge["id"], "limit": 100})
            ).to_dict()["data"]
        intent = _id(charge["payment_intent"])
        return [
            Refunded(
                intent,
                refund["id"],
                Money.from_minor_units(int(refund["amount"]), refund["currency"]),
                _event("refunded", refund["id"]),
            )
            for refund in listed
            if refund.get("status", "succeeded") == "succeeded"
        ]
