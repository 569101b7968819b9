"""The sandbox payment gateway: the embedded default, no network, no account.

It answers like Stripe does for its public test payment methods, so a storefront
tested against the sandbox behaves the same against Stripe's test mode:

- ``pm_card_visa``, ``tok_visa``, ``pm_card_mastercard``, ``pm_card_amex`` (and
  their ``tok_`` forms, debit and other brands below) succeed;
- ``pm_card_chargeDeclined`` / ``tok_chargeDeclined`` (also
  ``pm_card_visa_chargeDeclined``, ``pm_card_chargeCustomerFail``) are declined
  (``card_declined``); ``..InsufficientFunds`` (``insufficient_funds``),
  ``..ExpiredCard``, ``..IncorrectCvc``, ``..ProcessingError`` and ``..Fraudulent``
  likewise, with Stripe's messages;
- ``pm_card_threeDSecure2Required`` / ``tok_threeDSecure2Required`` (and
  ``pm_card_authenticationRequired``) require 3-D Secure: ``ActionRequired`` with
  the URL of the sandbox's challenge (``CHALLENGE_PATH``/<reference>), which the
  shopper approves or denies (``authenticate``; served by
  ``commands/http/sandbox.py``), after which ``retrieve`` answers ``Authorized``
  or ``Declined`` (``payment_intent_authentication_failure``, as Stripe says);
- anything else is declined as ``invalid_payment_method``.

State lives in Postgres (``PaymentLedger``), not in memory: a payment authorized
at checkout is captured at shipment, days and restarts later, perhaps by another
process (the scaled mode runs several), and its capture and refund limits must
hold across all of them. The same ledger gives it idempotency keys.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from psycopg_pool import ConnectionPool

from commands.ordering.payment_gateway import (
    ActionRequired,
    AuthorizationOutcome,
    Authorized,
    Captured,
    CaptureMode,
    Declined,
    Refunded,
    Voided,
    gateway_event_id,
)
from domain.money import Money
from infra.payments.ledger import (
    ACTION_REQUIRED,
    FAILED,
    VOIDED,
    LedgerEntry,
    PaymentLedger,
)

NAME = "sandbox"
CHALLENGE_PATH = "/sandbox/3ds"
AUTHENTICATION_FAILED = (
    "payment_intent_authentication_failure",
    "The card issuer could not authenticate the payment.",
)

_SUCCEEDS = ("visa", "visa_debit", "mastercard", "mastercard_debit", "amex", "discover")
_DECLINES = {
    "chargeDeclined": ("card_declined", "Your card was declined."),
    "visa_chargeDeclined": ("card_declined", "Your card was declined."),
    "chargeCustomerFail": ("card_declined", "Your card was declined."),
    "chargeDeclinedFraudulent": ("card_declined", "Your card was declined."),
    "chargeDeclinedInsufficientFunds": ("insufficient_funds", "Your card has insufficient funds."),
    "chargeDeclinedExpiredCard": ("expired_card", "Your card has expired."),
    "chargeDeclinedIncorrectCvc": ("incorrect_cvc", "Your card's security code is incorrect."),
    "chargeDeclinedProcessingError": (
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
}
_REQUIRE_ACTION = ("threeDSecure2Required", "threeDSecureRequired", "authenticationRequired")
UNKNOWN_METHOD = (
    "invalid_payment_method",
    "This payment method is not recognised: use a test token such as pm_card_visa.",
)


def _names(*suffixes: str) -> frozenset[str]:
    return frozenset(f"{prefix}{s}" for s in suffixes for prefix in ("pm_card_", "tok_"))


SUCCEEDING_TOKENS = _names(*_SUCCEEDS)
REQUIRES_ACTION_TOKENS = _names(*_REQUIRE_ACTION)
DECLINES = {f"{p}{s}": outcome for s, outcome in _DECLINES.items() for p in ("pm_card_", "tok_")}


class SandboxGateway:
    name = NAME

    def __init__(self, pool: ConnectionPool[Any], public_url: str = "") -> None:
        """``public_url``: where this API is reached, for the challenge's URL."""
        self._ledger = PaymentLedger(pool, NAME)
        self._challenges = f"{public_url.rstrip('/')}{CHALLENGE_PATH}"

    def authorize(
        self,
        amount: Money,
        payment_method_token: str,
        idempotency_key: str,
        capture: CaptureMode = "manual",
    ) -> AuthorizationOutcome:
        def decide() -> AuthorizationOutcome:
            reference = f"sbx_pay_{uuid4().hex}"
            if payment_method_token in SUCCEEDING_TOKENS:
                captured = None
                if capture == "automatic":
                    capture_id = f"sbx_ch_{uuid4().hex}"
                    captured = Captured(
                        reference, capture_id, amount, self._event("captured", capture_id)
                    )
                return Authorized(reference, amount, self._event("authorized", reference), captured)
            if payment_method_token in REQUIRES_ACTION_TOKENS:
                return self._action_required(reference)
            code, reason = DECLINES.get(payment_method_token, UNKNOWN_METHOD)
            return Declined(reference, code, reason, self._event("declined", reference))

        request = {"amount": amount.to_dict(), "token": payment_method_token, "capture": capture}
        return self._ledger.authorize(idempotency_key, request, amount, decide)

    def capture(self, reference: str, amount: Money, idempotency_key: str) -> Captured:
        def capture(entry: LedgerEntry) -> Captured:
            capture_id = f"sbx_ch_{uuid4().hex}"
            return Captured(reference, capture_id, amount, self._event("captured", capture_id))

        return self._ledger.capture(reference, amount, idempotency_key, capture)

    def void(self, reference: str, idempotency_key: str) -> Voided:
        return self._ledger.void(
            reference,
            idempotency_key,
            lambda _: Voided(reference, self._event("voided", reference)),
        )

    def refund(self, reference: str, amount: Money, idempotency_key: str) -> Refunded:
        def refund(entry: LedgerEntry) -> Refunded:
            refund_id = f"sbx_re_{uuid4().hex}"
            return Refunded(reference, refund_id, amount, self._event("refunded", refund_id))

        return self._ledger.refund(reference, amount, idempotency_key, refund)

    def retrieve(self, reference: str) -> AuthorizationOutcome:
        return self._ledger.settle(reference, self._standing)

    def authenticate(self, reference: str, approve: bool) -> AuthorizationOutcome:
        """The shopper's answer to the challenge: the first one counts; later ones
        answer how the payment stands."""

        def answer(entry: LedgerEntry) -> AuthorizationOutcome:
            if entry.status != ACTION_REQUIRED:
                return self._standing(entry)
            if approve:
                return Authorized(reference, entry.authorized, self._event("authorized", reference))
            return self._failed(reference)

        return self._ledger.settle(reference, answer)

    def _standing(self, entry: LedgerEntry) -> AuthorizationOutcome:
        reference = entry.reference
        if entry.status == ACTION_REQUIRED:
            return self._action_required(reference)
        if entry.status in (FAILED, VOIDED):  # voided: the shopper never authenticated
            return self._failed(reference)
        return Authorized(reference, entry.authorized, self._event("authorized", reference))

    def _action_required(self, reference: str) -> ActionRequired:
        return ActionRequired(
            reference,
            self._event("action-required", reference),
            approval_url=f"{self._challenges}/{reference}",
        )

    def _failed(self, reference: str) -> Declined:
        code, reason = AUTHENTICATION_FAILED
        return Declined(reference, code, reason, self._event("declined", reference))

    @staticmethod
    def _event(kind: str, object_id: str) -> str:
        return gateway_event_id(NAME, kind, object_id)
