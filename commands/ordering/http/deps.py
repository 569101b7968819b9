"""What the carts, checkout, orders and payments endpoints need, provided by the
composition root through ``app.state.ordering``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request

from commands.http.callers import OptionalPrincipal
from commands.ordering.carts import CartCommands
from commands.ordering.orders import OrderCommands
from commands.ordering.payment_gateway import Webhooks
from commands.ordering.payments import PaymentCommands


@dataclass(frozen=True)
class OrderingServices:
    carts: CartCommands
    orders: OrderCommands
    payments: PaymentCommands
    cart_token_key: bytes
    new_guest_cart_id: Callable[[], UUID]
    stripe_webhooks: Webhooks | None = None


async def _services(request: Request) -> OrderingServices:
    services: OrderingServices = request.app.state.ordering
    return services


OrderingDeps = Annotated[OrderingServices, Depends(_services)]
Shopper = OptionalPrincipal
"""The logged-in shopper, or None for a guest (a bad token is still refused)."""
