"""Abandoned authentications: an order whose payment waits for the shopper's 3-D Secure
authentication holds its stock, so it may not wait forever.

``AbandonedAuthentications.sweep`` (run periodically; ``infra/postgres/awaiting_authentication.py``)
takes the orders that have awaited authentication longer than the timeout, asks the
gateway how each stands (an ending whose news was lost is recorded; the checkout
saga then decides the order from it), and rejects those still awaited. The
rejection's compensation (the saga, on ``Order.Rejected``) voids the authorization
and releases the stock. Which orders wait comes from the orders read model, so the
sweep needs no memory of its own and survives restarts; running it in several
processes at once does nothing twice (a decided order records nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from commands.ordering.application import OrderingApplication
from commands.ordering.checkout_saga import decide
from commands.ordering.payment_gateway import GatewayRefused
from commands.ordering.payments import PaymentCommands
from commands.ports import Clock
from domain.order_status import OrderStatus
from domain.payments import PaymentStatus
from domain.refusals import Refused

log = logging.getLogger(__name__)


class AwaitingAuthentication(Protocol):
    def since_before(self, moment: datetime) -> Iterable[UUID]:
        """Orders that have awaited authentication since before ``moment``."""
        ...


class AbandonedAuthentications:
    def __init__(
        self,
        ordering: OrderingApplication,
        payments: PaymentCommands,
        awaiting: AwaitingAuthentication,
        clock: Clock,
        timeout: timedelta,
    ) -> None:
        self._ordering = ordering
        self._payments = payments
        self._awaiting = awaiting
        self._clock = clock
        self._timeout = timeout

    def sweep(self) -> int:
        """End what has waited too long; how many orders were rejected."""
        rejected = 0
        for order_id in self._awaiting.since_before(self._clock() - self._timeout):
            try:
                rejected += self.expire(order_id)
            except Refused as error:  # the gateway's: this order waits for the next sweep
                log.warning("could not end the authentication of order %s: %s", order_id, error)
        return rejected

    def expire(self, order_id: UUID) -> bool:
        """Reject the order if its payment is still awaiting authentication."""
        if self._ordering.get_order(order_id).status != OrderStatus.AWAITING_AUTHENTICATION:
            return False
        try:
            self._payments.check_authentication(order_id)
        except GatewayRefused as refused:  # it will not say (a payment in a state it refuses)
            log.warning("order %s: %s; rejected as abandoned", order_id, refused)
        payment = self._payments.find(order_id)
        if payment is None or payment.status != PaymentStatus.ACTION_REQUIRED:
            return False  # it ended after all: the saga decides from the payment's event
        decide(
            self._ordering,
            order_id,
            self._clock(),
            rejection=f"the payment was not authenticated within {_duration(self._timeout)}",
        )
        return True


def _duration(span: timedelta) -> str:
    seconds = round(span.total_seconds())
    return f"{seconds // 60} minutes" if seconds % 60 == 0 else f"{seconds} seconds"
