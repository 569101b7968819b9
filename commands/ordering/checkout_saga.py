"""The checkout saga: a policy that follows the ordering and payments logs and carries
each order from placement to a decision, and each later transition to its
consequences.

    Order.Placed    -> reserve stock (every line, or none) -> authorize the payment
                       -> confirm the order, or reject it with a readable reason, or
                       (3-D Secure) let it await the shopper's authentication; an
                       order with nothing to pay is confirmed without a payment
    Payment.Authorized, Payment.AuthorizationFailed
                    -> confirm or reject the order still undecided (how an awaited
                       authentication ends; a repeat of the decision above otherwise)
    Payment.Refunded -> record on the order a refund it does not know: one made at the
                       payment provider (our own refunds are recorded by their command)
    Order.Rejected, Order.Cancelled
                    -> release the reservations (unless shipped), void the
                       authorization, or refund what a shipped order had captured
    Order.Confirmed, Order.ConfirmedWithoutPayment
                    -> forget the payment method token (also after compensating)
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

Liveness: no order stays undecided because of what it holds. A refusal that comes
from one order's content (a ``DomainError``: an amount or a reference the payment
refuses, a reservation that conflicts; or the gateway refusing the request,
``GatewayRefused``) rejects that order with the refusal as its reason, and the other
orders of the pull are decided as usual; a compensation step refused that way is
logged for an admin and the saga moves on. Anything else (a bug, a dependency
down) still raises: the runner retries it, then finds and dead-letters the event
that keeps failing.

Authentications the shopper abandons are ended by ``AbandonedAuthentications``
(``commands/ordering/authentication_timeouts.py``), which rejects the order: the rejection's
compensation voids the authorization and releases the stock.

Batches: the orders placed in one pull of the log are placed together: each SKU's
stock item is loaded once and every order's reservation saved in one transaction,
and the decisions are saved in one transaction too (one by one again if a shopper
or an admin changed one of the orders meanwhile). Each order's reservation stays
all or nothing, in log order. The pull's other events are handled first, as they
come: they concern orders placed before (the saga's own decisions among them, which
interleave with new orders in the log), and a release handled before an order
placed earlier in the pull only offers it units that were already free when the
pull was read.

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
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.persistence import IntegrityError, TrackingRecorder

from commands.application import retry_on_conflict
from commands.catalog.inventory import InventoryCommands
from commands.ordering.application import OrderingApplication
from commands.ordering.carts import PaymentMethods
from commands.ordering.payment_gateway import ActionRequired, GatewayRefused
from commands.ordering.payments import PaymentCommands
from commands.ports import Clock
from domain.errors import DomainError
from domain.inventory import InsufficientStock, UnknownReservation
from domain.money import Money
from domain.order_fields import readable_reason
from domain.order_status import UNDECIDED, OrderStatus
from domain.orders import Order
from domain.payments import Payment, PaymentStatus
from projections.engine import BatchProjection, Delivery

log = logging.getLogger(__name__)

SAGA_ID = uuid5(NAMESPACE_URL, "/eventshop/policies/checkout-saga")
"""Who the saga's own inventory adjustments name (``by``)."""
CANCELLATION_REFUND = "cancellation"
SYNCHRONOUS_ANSWER = 2
"""The version of a payment's authorization or refusal saved with its request."""


Decision = tuple[Order, str | None, str | None]
"""An order with the payment reference that confirms it, or the reason that rejects
it; neither confirms it without a payment (nothing to pay)."""


class CheckoutSaga(BatchProjection[TrackingRecorder]):
    name = "checkout_saga"
    follows = ("ordering", "payments")

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

    def process_batch(self, deliveries: Sequence[Delivery]) -> None:
        placed: list[UUID] = []
        for domain_event, _ in deliveries:
            if domain_event.originator_id.int % self._partitions != self._partition:
                continue
            if isinstance(domain_event, Order.Placed):
                placed.append(domain_event.originator_id)
            else:
                self._handle(domain_event)
        self.place(*placed)
        for _, tracking in deliveries:
            # Another delivery of this event may have tracked it first: all it did was
            # idempotent, so nothing more to do.
            with contextlib.suppress(IntegrityError):
                self.view.insert_tracking(tracking)

    def _handle(self, domain_event: Any) -> None:
        match domain_event:
            case Order.Rejected() | Order.Cancelled():
                self.compensate(domain_event.originator_id)
            case Order.Confirmed() | Order.ConfirmedWithoutPayment():
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

    def place(self, *order_ids: UUID) -> None:
        """Reserve the stock of each placed order, authorize its payment and decide it."""
        orders = [self._ordering.get_order(order_id) for order_id in order_ids]
        # Others were decided before (or cancelled: their own event compensates).
        orders = [order for order in orders if order.status == OrderStatus.PLACED]
        if not orders:
            return
        _, refused = self._inventory.reserve_orders({str(o.id): o.skus for o in orders})
        decisions: list[Decision] = []
        for order in orders:
            if (refusal := refused.get(str(order.id))) is not None:
                decisions.append((order, None, _stock_refusal(refusal)))
                continue
            try:
                decision = self._pay(order)
            except (DomainError, GatewayRefused) as error:
                # This order's content, refused wherever it was checked: retrying
                # would refuse it again and hold up every order after it.
                log.warning("order %s rejected: %s", order.id, error)
                decision = None, f"the payment could not be made: {error}"
            if decision is not None:
                decisions.append((order, *decision))
        self._decide_all(decisions)

    def _pay(self, order: Order) -> tuple[str | None, str | None] | None:
        """Authorize the order's payment (none for a free order): the decision it
        gives, as ``_decision_by``'s."""
        if order.total_amount == 0:
            return None, None  # nothing to pay: the token, if any, is never used
        token = self._payment_methods.token_for(order.id)
        if token is None:
            return None, "the payment method is missing: check out again"
        payment, outcome = self._payments.authorize(order.id, order.total, token)
        if payment.status == PaymentStatus.ACTION_REQUIRED and isinstance(outcome, ActionRequired):
            self._await_authentication(order.id, outcome)
            return None
        return _decision_by(payment)

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
                with (
                    _left_to_an_admin(f"order {order_id}: {sku} not released"),
                    contextlib.suppress(UnknownReservation),  # never reserved
                ):
                    self._inventory.release(sku, str(order_id))
        with _left_to_an_admin(f"order {order_id}: authorization not voided"):
            self._payments.void(order_id)
        if order.captured > order.refunded:
            with _left_to_an_admin(f"order {order_id}: capture not refunded"):
                self._refund_cancelled(order_id)
        self._payment_methods.forget(order_id)

    def commit_stock(self, order_id: UUID) -> None:
        for sku in self._ordering.get_order(order_id).skus:
            with _left_to_an_admin(f"order {order_id}: shipped {sku} not committed"):
                self._inventory.commit(sku, str(order_id))

    def restock(self, order_id: UUID) -> None:
        for sku, quantity in self._ordering.get_order(order_id).skus.items():
            with _left_to_an_admin(f"order {order_id}: returned {sku} not restocked"):
                self._inventory.restock(sku, str(order_id), quantity, SAGA_ID)

    # --- decisions, retried on conflicts with the shopper or an admin ------------------

    def _decide_by(self, payment: Payment) -> None:
        decision = _decision_by(payment)
        if decision is not None:
            reference, rejection = decision
            decide(
                self._ordering,
                payment.order_id,
                self._clock(),
                reference=reference,
                rejection=rejection,
            )

    def _decide_all(self, decisions: list[Decision]) -> None:
        """Save every decision at once; one by one, each on the order as it is now,
        when another writer changed one of them first."""
        at = self._clock()
        try:
            self._ordering.save_all(
                *(order for order, ref, why in decisions if _decided(order, at, ref, why))
            )
        except IntegrityError:
            for order, reference, rejection in decisions:
                decide(self._ordering, order.id, at, reference=reference, rejection=rejection)

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
        # Never refused for what our payment allowed; if it were, an admin must look.
        with _left_to_an_admin(f"refund {refund_id} not recorded on order {order_id}"):
            order.record_provider_refund(refund_id, amount, self._clock())
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


@contextlib.contextmanager
def _left_to_an_admin(what: str) -> Iterator[None]:
    """Log a step that the order's content made impossible (``what`` was not done)
    and go on: retrying would be refused again and hold up every later event.
    Anything else raises, for the runner to retry."""
    try:
        yield
    except (DomainError, GatewayRefused) as error:
        log.error("%s: %s", what, error)


def _stock_refusal(refusal: DomainError) -> str:
    if isinstance(refusal, InsufficientStock):
        return f"not enough stock: {refusal}"
    return f"the stock could not be reserved: {refusal}"


def _decision_by(payment: Payment) -> tuple[str | None, str | None] | None:
    """What the payment decides for its order: (reference, None) confirms it, (None,
    reason) rejects it; None while it is still with the shopper or the gateway."""
    match payment.status:
        case PaymentStatus.AUTHORIZED:
            assert payment.reference is not None
            return payment.reference, None
        case PaymentStatus.FAILED:
            return None, f"payment declined: {payment.failure_reason}"
        case PaymentStatus.ACTION_REQUIRED | PaymentStatus.REQUESTED:
            return None
        case _:  # voided, or already captured: its order was decided
            return None, f"the payment is {payment.status}"


def _decided(order: Order, at: datetime, reference: str | None, rejection: str | None) -> bool:
    """Confirm (``reference``: the authorized payment's; None: nothing to pay) or
    reject an order the saga has not decided; False for a decided or cancelled order
    (the Cancelled event compensates)."""
    if order.status not in UNDECIDED:
        return False
    if rejection is not None:
        order.reject(readable_reason(rejection), at)
    elif reference is None:
        order.confirm_without_payment(at)
    else:
        order.confirm(reference, at)
    return True


@retry_on_conflict
def decide(
    ordering: OrderingApplication,
    order_id: UUID,
    at: datetime,
    *,
    reference: str | None = None,
    rejection: str | None = None,
) -> None:
    """Decide the order as it is now (``_decided``)."""
    order = ordering.get_order(order_id)
    if _decided(order, at, reference, rejection):
        ordering.save_all(order)
