"""The ordering bounded context's event store: carts and orders in one Application.

They share one because checkout changes both at once: the cart is emptied into the
order (``Cart.CheckedOut``) and the order placed (``Order.Placed``) in one atomic
save, so there is never an order without its cart emptied, nor an emptied cart
without its order. The checkout saga follows this log.
"""

from __future__ import annotations

from uuid import UUID

from commands.application import ContextApplication
from domain.carts import Cart
from domain.errors import UnknownEntity
from domain.orders import Order


class OrderingApplication(ContextApplication):
    name = "ordering"
    snapshotting_intervals = {Cart: 50, Order: 50}

    def get_order(self, order_id: UUID) -> Order:
        order = self.find(Order, order_id)
        if order is None:
            raise UnknownEntity("no such order")
        return order
