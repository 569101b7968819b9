"""The payments bounded context: its Application and the commands that move an
order's money through the gateway port.

One ``Payment`` per order (its id follows from the order's). Every call to the
gateway carries an idempotency key derived from the order and the operation
(``order:<id>:authorize``...), so a saga step or an admin request that runs twice
moves money once: the gateway's ledger answers the second call with the first
outcome, and ``record_outcome`` records it once. Each handler loads the payment,
calls the gateway, records and saves; a conflicting save (a webhook recording the
same payment) is retried, and the retried gateway call is answered by the ledger.

An authorization the card issuer wants the shopper to authenticate (3-D Secure)
ends however the news comes first: the shopper's confirmation
(``check_authentication``), a webhook (``record``), or the checkout saga's sweep of
abandoned authentications. Each asks the gateway where it stands (``retrieve``, which
also brings the gateway's ledger up to date) and records that, once.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate

from commands.application import ContextApplication, retry_on_conflict
from commands.ordering.payment_gateway import (
    ActionRequired,
    AuthorizationOutcome,
    Authorized,
    Captured,
    CaptureMode,
    Declined,
    GatewayOutcome,
    PaymentGateway,
    Refunded,
    UnknownGatewayReference,
    record_outcome,
)
from commands.tracing import traced_commands
from domain.money import Money
from domain.payment_references import PaymentReference, payment_reference_id
from domain.payments import Payment, PaymentStatus, payment_id, request_payment
from domain.positions import Position

CAPTURE_MODE: CaptureMode = "manual"
"""Authorize at checkout, capture at shipment: nothing is charged for an order that
is never shipped."""


def payment_key(order_id: UUID, operation: str) -> str:
    return f"order:{order_id}:{operation}"


class PaymentsApplication(ContextApplication):
    name = "payments"
    snapshotting_intervals = {Payment: 50}


@traced_commands
class PaymentCommands:
    def __init__(self, app: PaymentsApplication, gateway: PaymentGateway) -> None:
        self.app = app
        self.gateway = gateway

    def find(self, order_id: UUID) -> Payment | None:
        return self.app.find(Payment, payment_id(order_id))

    def get(self, payment_id: UUID) -> Payment | None:
        """A payment by its own id (as its events name it)."""
        return self.app.find(Payment, payment_id)

    @retry_on_conflict
    def authorize(
        self, order_id: UUID, amount: Money, token: str
    ) -> tuple[Payment, AuthorizationOutcome | None]:
        """Authorize the order's amount on the shopper's payment method, once per
        order: the payment as it stands then, and the gateway's answer. While the
        shopper's authentication is awaited, the gateway's first answer again (its
        ledger replays it: what the storefront needs). No answer when the payment was
        decided before (its outcome is recorded)."""
        payment = self.find(order_id) or request_payment(
            order_id, amount, self.gateway.name, CAPTURE_MODE
        )
        if payment.status not in (PaymentStatus.REQUESTED, PaymentStatus.ACTION_REQUIRED):
            return payment, None
        outcome = self.gateway.authorize(
            amount, token, payment_key(order_id, "authorize"), CAPTURE_MODE
        )
        changed: list[Aggregate] = [payment]
        if payment.status == PaymentStatus.REQUESTED and outcome.reference is not None:
            changed.append(PaymentReference(self.gateway.name, outcome.reference, payment.id))
        record_outcome(payment, outcome)
        self.app.save_all(*changed)
        return payment, outcome

    @retry_on_conflict
    def check_authentication(self, order_id: UUID) -> Position | None:
        """Ask the gateway how the shopper's authentication of this order's payment
        went, and record it: authorized or failed (None: nothing new, still awaited
        or recorded before)."""
        payment = self._payment(order_id)
        if payment.status != PaymentStatus.ACTION_REQUIRED:
            return None
        record_outcome(payment, self.gateway.retrieve(self._reference(payment)))
        return self.app.save_all(payment)

    @retry_on_conflict
    def void(self, order_id: UUID) -> Position | None:
        """Release an authorization that will not be captured (none to void: no-op)."""
        payment = self.find(order_id)
        if payment is None or payment.status not in (
            PaymentStatus.AUTHORIZED,
            PaymentStatus.ACTION_REQUIRED,
        ):
            return None
        reference = self._reference(payment)
        record_outcome(payment, self.gateway.void(reference, payment_key(order_id, "void")))
        return self.app.save_all(payment)

    @retry_on_conflict
    def capture(self, order_id: UUID, amount: Money) -> tuple[Captured, Position | None]:
        """Capture ``amount`` of the authorization (at shipment), once per order: the
        capture and the position recording it."""
        payment = self._payment(order_id)
        outcome = self.gateway.capture(
            self._reference(payment), amount, payment_key(order_id, "capture")
        )
        record_outcome(payment, outcome)
        return outcome, self.app.save_all(payment)

    def refund(self, order_id: UUID, amount: Money, key: str) -> Refunded:
        """``refund_recorded`` for a caller that answers no position (the saga)."""
        return self.refund_recorded(order_id, amount, key)[0]

    @retry_on_conflict
    def refund_recorded(
        self, order_id: UUID, amount: Money, key: str
    ) -> tuple[Refunded, Position | None]:
        """Give back ``amount`` of what was captured; ``key`` names this refund (a
        client's idempotency key, or the saga's): the refund and the position
        recording it."""
        payment = self._payment(order_id)
        outcome = self.gateway.refund(
            self._reference(payment), amount, payment_key(order_id, f"refund:{key}")
        )
        record_outcome(payment, outcome)
        return outcome, self.app.save_all(payment)

    @retry_on_conflict
    def record(self, outcome: GatewayOutcome) -> Position | None:
        """Record what a webhook reported, once however often it is delivered. None
        for a payment we do not know (another system's, on a shared account)."""
        if outcome.reference is None:
            return None
        index = self.app.find(
            PaymentReference, payment_reference_id(self.gateway.name, outcome.reference)
        )
        payment = None if index is None else self.app.find(Payment, index.payment_id)
        if payment is None:
            return None
        if payment.status == PaymentStatus.ACTION_REQUIRED and isinstance(
            outcome, Authorized | Captured | Declined
        ):
            # The end of the shopper's authentication: as the gateway has it now,
            # which also brings its ledger up to date for the capture to come.
            outcome = self.gateway.retrieve(self._reference(payment))
            if isinstance(outcome, ActionRequired):
                return None
        record_outcome(payment, outcome)
        return self.app.save_all(payment)

    def _payment(self, order_id: UUID) -> Payment:
        payment = self.find(order_id)
        if payment is None:
            raise UnknownGatewayReference("this order has no payment")
        return payment

    @staticmethod
    def _reference(payment: Payment) -> str:
        if payment.reference is None:
            raise UnknownGatewayReference("this order's payment was never authorized")
        return payment.reference
