"""The order lifecycle: an order's statuses and the moves between them.

``TRANSITIONS`` is the whole table (``domain.orders`` says who makes each move, and
when)::

    placed -> confirmed | rejected | cancelled | awaiting_authentication
    awaiting_authentication -> confirmed | rejected | cancelled
    confirmed -> shipped | cancelled
    shipped -> delivered | cancelled (an admin only: parcel intercepted or lost)
    delivered -> return_requested (within the return window)
    return_requested -> return_approved | return_refused
    return_approved -> returned
    delivered, return_*, returned -> refunded (once everything captured went back)
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from domain.errors import DomainError


class OrderStatus(StrEnum):
    PLACED = "placed"
    AWAITING_AUTHENTICATION = "awaiting_authentication"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    RETURN_REQUESTED = "return_requested"
    RETURN_APPROVED = "return_approved"
    RETURN_REFUSED = "return_refused"
    RETURNED = "returned"
    REFUNDED = "refunded"


S = OrderStatus
TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    S.PLACED: frozenset({S.CONFIRMED, S.REJECTED, S.CANCELLED, S.AWAITING_AUTHENTICATION}),
    S.AWAITING_AUTHENTICATION: frozenset({S.CONFIRMED, S.REJECTED, S.CANCELLED}),
    S.CONFIRMED: frozenset({S.SHIPPED, S.CANCELLED}),
    S.SHIPPED: frozenset({S.DELIVERED, S.CANCELLED}),
    S.DELIVERED: frozenset({S.RETURN_REQUESTED, S.REFUNDED}),
    S.RETURN_REQUESTED: frozenset({S.RETURN_APPROVED, S.RETURN_REFUSED, S.REFUNDED}),
    S.RETURN_APPROVED: frozenset({S.RETURNED, S.REFUNDED}),
    S.RETURN_REFUSED: frozenset({S.REFUNDED}),
    S.RETURNED: frozenset({S.REFUNDED}),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}
SHOPPER_CANCELLABLE = frozenset({S.PLACED, S.AWAITING_AUTHENTICATION, S.CONFIRMED})
UNDECIDED = frozenset({S.PLACED, S.AWAITING_AUTHENTICATION})
"""What the checkout saga has still to confirm or reject."""
CAPTURABLE = frozenset({S.CONFIRMED, S.SHIPPED, S.DELIVERED})
REFUNDABLE = frozenset(
    {S.CANCELLED, S.DELIVERED, S.RETURN_REQUESTED, S.RETURN_APPROVED, S.RETURN_REFUSED, S.RETURNED}
)


class OrderTransitionNotAllowed(DomainError):
    """The order's status does not allow this (ship a cancelled order, cancel a
    delivered one...)."""

    code = "order-transition-not-allowed"

    def __init__(self, status: str, action: str) -> None:
        super().__init__(f"cannot {action} an order that is {status.replace('_', ' ')}")
        self.status = status
        self.action = action


def refunded_status(status: OrderStatus, fully: bool) -> OrderStatus:
    """Where a refund leaves an order: a full one ends it ``refunded`` where the
    lifecycle allows (delivered, returns); otherwise (cancelled, shipped) it stays."""
    return S.REFUNDED if fully and S.REFUNDED in TRANSITIONS[status] else status
