"""The checkout saga: a policy that follows the ordering and payments logs and carries
each order from placement to a decision, and each later transition to its
consequences.

    Order.Placed    -> reserve stock (every line, or none) -> authorize the payment
                       -> confirm the order, or reject it with a readable reason, or
                       (3-D Secure) let it await the shopper's authentication
    Payment.Authorized, Payment.AuthorizationFailed
                    -> confirm or reject the order still undecided (how an awaited
                       authentication ends; a repeat of the decision above otherwise)
    Payment.Refunded -> record on the order a refund it does not know: one made at the
                       payment provider (our own refunds are recorded by their command)
    Order.Rejected, Order.Cancelled
                    -> release the reservations (unless shipped), void the
                       authorization, or refund what a shipped order had captured
    Order.Confirmed -> forget the payment method token (also after compensating)
    Order.Shipped   -> commit the reservations (the units leave stock)
    Order.Returned  -> put the returned units back on hand

Compensation follows the events that need it rather than running inside the step
that failed: whatever rejects or cancels an order (this saga, a shopper, an admin),
the same handler undoes what was done, and it runs after the decision committed.

Each step is idempotent, keyed by the order the event names: the reservation id is
the order id (reserving or releasing it again changes nothing), the gateway calls
carry keys derived from the order (the ledger answers a repeat with the first
outcome), and confirming or rejecting a decided order records nothing. So a
redelivered event does nothing twice, and a saga interrupted anywhere (the process
killed, a step raising) is finished by the redelivery that the tracked position
guarantees: the position advances only after the event's steps are done (an error
leaves it, and the runner restarts the policy from there, with backoff).

Authentications the shopper abandons are ended by ``AbandonedAuthentications``
(``commands/authentication_timeouts.py``), which rejects the order: the rejection's
compensation voids the authorization and releases the stock.

Partitions: one saga waits on the gateway and on three event stores per order, so
several run side by side, each following the ordering log in its own thread and
taking the orders whose id falls in its partition (``partition`` of
``partitions``). An order's events all go to one partition, in log order; a
payment's go to the partition of the payment's id (every step is idempotent and
retried on conflicts, so where it runs does not matter).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder
from eventsourcing.projection import Projection

from commands.application import retry_on_conflict
from commands.carts import PaymentMethods
from commands.inventory import InventoryCommands
from commands.ordering import OrderingApplication
from commands.payment_gateway import ActionRequired
from commands.payments import PaymentCommands
from commands.ports import Clock
from domain.errors import DomainError
from domain.inventory import InsufficientStock, UnknownReservation
from domain.money import Money
from domain.orders import UNDECIDED, Order, OrderStatus
from domain.payments import Payment, PaymentStatus

log = logging.getLogger(__name__)

SAGA_ID = uuid5(NAMESPACE_URL, "/eventshop/policies/checkout-saga")
"""Who the saga's own inventory adjustments name (``by``)."""
CANCELLATION_REFUND = "cancellation"
SYNCHRONOUS_ANSWER = 2
"""The version of a payment's authorization or refusal saved with its request."""


class CheckoutSaga(Projection[TrackingRecorder]):
    name = "checkout_saga"

    def __init__(
        self,
        view: TrackingRecorder,
        *,
        ordering: OrderingApplication,
        inventory: InventoryCommands,
        payments: PaymentCommands,
        payment_methods: PaymentMethods,
        clock: Clock,
        partition: int = 0,
        partitions: int = 1,
    ) -> None:
        super().__init__(view)
        if not 0 <= partition < partitions:
            raise ValueError(f"partition {partition} is not one of {partitions}")
        self._partition = partition
        self._partitions = partitions
        self._ordering = ordering
        self._inventory = inventory
        self._payments = payments
        self._payment_methods = payment_methods
        self._clock = clock

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        if domain_event.originator_id.int % self._partitions == self._partition:
            self._handle(domain_event)
        # Another delivery of this event may have tracked it first: all it did was
        # idempotent, so nothing more to do.
        with contextlib.suppress(IntegrityError):
            self.view.insert_tracking(tracking)

    def _handle(self, domain_event: Any) -> None:
        match domain_event:
            case Order.Placed():
                self.place(domain_event.originator_id)
            case Order.Rejected() | Order.Cancelled():
                self.compensate(domain_event.originator_id)
            case Order.Confirmed():
                self._payment_methods.forget(domain_event.originator_id)
            case Order.Shipped():
                self.commit_stock(domain_event.originator_id)
            case Order.Returned():
                self.restock(domain_event.originator_id)
            # The answer right after the request (version 2) is the gateway's
            # synchronous one, which ``place`` decided from (and decides from again if
            # ``Order.Placed`` is delivered again): only a later one, after the
            # shopper's authentication, is news for the order.
            case Payment.Authorized() | Payment.AuthorizationFailed() if (
                domain_event.originator_version > SYNCHRONOUS_ANSWER
            ):
                self.payment_decided(domain_event.originator_id)
            case Payment.Refunded():
                self.record_provider_refund(
                    domain_event.originator_id,
                    domain_event.refund_reference,
                    Money.from_dict(domain_event.amount),
                )

    # --- the steps --------------------------------------------------------------------

    def place(self, order_id: UUID) -> None:
        order = self._ordering.get_order(order_id)
        if order.status != OrderStatus.PLACED:
            return  # decided before (or cancelled: its own event compensates)
        try:
            self._inventory.reserve_lines(str(order_id), order.skus)
        except InsufficientStock as error:
            self._decide(order_id, rejection=f"not enough stock: {error}")
            return
        token = self._payment_methods.token_for(order_id)
        if token is None:
            self._decide(order_id, rejection="the payment method is missing: check out again")
            return
        payment, outcome = self._payments.authorize(order_id, order.total, token)
        match payment.status:
            case PaymentStatus.ACTION_REQUIRED if isinstance(outcome, ActionRequired):
                self._await_authentication(order_id, outcome)
            case _:
                self._decide_by(payment)

    def payment_decided(self, payment_id: UUID) -> None:
        """The payment was authorized or failed: decide its order, if still undecided."""
        payment = self._payments.get(payment_id)
        if payment is not None:
            self._decide_by(payment)

    def record_provider_refund(self, payment_id: UUID, refund_id: str, amount: Money) -> None:
        payment = self._payments.get(payment_id)
        if payment is not None:
            self._record_provider_refund(payment.order_id, refund_id, amount)

    def compensate(self, order_id: UUID) -> None:
        order = self._ordering.get_order(order_id)
        if order.carrier is None:  # never shipped: the units are still reserved
            for sku in order.skus:
                with contextlib.suppress(UnknownReservation):  # never reserved
                    self._inventory.release(sku, str(order_id))
        self._payments.void(order_id)
        if order.captured > order.refunded:
            self._refund_cancelled(order_id)
        self._payment_methods.forget(order_id)

    def commit_stock(self, order_id: UUID) -> None:
        for sku in self._ordering.get_order(order_id).skus:
            self._inventory.commit(sku, str(order_id))

    def restock(self, order_id: UUID) -> None:
        for sku, quantity in self._ordering.get_order(order_id).skus.items():
            self._inventory.restock(sku, str(order_id), quantity, SAGA_ID)

    # --- decisions, retried on conflicts with the shopper or an admin ------------------

    def _decide_by(self, payment: Payment) -> None:
        match payment.status:
            case PaymentStatus.AUTHORIZED:
                assert payment.reference is not None
                self._decide(payment.order_id, reference=payment.reference)
            case PaymentStatus.FAILED:
                reason = f"payment declined: {payment.failure_reason}"
                self._decide(payment.order_id, rejection=reason)
            case PaymentStatus.ACTION_REQUIRED | PaymentStatus.REQUESTED:
                pass  # still with the shopper or the gateway
            case _:  # voided, or already captured: its order was decided
                self._decide(payment.order_id, rejection=f"the payment is {payment.status}")

    def _decide(
        self, order_id: UUID, *, reference: str | None = None, rejection: str | None = None
    ) -> None:
        decide(self._ordering, order_id, self._clock(), reference=reference, rejection=rejection)

    @retry_on_conflict
    def _await_authentication(self, order_id: UUID, action: ActionRequired) -> None:
        order = self._ordering.get_order(order_id)
        if order.status != OrderStatus.PLACED:
            return  # decided meanwhile (the authentication ended first, or cancelled)
        order.await_authentication(
            action.reference,
            self._clock(),
            client_secret=action.client_secret,
            approval_url=action.approval_url,
        )
        self._ordering.save_all(order)

    @retry_on_conflict
    def _record_provider_refund(self, order_id: UUID, refund_id: str, amount: Money) -> None:
        order = self._ordering.get_order(order_id)
        if refund_id in order.refund_ids:
            return  # ours (its command recorded it), or recorded before
        try:
            order.record_provider_refund(refund_id, amount, self._clock())
        except DomainError as error:
            # Never raised for what our payment allowed; if it were, an admin must
            # look: retrying would only hold up every later event.
            log.error("refund %s of order %s not recorded on it: %s", refund_id, order_id, error)
            return
        self._ordering.save_all(order)

    @retry_on_conflict
    def _refund_cancelled(self, order_id: UUID) -> None:
        order = self._ordering.get_order(order_id)
        owed = order.captured - order.refunded
        if owed.amount <= 0:
            return
        refunded = self._payments.refund(order_id, owed, CANCELLATION_REFUND)
        order.record_refund(refunded.refund_id, refunded.amount, "order cancelled", self._clock())
        self._ordering.save_all(order)


@retry_on_conflict
def decide(
    ordering: OrderingApplication,
    order_id: UUID,
    at: datetime,
    *,
    reference: str | None = None,
    rejection: str | None = None,
) -> None:
    """Confirm (``reference``: the authorized payment's) or reject an order the saga
    has not decided; a decided or cancelled order records nothing (the Cancelled
    event compensates)."""
    order = ordering.get_order(order_id)
    if order.status not in UNDECIDED:
        return
    if rejection is not None:
        order.reject(rejection, at)
    else:
        assert reference is not None
        order.confirm(reference, at)
    ordering.save_all(order)
