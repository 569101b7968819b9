"""Dependencies of the read API, provided by the composition root through ``app.state.read``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from domain.access import Principal
from domain.errors import NotPermitted
from domain.positions import MalformedToken, Position, parse_positions
from domain.refusals import BadQuery
from domain.users import Role
from projections.catalog.product_cache import ProductCache
from projections.catalog.search import CatalogSearch, SearchAnswerCache
from projections.positions import reached_now_async, wait_until_async
from read_api.errors import ProjectionLagging

Authenticate = Callable[[str | None], Awaitable[Principal]]
MAX_TOKEN_LENGTH = 1000


@dataclass(frozen=True)
class ReadServices:
    pool: AsyncConnectionPool[AsyncConnection[Any]]
    authenticate: Authenticate
    read_your_writes_timeout: float
    followed_logs: dict[str, frozenset[str]]
    """Projection name -> the logs it follows."""
    catalog_search: CatalogSearch
    """Catalog search: PostgreSQL full-text search, or OpenSearch."""
    product_cache: ProductCache | None = None
    """Product details in Redis; None: Postgres only (embedded mode without Redis)."""
    search_cache: SearchAnswerCache | None = None
    """Whole search answers in Redis; None: every search asks the search engine."""


# Dependencies are ``async def``: a plain ``def`` would cost every request a hop
# through the threadpool for nothing.
async def services_of(request: Request) -> ReadServices:
    services: ReadServices = request.app.state.read
    return services


Services = Annotated[ReadServices, Depends(services_of)]


_bearer = HTTPBearer(auto_error=False)


async def _principal(
    services: Services,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    return await services.authenticate(credentials.credentials if credentials else None)


CurrentUser = Annotated[Principal, Depends(_principal)]


async def _admin(principal: CurrentUser) -> Principal:
    principal.require_role(Role.ADMIN)
    return principal


CurrentAdmin = Annotated[Principal, Depends(_admin)]


async def _positions(
    header: Annotated[
        str | None,
        Header(
            alias="X-Consistency-Token",
            max_length=MAX_TOKEN_LENGTH,
            description="Answer only once the view has processed this position",
        ),
    ] = None,
    after: Annotated[
        str | None,
        Query(max_length=MAX_TOKEN_LENGTH, description="Same as the X-Consistency-Token header"),
    ] = None,
) -> list[Position]:
    token = header or after
    if not token:
        return []
    try:
        return parse_positions(token)
    except MalformedToken as error:
        raise BadQuery(str(error)) from error


Positions = Annotated[list[Position], Depends(_positions)]


async def positions_in(request: Request) -> list[Position]:
    """``Positions`` read straight from the request, for an endpoint so hot that
    FastAPI's dependency solving would cost more than its work (product detail)."""
    header = request.headers.get("x-consistency-token")
    after = request.query_params.get("after")
    if any(value is not None and len(value) > MAX_TOKEN_LENGTH for value in (header, after)):
        raise BadQuery(f"a consistency token is at most {MAX_TOKEN_LENGTH} characters")
    return await _positions(header, after)


async def wait_for(services: ReadServices, projection: str, positions: list[Position]) -> None:
    """Read-your-writes: return once ``projection`` has processed every position of
    a log it follows; 503 with Retry-After when the bound passes first. Positions in
    other logs are ignored: a command that wrote to several logs answers them all,
    and each view waits for its own. A connection is held only for each poll, never
    across the pauses."""
    followed = services.followed_logs.get(projection, frozenset())
    positions = [p for p in positions if p.log in followed]
    if not positions:
        return

    async def done() -> bool:
        async with services.pool.connection() as conn:
            return await reached_now_async(conn, projection, positions)

    if not await wait_until_async(done, services.read_your_writes_timeout):
        raise ProjectionLagging(
            f"the {projection} view has not caught up with your change yet",
            headers={"Retry-After": "1"},
        )


def seller_scope(principal: Principal, seller_id: UUID | None, what: str) -> UUID | None:
    """The seller whose products a query may show ``principal``: an admin any (or the
    one asked for, None: every seller), a seller their own only; anyone else none.
    ``what`` names the data in the refusal."""
    if principal.has_role(Role.ADMIN):
        return seller_id
    if not principal.has_role(Role.SELLER):
        raise NotPermitted(f"{what} are for sellers and admins")
    if seller_id is not None and seller_id != principal.user_id:
        raise NotPermitted(f"sellers see the {what} of their own products only")
    return principal.user_id
