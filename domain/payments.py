"""The Payment aggregate: what a payment gateway did with one order's money.

One ``Payment`` per order, its id derived from the order's (``payment_id``), so a
saga step that finds no payment for an order knows there is none, and two writers of
one payment meet on its version. Its events record the gateway's outcomes, each
with the gateway's reference:

    requested -> action_required (3-D Secure) -> authorized | failed | voided
    requested -> authorized | failed
    authorized -> captured (all or part of what was authorized, once) | voided
    captured -> (refunds, partial or full) ... -> refunded (nothing captured is left)

Money rules, whatever the order of calls: authorized <= requested, captured <=
authorized, refunds in total <= captured. One capture per authorization (the
remainder is released, as Stripe and PayPal's ``final_capture`` do).

Gateway outcomes reach us twice or more (the API call's answer, a webhook, a
redelivered saga step), so every ``record_*`` method takes the outcome's
``gateway_event_id``: a stable id of the fact (adapters derive it from the gateway's
own object ids, so an answer and the webhook for the same capture or refund carry
the same one). A repeated id records nothing. Outcomes that contradict what was
recorded (a refund above what was captured, capturing a voided authorization) are
refused: the adapters refuse them before any money moves, so reaching the aggregate
with one is a bug worth an error.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError
from domain.money import Money
from domain.text import single_line

MAX_REFERENCE = 255
MAX_REASON = 500
CAPTURE_MODES = frozenset({"manual", "automatic"})


class PaymentStatus(StrEnum):
    REQUESTED = "requested"
    ACTION_REQUIRED = "action_required"
    AUTHORIZED = "authorized"
    FAILED = "failed"
    CAPTURED = "captured"
    VOIDED = "voided"
    REFUNDED = "refunded"


# --- errors (shared with orders: the same money rules) ----------------------------------


class InvalidPayment(DomainError, ValueError):
    """A payment field (amount, reference, reason, capture mode) is malformed."""

    code = "invalid-payment"


class PaymentTransitionNotAllowed(DomainError):
    """The payment's status does not allow this (capture a voided authorization,
    void a captured payment...)."""

    code = "payment-transition-not-allowed"


class CaptureExceedsAuthorized(DomainError):
    """More would be captured than was authorized."""

    code = "capture-exceeds-authorized"


class RefundExceedsCaptured(DomainError):
    """Refunds in total would exceed what was captured."""

    code = "refund-exceeds-captured"


def payment_id(order_id: UUID) -> UUID:
    return uuid5(NAMESPACE_URL, f"/eventshop/payments/orders/{order_id}")


def valid_reference(reference: object, what: str = "gateway reference") -> str:
    return single_line(what, reference, MAX_REFERENCE, InvalidPayment)


def positive(amount: Money, currency: str, what: str) -> Money:
    if not isinstance(amount, Money) or amount.currency != currency:
        raise InvalidPayment(f"the {what} must be an amount in {currency}")
    if amount.amount <= 0:
        raise InvalidPayment(f"the {what} must be more than zero")
    return amount


def check_capture(amount: Money, authorized: Money) -> None:
    if amount > authorized:
        raise CaptureExceedsAuthorized(f"cannot capture {amount}: only {authorized} was authorized")


def check_refund(amount: Money, captured: Money, refunded: Money) -> None:
    refundable = captured - refunded
    if amount > refundable:
        raise RefundExceedsCaptured(
            f"cannot refund {amount}: {captured} captured, {refunded} already refunded"
        )


class Payment(Aggregate):
    """The payment of one order. Open it with ``request_payment``."""

    @staticmethod
    def create_id(order_id: UUID) -> UUID:
        return payment_id(order_id)

    class Requested(Aggregate.Created):
        order_id: UUID
        amount: dict[str, str]
        gateway: str
        capture_mode: str

    class ActionRequired(Aggregate.Event):
        gateway_event_id: str
        reference: str

    class Authorized(Aggregate.Event):
        gateway_event_id: str
        reference: str
        amount: dict[str, str]

    class AuthorizationFailed(Aggregate.Event):
        gateway_event_id: str
        reference: str | None
        code: str
        reason: str

    class Captured(Aggregate.Event):
        gateway_event_id: str
        reference: str
        amount: dict[str, str]

    class Voided(Aggregate.Event):
        gateway_event_id: str
        reference: str

    class Refunded(Aggregate.Event):
        gateway_event_id: str
        refund_reference: str
        amount: dict[str, str]

    @event(Requested)
    def __init__(
        self, order_id: UUID, amount: dict[str, str], gateway: str, capture_mode: str
    ) -> None:
        self.order_id = order_id
        self.currency = amount["currency"]
        self.requested_amount = Decimal(amount["amount"])
        self.gateway = gateway
        self.capture_mode = capture_mode
        self.status = PaymentStatus.REQUESTED.value
        self.reference: str | None = None
        self.authorized_amount = Decimal(0)
        self.captured_amount = Decimal(0)
        self.refunded_amount = Decimal(0)
        self.capture_reference: str | None = None
        self.failure_code: str | None = None
        self.failure_reason: str | None = None
        # refund reference -> amount (str), in the order recorded
        self.refunds: dict[str, str] = {}
        self.gateway_event_ids: list[str] = []

    # --- amounts as Money -------------------------------------------------------------

    def _money(self, amount: Decimal) -> Money:
        return Money(amount, self.currency)

    @property
    def amount(self) -> Money:
        return self._money(self.requested_amount)

    @property
    def authorized(self) -> Money:
        return self._money(self.authorized_amount)

    @property
    def captured(self) -> Money:
        return self._money(self.captured_amount)

    @property
    def refunded(self) -> Money:
        return self._money(self.refunded_amount)

    @property
    def refundable(self) -> Money:
        return self.captured - self.refunded

    # --- recording gateway outcomes ---------------------------------------------------

    def record_action_required(self, gateway_event_id: str, reference: str) -> None:
        if self._seen(gateway_event_id):
            return
        self._require(PaymentStatus.REQUESTED, action="ask for customer action")
        self._action_required(
            gateway_event_id=gateway_event_id, reference=valid_reference(reference)
        )

    @event(ActionRequired)
    def _action_required(self, gateway_event_id: str, reference: str) -> None:
        self.status = PaymentStatus.ACTION_REQUIRED.value
        self.reference = reference
        self._saw(gateway_event_id)

    def record_authorized(self, gateway_event_id: str, reference: str, amount: Money) -> None:
        if self._seen(gateway_event_id):
            return
        self._require(PaymentStatus.REQUESTED, PaymentStatus.ACTION_REQUIRED, action="authorize")
        positive(amount, self.currency, "authorized amount")
        if amount > self.amount:
            raise CaptureExceedsAuthorized(f"{amount} authorized but only {self.amount} asked")
        self._authorized(
            gateway_event_id=gateway_event_id,
            reference=self._same_reference(reference),
            amount=amount.to_dict(),
        )

    @event(Authorized)
    def _authorized(self, gateway_event_id: str, reference: str, amount: dict[str, str]) -> None:
        self.status = PaymentStatus.AUTHORIZED.value
        self.reference = reference
        self.authorized_amount = Decimal(amount["amount"])
        self._saw(gateway_event_id)

    def record_authorization_failed(
        self, gateway_event_id: str, reference: str | None, code: str, reason: str
    ) -> None:
        if self._seen(gateway_event_id):
            return
        self._require(
            PaymentStatus.REQUESTED, PaymentStatus.ACTION_REQUIRED, action="fail authorization"
        )
        self._authorization_failed(
            gateway_event_id=gateway_event_id,
            reference=None if reference is None else self._same_reference(reference),
            code=single_line("failure code", code, 100, InvalidPayment),
            reason=single_line("failure reason", reason, MAX_REASON, InvalidPayment),
        )

    @event(AuthorizationFailed)
    def _authorization_failed(
        self, gateway_event_id: str, reference: str | None, code: str, reason: str
    ) -> None:
        self.status = PaymentStatus.FAILED.value
        self.reference = reference or self.reference
        self.failure_code = code
        self.failure_reason = reason
        self._saw(gateway_event_id)

    def record_captured(self, gateway_event_id: str, reference: str, amount: Money) -> None:
        """``reference`` is the gateway's id of the capture (a charge, a PayPal capture)."""
        reference = valid_reference(reference)
        if self._seen(gateway_event_id) or reference == self.capture_reference:
            return  # seen, or the same capture reported under another event id
        self._require(PaymentStatus.AUTHORIZED, action="capture")
        check_capture(positive(amount, self.currency, "captured amount"), self.authorized)
        self._captured(
            gateway_event_id=gateway_event_id, reference=reference, amount=amount.to_dict()
        )

    @event(Captured)
    def _captured(self, gateway_event_id: str, reference: str, amount: dict[str, str]) -> None:
        self.status = PaymentStatus.CAPTURED.value
        self.capture_reference = reference
        self.captured_amount = Decimal(amount["amount"])
        self._saw(gateway_event_id)

    def record_voided(self, gateway_event_id: str) -> None:
        if self._seen(gateway_event_id) or self.status == PaymentStatus.VOIDED:
            return
        self._require(PaymentStatus.AUTHORIZED, PaymentStatus.ACTION_REQUIRED, action="void")
        assert self.reference is not None  # both statuses carry the gateway's reference
        self._voided(gateway_event_id=gateway_event_id, reference=self.reference)

    @event(Voided)
    def _voided(self, gateway_event_id: str, reference: str) -> None:
        self.status = PaymentStatus.VOIDED.value
        self._saw(gateway_event_id)

    def record_refunded(self, gateway_event_id: str, refund_reference: str, amount: Money) -> None:
        if self._seen(gateway_event_id):
            return
        refund_reference = valid_reference(refund_reference, "refund reference")
        if refund_reference in self.refunds:
            return  # the same refund, reported under another event id
        self._require(PaymentStatus.CAPTURED, action="refund")
        check_refund(
            positive(amount, self.currency, "refunded amount"), self.captured, self.refunded
        )
        self._refunded(
            gateway_event_id=gateway_event_id,
            refund_reference=refund_reference,
            amount=amount.to_dict(),
        )

    @event(Refunded)
    def _refunded(
        self, gateway_event_id: str, refund_reference: str, amount: dict[str, str]
    ) -> None:
        self.refunded_amount += Decimal(amount["amount"])
        self.refunds = {**self.refunds, refund_reference: amount["amount"]}
        if self.refunded_amount == self.captured_amount:
            self.status = PaymentStatus.REFUNDED.value
        self._saw(gateway_event_id)

    # --- helpers ----------------------------------------------------------------------

    def _seen(self, gateway_event_id: str) -> bool:
        single_line("gateway event id", gateway_event_id, MAX_REFERENCE, InvalidPayment)
        return gateway_event_id in self.gateway_event_ids

    def _saw(self, gateway_event_id: str) -> None:
        self.gateway_event_ids = [*self.gateway_event_ids, gateway_event_id]

    def _require(self, *allowed: PaymentStatus, action: str) -> None:
        if self.status not in allowed:
            raise PaymentTransitionNotAllowed(f"cannot {action} a payment that is {self.status}")

    def _same_reference(self, reference: str) -> str:
        reference = valid_reference(reference)
        if self.reference is not None and reference != self.reference:
            raise InvalidPayment(
                f"the gateway reference {reference!r} is not this payment's ({self.reference!r})"
            )
        return reference


def request_payment(order_id: UUID, amount: Money, gateway: str, capture_mode: str) -> Payment:
    """A new payment of ``amount`` for ``order_id`` through ``gateway`` (its name:
    ``sandbox``, ``stripe``, ``paypal``), captured ``manual``-ly (at shipment) or
    ``automatic``-ally (at authorization)."""
    if not isinstance(order_id, UUID):
        raise InvalidPayment("a payment names its order by id")
    if not isinstance(amount, Money):
        raise InvalidPayment("a payment's amount is Money")
    positive(amount, amount.currency, "amount")
    if capture_mode not in CAPTURE_MODES:
        raise InvalidPayment(f"the capture mode is one of {sorted(CAPTURE_MODES)}")
    return Payment(
        order_id=order_id,
        amount=amount.to_dict(),
        gateway=single_line("gateway", gateway, 40, InvalidPayment),
        capture_mode=capture_mode,
    )
