"""Orders after checkout: the shopper's and the admins' lifecycle commands.

The ``Order`` aggregate decides who may do what when (``domain/orders.py``); these
handlers load, decide, save, and move money where a transition needs it, before the
transition is recorded, so an order never says more than the money did:

- shipping captures the authorized amount first (a capture the gateway refuses
  leaves the order unshipped, 409), then records the capture and the shipment in
  one save. The capture's idempotency key is the order's, so a retried or repeated
  ship captures once;
- a refund is paid back first (at most what was captured and not yet refunded,
  checked by the order before any money moves), then recorded (a conflict retries
  the recording only: the money moved once, and the checkout saga may have
  recorded the refund first from the payment's event).

A shopper whose payment awaits 3-D Secure confirms it after authenticating
(``confirm_payment``): the gateway is asked how it went and the payment records it;
the saga then confirms or rejects the order.

What follows a transition without a decision (releasing or committing stock,
voiding an authorization, taking returned goods back into stock) is the checkout
saga's (``commands/ordering/checkout_saga.py``), which follows this log.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from commands.application import Written, retry_on_conflict
from commands.ordering.application import OrderingApplication
from commands.ordering.payment_gateway import Refunded
from commands.ordering.payments import PaymentCommands
from commands.ports import Clock
from commands.tracing import traced_commands
from domain.access import Principal
from domain.errors import NotPermitted, UnknownEntity
from domain.money import Money
from domain.order_fields import valid_reason, valid_shipment
from domain.order_status import REFUNDABLE, OrderStatus, OrderTransitionNotAllowed
from domain.orders import Order
from domain.payments import check_refund, positive
from domain.positions import Position
from domain.users import Role

RETURN_WINDOW = timedelta(days=30)


@traced_commands
class OrderCommands:
    def __init__(
        self,
        app: OrderingApplication,
        payments: PaymentCommands,
        clock: Clock,
        return_window: timedelta = RETURN_WINDOW,
    ) -> None:
        self.app = app
        self._payments = payments
        self._clock = clock
        self._return_window = return_window

    # --- the shopper ------------------------------------------------------------------

    @retry_on_conflict
    def cancel_by_shopper(self, principal: Principal, order_id: UUID, reason: str) -> Written:
        order = self._own(principal, order_id)
        order.cancel_by_shopper(principal.user_id, self._clock(), reason)
        return self._saved(order)

    def confirm_payment(self, principal: Principal, order_id: UUID) -> Written:
        """The shopper has been through the payment's authentication: record how it
        ended (the position is the payments log's; nothing new while it goes on)."""
        order = self._own(principal, order_id)
        if order.status != OrderStatus.AWAITING_AUTHENTICATION:
            raise OrderTransitionNotAllowed(order.status, "confirm the payment of")
        return Written(order_id, self._payments.check_authentication(order_id))

    @retry_on_conflict
    def request_return(self, principal: Principal, order_id: UUID, reason: str) -> Written:
        order = self._own(principal, order_id)
        order.request_return(principal.user_id, reason, self._clock(), self._return_window)
        return self._saved(order)

    # --- admins -----------------------------------------------------------------------

    @retry_on_conflict
    def cancel_by_admin(self, admin: Principal, order_id: UUID, reason: str) -> Written:
        order = self._as_admin(admin, order_id)
        order.cancel_by_admin(admin.user_id, reason, self._clock())
        return self._saved(order)

    @retry_on_conflict
    def ship(self, admin: Principal, order_id: UUID, carrier: str, tracking_number: str) -> Written:
        order = self._as_admin(admin, order_id)
        if order.status == OrderStatus.SHIPPED:
            return Written(order_id, None)
        if order.status != OrderStatus.CONFIRMED:
            raise OrderTransitionNotAllowed(order.status, "ship")
        valid_shipment(carrier, tracking_number)  # refused before any money moves
        now = self._clock()
        paid: Position | None = None
        if order.total.amount > 0:  # a free order has no payment to capture
            captured, paid = self._payments.capture(order_id, order.total)
            order.record_capture(captured.capture_id, captured.amount, now)
        order.ship(carrier, tracking_number, admin.user_id, now)
        return self._saved(order, paid)

    @retry_on_conflict
    def mark_delivered(self, admin: Principal, order_id: UUID) -> Written:
        order = self._as_admin(admin, order_id)
        order.mark_delivered(self._clock())
        return self._saved(order)

    @retry_on_conflict
    def approve_return(self, admin: Principal, order_id: UUID) -> Written:
        order = self._as_admin(admin, order_id)
        order.approve_return(admin.user_id, self._clock())
        return self._saved(order)

    @retry_on_conflict
    def refuse_return(self, admin: Principal, order_id: UUID, reason: str) -> Written:
        order = self._as_admin(admin, order_id)
        order.refuse_return(admin.user_id, reason, self._clock())
        return self._saved(order)

    @retry_on_conflict
    def mark_returned(self, admin: Principal, order_id: UUID) -> Written:
        """The returned goods arrived (the saga puts them back in stock)."""
        order = self._as_admin(admin, order_id)
        order.mark_returned(self._clock())
        return self._saved(order)

    def refund(
        self, admin: Principal, order_id: UUID, amount: Money | None, reason: str, key: str
    ) -> Written:
        """Pay back ``amount`` (None: everything captured and not yet refunded).
        ``key`` (the request's idempotency key) makes a retry pay once."""
        order = self._as_admin(admin, order_id)
        if order.status not in REFUNDABLE:
            raise OrderTransitionNotAllowed(order.status, "refund")
        refund = order.captured - order.refunded if amount is None else amount
        check_refund(positive(refund, order.currency, "refund"), order.captured, order.refunded)
        valid_reason(reason)
        refunded, paid_back = self._payments.refund_recorded(order_id, refund, key)
        return self._record_refund(order_id, refunded, reason, paid_back)

    @retry_on_conflict
    def _record_refund(
        self, order_id: UUID, refunded: Refunded, reason: str, paid_back: Position | None
    ) -> Written:
        order = self.app.get_order(order_id)
        order.record_refund(refunded.refund_id, refunded.amount, reason, self._clock())
        return self._saved(order, paid_back)

    # --- helpers ----------------------------------------------------------------------

    def _own(self, principal: Principal, order_id: UUID) -> Order:
        order = self.app.get_order(order_id)
        if order.customer_id != principal.user_id:
            raise UnknownEntity("no such order")  # others' orders are not revealed
        return order

    def _as_admin(self, admin: Principal, order_id: UUID) -> Order:
        if not admin.has_role(Role.ADMIN):
            raise NotPermitted("this needs the admin role")
        return self.app.get_order(order_id)

    def _saved(self, order: Order, *also: Position | None) -> Written:
        """``also``: what the payments log recorded first (a capture, a refund)."""
        return Written(order.id, self.app.save_all(order), also)
