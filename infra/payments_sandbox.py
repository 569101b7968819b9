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
  ``pm_card_authenticationRequired``) require 3-D Secure: ``ActionRequired``;
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

from commands.payment_gateway import (
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
from infra.payments_ledger import LedgerEntry, PaymentLedger

NAME = "sandbox"

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

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._ledger = PaymentLedger(pool, NAME)

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
                return ActionRequired(
                    reference,
                    self._event("action-required", reference),
                    client_secret=f"{reference}_secret_{uuid4().hex}",
                )
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

    @staticmethod
    def _event(kind: str, object_id: str) -> str:
        return gateway_event_id(NAME, kind, object_id)
