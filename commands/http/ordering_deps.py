"""What the carts, checkout, orders and payments endpoints need, provided by the
bootstrap through ``app.state.ordering``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Protocol
from uuid import UUID

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from commands.carts import CartCommands
from commands.http.deps import Authenticate
from commands.orders import OrderCommands
from commands.payment_gateway import GatewayOutcome
from commands.payments import PaymentCommands
from domain.access import Principal
from domain.cart_tokens import read_guest_cart_token

MAX_CART_TOKEN = 100


class Webhooks(Protocol):
    def outcomes(self, payload: bytes, signature: str) -> list[GatewayOutcome]:
        """The gateway outcomes a verified webhook reports; raises when it does not
        verify."""
        ...


@dataclass(frozen=True)
class OrderingServices:
    carts: CartCommands
    orders: OrderCommands
    payments: PaymentCommands
    cart_token_key: bytes
    authenticate: Authenticate
    new_guest_cart_id: Callable[[], UUID]
    stripe_webhooks: Webhooks | None = None


async def _services(request: Request) -> OrderingServices:
    services: OrderingServices = request.app.state.ordering
    return services


OrderingDeps = Annotated[OrderingServices, Depends(_services)]
_bearer = HTTPBearer(auto_error=False)


async def _shopper(
    services: OrderingDeps,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    """The logged-in shopper, or None for a guest (a bad token is still refused)."""
    if credentials is None:
        return None
    return await services.authenticate(credentials.credentials)


Shopper = Annotated[Principal | None, Depends(_shopper)]


async def _guest_cart(
    services: OrderingDeps,
    token: Annotated[
        str | None,
        Header(alias="X-Cart-Token", max_length=MAX_CART_TOKEN, description="A guest's cart"),
    ] = None,
) -> UUID | None:
    return None if token is None else read_guest_cart_token(services.cart_token_key, token)


GuestCart = Annotated[UUID | None, Depends(_guest_cart)]
