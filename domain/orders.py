"""The Order aggregate: one shopper's order from placement to delivery, return and
refund. Its statuses and the moves between them are ``domain.order_status``; what its
fields may hold, ``domain.order_fields``.

Who and when:

- The checkout saga confirms (payment authorized, stock reserved) or rejects (with a
  reason the shopper can read). Nothing else leaves ``placed`` but a cancellation.
  An order with nothing to pay (every line free) is confirmed without a payment
  (``ConfirmedWithoutPayment``): nothing is captured at shipment or refunded later.
  When the card issuer asks the shopper to authenticate (3-D Secure), the order
  awaits it (stock held), recording what the storefront needs to run the challenge,
  until the saga confirms or rejects it (authenticated, failed, or timed out).
- The shopper (the order's customer) may cancel before shipment; an admin may cancel
  until delivery, with a reason. A delivered order is never cancelled: the goods are
  with the shopper, so money goes back through a return or a refund.
- A return is requested by the shopper within ``window`` of delivery; the window and
  the current time are arguments (no clock in the domain). Every lifecycle command
  takes ``at``, the time it happened, which the status timeline records.
- Repeating the transition an order has already made (confirm a confirmed order,
  cancel a cancelled one) records nothing: saga steps and clients retry.

Money: one currency per order. The order records what the payment captured (at
most its total) and what was refunded (at most what was captured, in total), so
refunds are bounded here as well as at the gateway. Refunds go to cancelled orders
(a capture to give back) and to delivered ones (partial goodwill refunds, returns);
before delivery money goes back through cancellation. A refund that returns
everything captured moves a delivered or returned order to ``refunded``; a cancelled
order stays ``cancelled``. A refund made at the payment provider, outside the shop
(Stripe's dashboard), is recorded whatever the status, shipped included: the money
has already gone back. Captures and refunds carry the gateway's id and are
recorded once per id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError, NotPermitted
from domain.lines import lines_total, single_currency, valid_lines
from domain.money import Money
from domain.order_fields import (
    MAX_URL,
    InvalidOrder,
    valid_address,
    valid_reason,
    valid_shipment,
)
from domain.order_status import (
    CAPTURABLE,
    REFUNDABLE,
    SHOPPER_CANCELLABLE,
    TRANSITIONS,
    OrderStatus,
    OrderTransitionNotAllowed,
    refunded_status,
)
from domain.payments import check_capture, check_refund, positive, valid_reference
from domain.text import single_line

AUTHENTICATION_NOTE = "the card issuer asks the shopper to authenticate the payment (3-D Secure)"
PROVIDER_REFUND_REASON = "refunded at the payment provider"
FREE_ORDER_NOTE = "nothing to pay, stock reserved"

S = OrderStatus


class ReturnWindowClosed(DomainError):
    """The return window after delivery has passed."""

    code = "return-window-closed"


class Order(Aggregate):
    """An order. Place one with ``place_order``."""

    class Placed(Aggregate.Created):
        customer_id: UUID
        lines: list[dict[str, Any]]
        total: dict[str, str]
        shipping_address: dict[str, str]
        at: datetime

    class Confirmed(Aggregate.Event):
        payment_reference: str
        at: datetime

    class ConfirmedWithoutPayment(Aggregate.Event):
        """Confirmed with nothing to pay: stock reserved, no payment requested."""

        at: datetime

    class Rejected(Aggregate.Event):
        reason: str
        at: datetime

    class AuthenticationRequested(Aggregate.Event):
        payment_reference: str
        client_secret: str | None
        approval_url: str | None
        at: datetime

    class Shipped(Aggregate.Event):
        carrier: str
        tracking_number: str
        by: UUID
        at: datetime

    class Delivered(Aggregate.Event):
        at: datetime

    class Cancelled(Aggregate.Event):
        by: UUID
        by_admin: bool
        reason: str
        at: datetime

    class ReturnRequested(Aggregate.Event):
        reason: str
        at: datetime

    class ReturnApproved(Aggregate.Event):
        by: UUID
        at: datetime

    class ReturnRefused(Aggregate.Event):
        by: UUID
        reason: str
        at: datetime

    class Returned(Aggregate.Event):
        at: datetime

    class PaymentCaptured(Aggregate.Event):
        capture_id: str
        amount: dict[str, str]
        at: datetime

    class Refunded(Aggregate.Event):
        refund_id: str
        amount: dict[str, str]
        reason: str
        fully: bool
        at: datetime

    @event(Placed)
    def __init__(
        self,
        id: UUID,
        customer_id: UUID,
        lines: list[dict[str, Any]],
        total: dict[str, str],
        shipping_address: dict[str, str],
        at: datetime,
    ) -> None:
        self.customer_id = customer_id
        self.lines = lines
        self.currency = total["currency"]
        self.total_amount = Decimal(total["amount"])
        self.shipping_address = shipping_address
        self.placed_at = at
        self.status = S.PLACED.value
        self.payment_reference: str | None = None
        self.rejection_reason: str | None = None
        # What the storefront needs to run the shopper's authentication (3-D Secure).
        self.authentication: dict[str, str | None] | None = None
        self.carrier: str | None = None
        self.tracking_number: str | None = None
        self.delivered_at: datetime | None = None
        self.cancellation: dict[str, Any] | None = None
        self.return_reason: str | None = None
        self.return_refusal_reason: str | None = None
        self.captured_amount = Decimal(0)
        self.refunded_amount = Decimal(0)
        self.capture_ids: list[str] = []
        self.refund_ids: list[str] = []
        # {"status", "at", "note"} per change, oldest first: what a shopper sees.
        self.timeline: list[dict[str, Any]] = []
        self._note(S.PLACED, at, f"order placed: {self.total}")

    # --- amounts ----------------------------------------------------------------------

    @property
    def total(self) -> Money:
        return Money(self.total_amount, self.currency)

    @property
    def captured(self) -> Money:
        return Money(self.captured_amount, self.currency)

    @property
    def refunded(self) -> Money:
        return Money(self.refunded_amount, self.currency)

    @property
    def skus(self) -> dict[str, int]:
        """SKU -> quantity: what the order reserves, ships, and takes back."""
        return {str(entry["sku"]): int(entry["quantity"]) for entry in self.lines}

    # --- the saga's decisions ---------------------------------------------------------

    def confirm(self, payment_reference: str, at: datetime) -> None:
        if self._already(S.CONFIRMED, "confirm"):
            return
        self._confirmed(payment_reference=valid_reference(payment_reference), at=at)

    @event(Confirmed)
    def _confirmed(self, payment_reference: str, at: datetime) -> None:
        self.payment_reference = payment_reference
        self._note(S.CONFIRMED, at, "payment authorized, stock reserved")

    def confirm_without_payment(self, at: datetime) -> None:
        """Confirm an order whose total is zero: there is no payment to wait for."""
        if self.total_amount > 0:
            raise InvalidOrder(f"an order of {self.total} is confirmed by its payment")
        if self._already(S.CONFIRMED, "confirm"):
            return
        self._confirmed_without_payment(at=at)

    @event(ConfirmedWithoutPayment)
    def _confirmed_without_payment(self, at: datetime) -> None:
        self._note(S.CONFIRMED, at, FREE_ORDER_NOTE)

    def reject(self, reason: str, at: datetime) -> None:
        if self._already(S.REJECTED, "reject"):
            return
        self._rejected(reason=valid_reason(reason), at=at)

    @event(Rejected)
    def _rejected(self, reason: str, at: datetime) -> None:
        self.rejection_reason = reason
        self._note(S.REJECTED, at, reason)

    def await_authentication(
        self,
        payment_reference: str,
        at: datetime,
        *,
        client_secret: str | None = None,
        approval_url: str | None = None,
    ) -> None:
        """The payment waits for the shopper to authenticate: ``client_secret`` for
        stripe.js, or ``approval_url``, where the shopper goes to do it."""
        if self._already(S.AWAITING_AUTHENTICATION, "await authentication for"):
            return
        self._authentication_requested(
            payment_reference=valid_reference(payment_reference),
            client_secret=None
            if client_secret is None
            else valid_reference(client_secret, "client secret"),
            approval_url=None
            if approval_url is None
            else single_line("approval URL", approval_url, MAX_URL, InvalidOrder),
            at=at,
        )

    @event(AuthenticationRequested)
    def _authentication_requested(
        self,
        payment_reference: str,
        client_secret: str | None,
        approval_url: str | None,
        at: datetime,
    ) -> None:
        self.authentication = {
            "payment_reference": payment_reference,
            "client_secret": client_secret,
            "approval_url": approval_url,
        }
        self._note(S.AWAITING_AUTHENTICATION, at, AUTHENTICATION_NOTE)

    # --- fulfilment -------------------------------------------------------------------

    def ship(self, carrier: str, tracking_number: str, by: UUID, at: datetime) -> None:
        if self._already(S.SHIPPED, "ship"):
            return
        carrier, tracking_number = valid_shipment(carrier, tracking_number)
        self._shipped(carrier=carrier, tracking_number=tracking_number, by=by, at=at)

    @event(Shipped)
    def _shipped(self, carrier: str, tracking_number: str, by: UUID, at: datetime) -> None:
        self.carrier = carrier
        self.tracking_number = tracking_number
        self._note(S.SHIPPED, at, f"shipped with {carrier}, tracking number {tracking_number}")

    def mark_delivered(self, at: datetime) -> None:
        if self._already(S.DELIVERED, "deliver"):
            return
        self._delivered(at=at)

    @event(Delivered)
    def _delivered(self, at: datetime) -> None:
        self.delivered_at = at
        self._note(S.DELIVERED, at, "delivered")

    # --- cancellation -----------------------------------------------------------------

    def cancel_by_shopper(self, shopper_id: UUID, at: datetime, reason: str = "") -> None:
        """The customer cancels, before shipment (``reason`` is optional)."""
        if shopper_id != self.customer_id:
            raise NotPermitted("only the customer who placed the order may cancel it")
        if self.status == S.CANCELLED:
            return
        if self.status not in SHOPPER_CANCELLABLE:
            raise OrderTransitionNotAllowed(self.status, "cancel")
        text = valid_reason(reason) if reason.strip() else "cancelled by the customer"
        self._cancelled(by=shopper_id, by_admin=False, reason=text, at=at)

    def cancel_by_admin(self, admin_id: UUID, reason: str, at: datetime) -> None:
        """An admin cancels, at any time before delivery, saying why."""
        if self._already(S.CANCELLED, "cancel"):
            return
        self._cancelled(by=admin_id, by_admin=True, reason=valid_reason(reason), at=at)

    @event(Cancelled)
    def _cancelled(self, by: UUID, by_admin: bool, reason: str, at: datetime) -> None:
        self.cancellation = {"by": by, "by_admin": by_admin, "reason": reason}
        self._note(S.CANCELLED, at, reason)

    # --- returns ----------------------------------------------------------------------

    def request_return(
        self, shopper_id: UUID, reason: str, at: datetime, window: timedelta
    ) -> None:
        if shopper_id != self.customer_id:
            raise NotPermitted("only the customer who placed the order may return it")
        if self._already(S.RETURN_REQUESTED, "request a return of"):
            return
        assert self.delivered_at is not None  # only delivered orders get here
        if at > self.delivered_at + window:
            raise ReturnWindowClosed(
                f"returns are accepted within {window.days} days of delivery"
                if window.days
                else "the return window has closed"
            )
        self._return_requested(reason=valid_reason(reason), at=at)

    @event(ReturnRequested)
    def _return_requested(self, reason: str, at: datetime) -> None:
        self.return_reason = reason
        self._note(S.RETURN_REQUESTED, at, reason)

    def approve_return(self, by: UUID, at: datetime) -> None:
        if self._already(S.RETURN_APPROVED, "approve a return of"):
            return
        self._return_approved(by=by, at=at)

    @event(ReturnApproved)
    def _return_approved(self, by: UUID, at: datetime) -> None:
        self._note(S.RETURN_APPROVED, at, "return approved")

    def refuse_return(self, by: UUID, reason: str, at: datetime) -> None:
        if self._already(S.RETURN_REFUSED, "refuse a return of"):
            return
        self._return_refused(by=by, reason=valid_reason(reason), at=at)

    @event(ReturnRefused)
    def _return_refused(self, by: UUID, reason: str, at: datetime) -> None:
        self.return_refusal_reason = reason
        self._note(S.RETURN_REFUSED, at, reason)

    def mark_returned(self, at: datetime) -> None:
        """The goods came back to the warehouse."""
        if self._already(S.RETURNED, "receive a return of"):
            return
        self._returned(at=at)

    @event(Returned)
    def _returned(self, at: datetime) -> None:
        self._note(S.RETURNED, at, "returned goods received")

    # --- money ------------------------------------------------------------------------

    def record_capture(self, capture_id: str, amount: Money, at: datetime) -> None:
        """The payment captured ``amount`` (at most the order's total, in all)."""
        capture_id = valid_reference(capture_id, "capture id")
        if capture_id in self.capture_ids:
            return
        if self.status not in CAPTURABLE:
            raise OrderTransitionNotAllowed(self.status, "capture the payment of")
        positive(amount, self.currency, "captured amount")
        check_capture(self.captured + amount, self.total)
        self._payment_captured(capture_id=capture_id, amount=amount.to_dict(), at=at)

    @event(PaymentCaptured)
    def _payment_captured(self, capture_id: str, amount: dict[str, str], at: datetime) -> None:
        self.captured_amount += Decimal(amount["amount"])
        self.capture_ids = [*self.capture_ids, capture_id]

    def record_refund(self, refund_id: str, amount: Money, reason: str, at: datetime) -> None:
        """``amount`` went back to the shopper (never more than captured, in all)."""
        refund_id = valid_reference(refund_id, "refund id")
        if refund_id in self.refund_ids:
            return
        if self.status not in REFUNDABLE:
            raise OrderTransitionNotAllowed(self.status, "refund")
        self._refund(refund_id, amount, reason, at)

    def record_provider_refund(self, refund_id: str, amount: Money, at: datetime) -> None:
        """A refund made at the payment provider, outside the shop: recorded in any
        status once something was captured (never more than captured, in all)."""
        refund_id = valid_reference(refund_id, "refund id")
        if refund_id in self.refund_ids:
            return
        self._refund(refund_id, amount, PROVIDER_REFUND_REASON, at)

    def _refund(self, refund_id: str, amount: Money, reason: str, at: datetime) -> None:
        check_refund(positive(amount, self.currency, "refund"), self.captured, self.refunded)
        self._refunded(
            refund_id=refund_id,
            amount=amount.to_dict(),
            reason=valid_reason(reason),
            fully=self.refunded + amount == self.captured,
            at=at,
        )

    @event(Refunded)
    def _refunded(
        self, refund_id: str, amount: dict[str, str], reason: str, fully: bool, at: datetime
    ) -> None:
        self.refunded_amount += Decimal(amount["amount"])
        self.refund_ids = [*self.refund_ids, refund_id]
        status = refunded_status(S(self.status), fully)
        kind = "refunded" if fully else "partially refunded"
        self._note(status, at, f"{kind} {Money.from_dict(amount)}: {reason}")

    # --- helpers ----------------------------------------------------------------------

    def _already(self, target: OrderStatus, action: str) -> bool:
        """True when the order is already ``target`` (nothing to record); raise when
        it may not move there."""
        if self.status == target:
            return True
        if target not in TRANSITIONS[S(self.status)]:
            raise OrderTransitionNotAllowed(self.status, action)
        return False

    def _note(self, status: OrderStatus, at: datetime, note: str) -> None:
        self.status = status.value
        self.timeline = [*self.timeline, {"status": status.value, "at": at, "note": note}]


def place_order(
    order_id: UUID,
    customer_id: UUID,
    lines: Sequence[Mapping[str, Any]],
    shipping_address: Mapping[str, str],
    at: datetime,
) -> Order:
    """A new order of ``lines`` (payloads as ``domain.lines.line`` makes them, priced
    from the catalog, never from the client), in one currency, one line per SKU."""
    if not isinstance(customer_id, UUID):
        raise InvalidOrder("an order names its customer by id")
    if not lines:
        raise InvalidOrder("an order needs at least one line")
    checked = valid_lines(lines)
    currency = single_currency(checked)
    assert currency is not None  # lines is not empty
    return Order(
        id=order_id,
        customer_id=customer_id,
        lines=checked,
        total=lines_total(checked, currency).to_dict(),
        shipping_address=valid_address(shipping_address),
        at=at,
    )
