"""Dependencies every area's write API shares, provided by the composition root
through ``app.state.write`` (nothing is built at import time): who the caller is,
idempotency keys. An area's own services are in its ``http/deps.py``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from commands.errors import IdempotencyKeyInvalid
from commands.http.callers import Authenticate, Caller, OptionalPrincipal
from commands.idempotency import Idempotency
from commands.ports import IdempotencyStore
from domain.access import Principal
from domain.users import Role


@dataclass(frozen=True)
class WriteServices:
    idempotency: IdempotencyStore
    authenticate: Authenticate


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
