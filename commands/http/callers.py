"""Who sends a request: the principal of its bearer token, else the guest cart of its
``X-Cart-Token``, else the client's address. Idempotency keys are the caller's own.

Every route that needs the principal or the guest cart solves it through these
dependencies: FastAPI solves one callable once per request, so a route that needs
both the shopper and the caller authenticates once. They read ``app.state`` (the
bootstrap's services) directly, so that both ``deps`` and ``ordering_deps`` can
build on them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from domain.access import Principal
from domain.cart_tokens import read_guest_cart_token

Authenticate = Callable[[str | None], Awaitable[Principal]]
MAX_CART_TOKEN = 100
_bearer = HTTPBearer(auto_error=False)


async def _optional_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    """The principal of the bearer token, None without one (a bad token is refused)."""
    if credentials is None:
        return None
    authenticate: Authenticate = request.app.state.write.authenticate
    return await authenticate(credentials.credentials)


OptionalPrincipal = Annotated[Principal | None, Depends(_optional_principal)]


async def _guest_cart(
    request: Request,
    token: Annotated[
        str | None,
        Header(alias="X-Cart-Token", max_length=MAX_CART_TOKEN, description="A guest's cart"),
    ] = None,
) -> UUID | None:
    if token is None:
        return None
    key: bytes = request.app.state.ordering.cart_token_key
    return read_guest_cart_token(key, token)


GuestCart = Annotated[UUID | None, Depends(_guest_cart)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _caller(request: Request, principal: OptionalPrincipal, guest_cart: GuestCart) -> str:
    if principal is not None:
        return f"user:{principal.user_id}"
    if guest_cart is not None:
        return f"cart:{guest_cart}"
    return f"client:{client_address(request)}"


Caller = Annotated[str, Depends(_caller)]
