"""Dependencies of the write API, provided by the process's bootstrap through
``app.state.write`` (nothing is built at import time)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from commands.catalog.inventory import InventoryCommands
from commands.catalog.products import CatalogCommands
from commands.catalog.reviews import ReviewCommands
from commands.errors import IdempotencyKeyInvalid, RateLimited
from commands.http.callers import Authenticate, Caller, OptionalPrincipal, client_address
from commands.idempotency import Idempotency
from commands.ports import IdempotencyStore, RateLimiter
from commands.users.accounts import UserCommands
from domain.access import Principal
from domain.users import Role


@dataclass(frozen=True)
class Limits:
    login_per_account: int
    login_per_address: int
    reset_per_account: int
    reset_per_address: int
    window_seconds: float


@dataclass(frozen=True)
class WriteServices:
    users: UserCommands
    idempotency: IdempotencyStore
    rate_limiter: RateLimiter
    limits: Limits
    authenticate: Authenticate
    catalog: CatalogCommands
    inventory: InventoryCommands
    reviews: ReviewCommands


def _write_services(request: Request) -> WriteServices:
    services: WriteServices = request.app.state.write
    return services


async def _services(request: Request) -> WriteServices:
    # async although it awaits nothing: FastAPI runs a plain ``def`` dependency in the
    # threadpool, a thread hop on every request for an attribute lookup.
    return _write_services(request)


Services = Annotated[WriteServices, Depends(_services)]


async def _principal(request: Request, principal: OptionalPrincipal) -> Principal:
    if principal is not None:
        return principal
    return await _write_services(request).authenticate(None)  # refused: no token


CurrentUser = Annotated[Principal, Depends(_principal)]


async def _admin(principal: CurrentUser) -> Principal:
    principal.require_role(Role.ADMIN)
    return principal


CurrentAdmin = Annotated[Principal, Depends(_admin)]


async def _one_key(request: Request) -> None:
    """Two keys or an empty one: which request would the retry be? Refused before
    the key's own validation (a sub-dependency is solved first)."""
    keys = request.headers.getlist("idempotency-key")
    if len(keys) > 1 or keys == [""]:
        raise IdempotencyKeyInvalid("send one Idempotency-Key header, not empty")


async def _idempotency(
    request: Request,
    services: Services,
    _: Annotated[None, Depends(_one_key)],
    caller: Caller,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="Retry safely: the same key and body return your first answer "
            "(keys are each caller's own)",
        ),
    ] = None,
) -> Idempotency:
    route = request.scope.get("route")
    scope = f"{request.method} {getattr(route, 'path', request.url.path)}"
    return Idempotency(
        services.idempotency, scope, key, caller=caller, path_params=dict(request.path_params)
    )


IdempotencyKey = Annotated[Idempotency, Depends(_idempotency)]


def limit_attempts(
    request: Request,
    services: WriteServices,
    action: str,
    account: str,
    per_account: int,
    per_address: int,
) -> None:
    """Count one attempt at ``action`` against the account and against the client
    address; 429 with the longer wait if either is over its limit."""
    limiter, window = services.rate_limiter, services.limits.window_seconds
    waits = [
        limiter.hit(f"{action}:account:{account.lower()}", per_account, window),
        limiter.hit(f"{action}:address:{client_address(request)}", per_address, window),
    ]
    refused = [w for w in waits if w is not None]
    if refused:
        raise RateLimited("too many attempts: wait before trying again", max(refused))
