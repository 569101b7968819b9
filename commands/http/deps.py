"""Dependencies of the write API, provided by the process's bootstrap through
``app.state.write`` (nothing is built at import time)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from commands.catalog import CatalogCommands
from commands.errors import RateLimited
from commands.idempotency import Idempotency
from commands.inventory import InventoryCommands
from commands.ports import IdempotencyStore, RateLimiter
from commands.reviews import ReviewCommands
from commands.users import UserCommands
from domain.access import Principal
from domain.users import Role

Authenticate = Callable[[str | None], Awaitable[Principal]]


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
_bearer = HTTPBearer(auto_error=False)


async def _principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    authenticate = _write_services(request).authenticate
    return await authenticate(credentials.credentials if credentials else None)


CurrentUser = Annotated[Principal, Depends(_principal)]


async def _admin(principal: CurrentUser) -> Principal:
    principal.require_role(Role.ADMIN)
    return principal


CurrentAdmin = Annotated[Principal, Depends(_admin)]


async def _idempotency(
    request: Request,
    services: Services,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="Retry safely: the same key and body return the first answer",
        ),
    ] = None,
) -> Idempotency:
    route = request.scope.get("route")
    scope = f"{request.method} {getattr(route, 'path', request.url.path)}"
    return Idempotency(services.idempotency, scope, key, dict(request.path_params))


IdempotencyKey = Annotated[Idempotency, Depends(_idempotency)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


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
