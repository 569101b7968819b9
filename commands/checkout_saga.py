"""The checkout saga: a policy that follows the ordering log and carries each order
from placement to a decision, and each later transition to its consequences.

    Order.Placed    -> reserve stock (every line, or none) -> authorize the payment
                       -> confirm the order, or reject it with a readable reason
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

Partitions: one saga waits on the gateway and on three event stores per order, so
several run side by side, each following the ordering log in its own thread and
taking the orders whose id falls in its partition (``partition`` of
``partitions``). An order's events all go to one partition, in log order.
"""

from __future__ import annotations

import contextlib
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder
from eventsourcing.projection import Projection

from commands.application import retry_on_conflict
from commands.carts import PaymentMethods
from commands.inventory import InventoryCommands
from commands.ordering import OrderingApplication
from commands.payments import PaymentCommands
from commands.ports import Clock
from domain.inventory import InsufficientStock, UnknownReservation
from domain.orders import Order, OrderStatus
from domain.payments import PaymentStatus

SAGA_ID = uuid5(NAMESPACE_URL, "/eventshop/policies/checkout-saga")
"""Who the saga's own inventory adjustments name (``by``)."""
CANCELLATION_REFUND = "cancellation"


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
        self._payments.authorize(order_id, order.total, token)
        payment = self._payments.find(order_id)
        assert payment is not None  # authorize saved it
        match payment.status:
            case PaymentStatus.AUTHORIZED:
                assert payment.reference is not None
                self._decide(order_id, reference=payment.reference)
            case PaymentStatus.FAILED:
                self._decide(order_id, rejection=f"payment declined: {payment.failure_reason}")
            case PaymentStatus.ACTION_REQUIRED:
                self._decide(
                    order_id,
                    rejection="the card requires authentication (3-D Secure), which "
                    "checkout does not support yet: use another card",
                )
            case _:
                self._decide(order_id, rejection=f"the payment is {payment.status}")

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

    @retry_on_conflict
    def _decide(
        self, order_id: UUID, *, reference: str | None = None, rejection: str | None = None
    ) -> None:
        order = self._ordering.get_order(order_id)
        if order.status != OrderStatus.PLACED:
            return  # cancelled meanwhile: the Cancelled event compensates
        if rejection is not None:
            order.reject(rejection, self._clock())
        else:
            assert reference is not None
            order.confirm(reference, self._clock())
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
