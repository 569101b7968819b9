"""The payment gateway port: what the write side asks of Stripe, PayPal or the
sandbox, and the typed outcomes it gets back. Adapters live in ``infra/payments/``;
``tests/integration/test_payment_gateways.py`` holds the contract every one passes.

Calls:

- ``authorize(amount, payment_method_token, idempotency_key, capture)``: reserve the
  amount on the shopper's payment method (a gateway token or payment-method id, never
  a card number). ``capture="automatic"`` also captures it at once. Answers
  ``Authorized``, ``Declined`` (a readable reason and the gateway's code, e.g.
  ``card_declined``, ``insufficient_funds``) or ``ActionRequired`` (3-D Secure: the
  shopper must authenticate; ``client_secret`` / ``approval_url`` is for the
  storefront to do it).
- ``capture(reference, amount, idempotency_key)``: take all or part of what was
  authorized, once; the rest is released.
- ``void(reference, idempotency_key)``: release an authorization (nothing captured).
- ``refund(reference, amount, idempotency_key)``: give back part or all of what was
  captured; refunds in total never exceed it.
- ``retrieve(reference)``: where an authorization stands now: ``ActionRequired``
  while the shopper has not authenticated, then ``Authorized`` or ``Declined`` (the
  authentication failed). Moves no money; the adapter's own records learn the
  outcome (a later capture or void needs it).

Every call takes an idempotency key, passed to the gateway (Stripe's
``Idempotency-Key``, PayPal's ``PayPal-Request-Id``) and enforced by the adapters
themselves as well: the same key with the same request answers the first outcome
without moving money again; with another request it is refused
(``IdempotencyKeyReused``). Limits are enforced before any money moves:
``CaptureExceedsAuthorized``, ``RefundExceedsCaptured``, ``PaymentTransitionNotAllowed``
(capture a voided authorization...), ``UnknownGatewayReference``. A gateway that
cannot be reached raises ``GatewayUnavailable``: retry with the same key. A gateway
that refuses what our records allowed raises ``GatewayRefused``.

Each outcome carries ``event_id``, a stable id of the fact it reports: the API
call's answer and the webhook for the same capture or refund carry the same one, so
``record_outcome`` applies it to the ``Payment`` aggregate once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from domain.errors import UnknownEntity
from domain.money import Money
from domain.payments import Payment
from domain.refusals import Refused

CaptureMode = Literal["manual", "automatic"]


@dataclass(frozen=True)
class Captured:
    reference: str  # the authorization's reference
    capture_id: str  # the gateway's id of the capture (Stripe charge, PayPal capture)
    amount: Money
    event_id: str


@dataclass(frozen=True)
class Authorized:
    reference: str  # Stripe PaymentIntent, PayPal authorization or order, sandbox payment
    amount: Money
    event_id: str
    captured: Captured | None = None  # with capture="automatic"
    authorization_id: str | None = None
    """The gateway's own id of the authorization where it is not the reference: a
    PayPal order its payer approved keeps the order's id as the payment's reference."""


@dataclass(frozen=True)
class Declined:
    reference: str | None  # None when the gateway made no payment object
    code: str  # the gateway's decline code
    reason: str  # for the shopper to read
    event_id: str


@dataclass(frozen=True)
class ActionRequired:
    reference: str
    event_id: str
    client_secret: str | None = None  # Stripe: for stripe.js to run 3-D Secure
    approval_url: str | None = None  # PayPal: where the payer approves


@dataclass(frozen=True)
class Voided:
    reference: str
    event_id: str


@dataclass(frozen=True)
class Refunded:
    reference: str
    refund_id: str
    amount: Money
    event_id: str


AuthorizationOutcome = Authorized | Declined | ActionRequired
GatewayOutcome = Authorized | Declined | ActionRequired | Captured | Voided | Refunded


class GatewayUnavailable(Refused):
    """The gateway could not be reached or failed; retry with the same key."""

    status = 503
    code = "payment-gateway-unavailable"


class GatewayRefused(Refused):
    """The gateway refused a call our records allowed (an authorization that expired
    at the gateway, a state changed outside our system): nothing moved."""

    status = 409
    code = "payment-gateway-refused"


class UnknownGatewayReference(UnknownEntity):
    """The gateway (or our record of it) knows no payment with this reference."""

    code = "payment-not-found"


def gateway_event_id(gateway: str, kind: str, object_id: str) -> str:
    """The stable id of a gateway fact: ``stripe:captured:ch_123``. Built from the
    gateway's own object id so that every report of one fact shares it."""
    return f"{gateway}:{kind}:{object_id}"


class PaymentGateway(Protocol):
    name: str  # "sandbox", "stripe", "paypal": recorded on the Payment

    def authorize(
        self,
        amount: Money,
        payment_method_token: str,
        idempotency_key: str,
        capture: CaptureMode = "manual",
    ) -> AuthorizationOutcome: ...

    def capture(self, reference: str, amount: Money, idempotency_key: str) -> Captured: ...

    def void(self, reference: str, idempotency_key: str) -> Voided: ...

    def refund(self, reference: str, amount: Money, idempotency_key: str) -> Refunded: ...

    def retrieve(self, reference: str) -> AuthorizationOutcome: ...


def record_outcome(payment: Payment, outcome: GatewayOutcome) -> None:
    """Record a gateway outcome (an answer or a webhook's event) on the payment; an
    outcome already recorded records nothing."""
    match outcome:
        case Authorized():
            payment.record_authorized(outcome.event_id, outcome.reference, outcome.amount)
            if outcome.captured is not None:
                record_outcome(payment, outcome.captured)
        case Declined():
            payment.record_authorization_failed(
                outcome.event_id, outcome.reference, outcome.code, outcome.reason
            )
        case ActionRequired():
            payment.record_action_required(outcome.event_id, outcome.reference)
        case Captured():
            payment.record_captured(outcome.event_id, outcome.capture_id, outcome.amount)
        case Voided():
            payment.record_voided(outcome.event_id)
        case Refunded():
            payment.record_refunded(outcome.event_id, outcome.refund_id, outcome.amount)


class Webhooks(Protocol):
    """A provider's webhooks, verified: what they report of its payments."""

    def outcomes(self, payload: bytes, signature: str) -> list[GatewayOutcome]:
        """The gateway outcomes a verified webhook reports; raises when it does not
        verify."""
        ...
