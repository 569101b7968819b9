"""What the users area's endpoints need, provided by the composition root through
``app.state.users``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Protocol
from uuid import UUID

from fastapi import Depends, Request

from commands.application import Written
from commands.errors import RateLimited
from commands.http.callers import client_address
from commands.ports import RateLimiter
from commands.users.accounts import UserCommands


class CartMerge(Protocol):
    """The ordering area's carts, as logging in needs them: a guest's cart moves
    into the account's (a port, so that users need not know ordering)."""

    def merge(self, owner_id: UUID, guest_cart_id: UUID) -> Written: ...


@dataclass(frozen=True)
class Limits:
    login_per_account: int
    login_per_address: int
    reset_per_account: int
    reset_per_address: int
    window_seconds: float


@dataclass(frozen=True)
class UsersServices:
    users: UserCommands
    rate_limiter: RateLimiter
    limits: Limits
    carts: CartMerge


async def _services(request: Request) -> UsersServices:
    services: UsersServices = request.app.state.users
    return services


Services = Annotated[UsersServices, Depends(_services)]


def limit_attempts(
    request: Request,
    services: UsersServices,
    action: str,
    account: str,
    per_account: int,
    per_address: int,
) -> None:
    """Count one attempt at ``action`` against the account and against the client
    address; 429 with the longer wait if either is over its limit."""
    limiter, window = services.rate_limiter, services.limits.window_seconds
    counts = [
        limiter.take(f"{action}:account:{account.lower()}", per_account, window),
        limiter.take(f"{action}:address:{client_address(request)}", per_address, window),
    ]
    refused = [count.reset_seconds for count in counts if not count.admitted]
    if refused:
        raise RateLimited("too many attempts: wait before trying again", max(refused))
