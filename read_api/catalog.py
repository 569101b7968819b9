"""What shoppers browse and search, and what sellers and admins see of stock.

Every query parameter is bounded; malformed input (a cursor we did not issue, search
text with no words, a price range without a currency) answers 400 problem+json,
never 500. ``X-Consistency-Token`` (or ``?after=``) waits for the view to reach a
position the client wrote, as everywhere in the read API.

Product details come from the Redis cache when there is one (``services.product_cache``),
as the stored JSON bytes; a miss, or Redis down, reads Postgres (and fills the cache).

Product detail, listing, category tree and search answer anonymous requests with an
``ETag`` and a short public ``Cache-Control``, and ``If-None-Match`` with 304
(``read_api.http_caching``: which validator each one takes, and why).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import TypeAdapter

from commands.http.parsed_body import ParsedBodyRoute
from domain.access import Principal
from domain.errors import NotPermitted, UnknownEntity
from domain.money import CURRENCY_MINOR_UNITS
from domain.refusals import BadQuery
from domain.users import Role
from projections.catalog.category_queries import categories_version, category_tree
from projections.catalog.product_queries import (
    list_products,
    product_snapshot,
    products_version,
    visible_to,
)
from projections.catalog.review_queries import product_reviews
from projections.catalog.search import ProductFilter, SearchUnavailable
from projections.catalog.stock_queries import inventory_levels
from read_api.catalog_models import (
    CategoryTree,
    InventoryPage,
    ProductDetail,
    ProductPage,
    ReviewPage,
    SearchAnswer,
)
from read_api.deps import (
    MAX_TOKEN_LENGTH,
    CurrentUser,
    Positions,
    Services,
    positions_in,
    seller_scope,
    services_of,
    wait_for,
)
from read_api.errors import ProjectionLagging, SearchDown
from read_api.http_caching import (
    CONDITIONAL_DOCS,
    IF_NONE_MATCH_PARAMETER,
    NOT_MODIFIED_DOCS,
    answer,
    body_etag,
    etag,
    full,
    not_modified,
    personal,
    revalidated,
)

router = APIRouter(tags=["catalog"], route_class=ParsedBodyRoute)

MAX_SEARCH_TEXT = 200
MAX_ATTRIBUTE_FILTERS = 10
MAX_CURSOR = 500
_ATTRIBUTE_FILTER = re.compile(r"([a-z0-9][a-z0-9_-]{0,39}):(.{1,200})", re.DOTALL)

ListSort = Literal["price_asc", "price_desc", "newest", "rating"]
SearchSort = Literal["relevance", "price_asc", "price_desc", "newest", "rating"]
Cursor = Annotated[
    str | None,
    Query(max_length=MAX_CURSOR, description="next_cursor of the previous page"),
]
_optional_bearer = HTTPBearer(auto_error=False)


async def _viewer(
    services: Services,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_optional_bearer)],
) -> Principal | None:
    """Who asks, when they say: browsing needs no login, but a token that is sent
    must be valid."""
    if credentials is None:
        return None
    return await services.authenticate(credentials.credentials)


Viewer = Annotated[Principal | None, Depends(_viewer)]


def _product_filter(
    category: Annotated[UUID | None, Query(description="This category or any below it")] = None,
    currency: Annotated[str | None, Query(min_length=3, max_length=3)] = None,
    min_price: Annotated[Decimal | None, Query(ge=0, le=10**9, max_digits=16)] = None,
    max_price: Annotated[Decimal | None, Query(ge=0, le=10**9, max_digits=16)] = None,
    min_rating: Annotated[Decimal | None, Query(ge=1, le=5, max_digits=3)] = None,
    in_stock: bool | None = None,
    attr: Annotated[
        list[str] | None,
        Query(description="Attribute equals value, as name:value; repeatable (all must match)"),
    ] = None,
) -> ProductFilter:
    code = currency.upper() if currency is not None else None
    if code is not None and code not in CURRENCY_MINOR_UNITS:
        raise BadQuery(f"unsupported currency: {currency!r}")
    if (min_price is not None or max_price is not None) and code is None:
        raise BadQuery("a price range needs a currency (for example currency=EUR)")
    if min_price is not None and max_price is not None and min_price > max_price:
        raise BadQuery("min_price is above max_price")
    attributes: dict[str, str] = {}
    for item in attr or []:
        if len(attributes) >= MAX_ATTRIBUTE_FILTERS:
            raise BadQuery(f"at most {MAX_ATTRIBUTE_FILTERS} attribute filters")
        match = _ATTRIBUTE_FILTER.fullmatch(item.strip())
        if match is None:
            raise BadQuery(f"an attribute filter is name:value, not {item[:60]!r}")
        attributes[match[1]] = match[2]
    return ProductFilter(
        category_id=category,
        currency=code,
        min_price=min_price,
        max_price=max_price,
        min_rating=min_rating,
        in_stock=in_stock,
        attributes=attributes,
    )


Filters = Annotated[ProductFilter, Depends(_product_filter)]


# The product page is the hottest read: its endpoint resolves what the others take
# as dependencies by hand (FastAPI's dependency solving cost twice the rest of a
# cache hit), and these lines keep the OpenAPI description complete.
_PRODUCT_DOCS: dict[str, Any] = {
    "parameters": [
        {
            "name": "X-Consistency-Token",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "maxLength": MAX_TOKEN_LENGTH},
            "description": "Answer only once the view has processed this position",
        },
        {
            "name": "after",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "maxLength": MAX_TOKEN_LENGTH},
            "description": "Same as the X-Consistency-Token header",
        },
        IF_NONE_MATCH_PARAMETER,
    ],
    "security": [{"HTTPBearer": []}, {}],
}


@router.get(
    "/products/{product_id}",
    response_model=ProductDetail,
    responses=NOT_MODIFIED_DOCS,
    openapi_extra=_PRODUCT_DOCS,
)
async def product(product_id: UUID, request: Request) -> Response:
    """A published product with its stock and rating summary. Its seller and admins
    also see it as a draft, unpublished or archived."""
    services = await services_of(request)
    positions = await positions_in(request)
    viewer = await _viewer(services, await _optional_bearer(request))
    viewer_id = viewer.user_id if viewer else None
    admin = viewer is not None and viewer.has_role(Role.ADMIN)
    cache = services.product_cache
    # A consistency token names a log position, which a cached entry cannot be
    # compared with: such a read waits for the view and reads Postgres.
    if cache is not None and not positions:
        hit = await cache.get(product_id)
        if hit is not None:
            if not visible_to(hit.status, hit.seller_id, viewer_id, admin=admin):
                raise UnknownEntity("no such product")
            return answer(request, hit.body, _product_etag(hit.generation, hit.revision))
    await wait_for(services, "catalog_products", positions)
    async with services.pool.connection() as conn:
        found = await product_snapshot(conn, product_id)
    if found is None:
        raise UnknownEntity("no such product")
    body = orjson.dumps(found.document)
    if cache is not None:
        await cache.put(found, body)
    if not visible_to(found.status, found.seller_id, viewer_id, admin=admin):
        raise UnknownEntity("no such product")
    return answer(request, body, _product_etag(found.generation, found.revision))


def _product_etag(generation: int, revision: int) -> str:
    return etag("p", generation, revision, models=(ProductDetail,))


_UNTYPED = TypeAdapter(dict[str, Any])
"""How FastAPI wrote the listing's body before it had a model: the listing keeps
that (a page of products through the model cost a validation per product)."""


@router.get(
    "/products",
    response_model=ProductPage,
    responses=NOT_MODIFIED_DOCS,
    openapi_extra=CONDITIONAL_DOCS,
)
async def products(
    request: Request,
    services: Services,
    positions: Positions,
    filters: Filters,
    sort: ListSort = "newest",
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 24,
) -> Response:
    """Published products, filtered and sorted. Pass ``next_cursor`` back as
    ``cursor`` for the next page."""
    await wait_for(services, "catalog_products", positions)
    tag = None
    async with services.pool.connection() as conn:
        if not personal(request.headers):
            # Before the page: a change landing in between makes the tag older than
            # the body (the next request gets a 200), never newer.
            tag = etag("l", *await products_version(conn), models=(ProductPage,))
            if (unchanged := not_modified(request, tag)) is not None:
                return unchanged
        page = await list_products(conn, filters, sort, cursor, limit)
    body = {"items": page.items, "next_cursor": page.next_cursor}
    return answer(request, _UNTYPED.dump_json(body), tag)


class _Uncacheable(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


class _CachedSearchRoute(ParsedBodyRoute):
    """Search answers from the cache (``services.search_cache``), keyed by the raw
    query parameters: a repeated search skips FastAPI's parameter solving and
    validation too, which cost more than the rest of a hit. Nothing is stored for a
    request that was refused (its handler raised, or answered other than 200), so a
    hit is always an answer to a request that passed validation. A request with a
    consistency token (header or ``after``) skips the cache: it reads the view.
    ``If-None-Match`` is weighed here, on whatever answers (the search itself answers
    in full, so that what the cache stores is always the answer)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def cached(request: Request) -> Response:
            cache = (await services_of(request)).search_cache
            if (
                cache is None
                or "x-consistency-token" in request.headers
                or "after" in request.query_params
            ):
                return revalidated(request, await handler(request))

            async def uncached() -> bytes:
                response = await handler(request)
                if response.status_code != 200:
                    raise _Uncacheable(response)
                return bytes(response.body)

            key = orjson.dumps(sorted(request.query_params.multi_items()))
            try:
                body = await cache.fetch(key, uncached)
            except _Uncacheable as refused:
                return refused.response
            return answer(request, body, _search_etag)

        return cached


def _search_etag(body: bytes) -> str:
    return body_etag("s", body)


async def search(
    request: Request,
    services: Services,
    positions: Positions,
    filters: Filters,
    q: Annotated[str, Query(min_length=1, max_length=MAX_SEARCH_TEXT)],
    sort: SearchSort = "relevance",
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 24,
    facets: bool = True,
) -> Response:
    """Full-text search of published products: every word matches as a prefix;
    when nothing does, names similar to the text (typos) are answered, with
    ``mode: fuzzy``. The first page carries the total and the facets; with
    ``exhaustive: false``, more products match than were counted (a common word at a
    million products): the total and each facet count are lower bounds.

    With Redis, answers are cached and may trail the catalog by a second
    (``SHOP_SEARCH_CACHE_REFRESH``), as OpenSearch's do. Read-your-writes: with a
    consistency token, once ``catalog_products`` has the client's position, the
    search engine must also hold the view as it is then (OpenSearch lags the view
    by one indexer pass), within the same time bound."""
    started = time.monotonic()
    await wait_for(services, "catalog_products", positions)
    engine = services.catalog_search
    remaining = services.read_your_writes_timeout - (time.monotonic() - started)
    if positions and not await engine.wait_until_indexed(max(remaining, 0.0)):
        raise ProjectionLagging(
            "the search index has not caught up with your change yet",
            headers={"Retry-After": "1"},
        )
    try:
        result = await engine.search(q, filters, sort, cursor, limit, facets)
    except SearchUnavailable as error:
        raise SearchDown(str(error), headers={"Retry-After": "1"}) from error
    body = {
        "items": result.items,
        "next_cursor": result.next_cursor,
        "mode": result.mode,
        "total": result.total,
        "facets": result.facets,
        "exhaustive": result.exhaustive,
    }
    return full(request, orjson.dumps(body), _search_etag)


router.add_api_route(
    "/search",
    search,
    methods=["GET"],
    response_model=SearchAnswer,
    responses=NOT_MODIFIED_DOCS,
    openapi_extra=CONDITIONAL_DOCS,
    route_class_override=_CachedSearchRoute,
)


@router.get(
    "/categories",
    response_model=CategoryTree,
    responses=NOT_MODIFIED_DOCS,
    openapi_extra=CONDITIONAL_DOCS,
)
async def categories(
    request: Request, services: Services, positions: Positions, include_archived: bool = False
) -> Response:
    """The category tree: top-level categories, each with its ``children``."""
    await wait_for(services, "catalog_categories", positions)
    tag = None
    async with services.pool.connection() as conn:
        if not personal(request.headers):
            tag = etag("c", *await categories_version(conn), models=(CategoryTree,))
            if (unchanged := not_modified(request, tag)) is not None:
                return unchanged
        tree = await category_tree(conn, include_archived=include_archived)
    return answer(request, orjson.dumps({"items": tree}), tag)


@router.get("/inventory", response_model=InventoryPage)
async def inventory(
    principal: CurrentUser,
    services: Services,
    positions: Positions,
    seller_id: Annotated[UUID | None, Query(description="Admins: one seller's SKUs")] = None,
    low_only: bool = False,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Stock per SKU, by SKU: a seller sees their own products' SKUs, an admin every
    SKU (or one seller's)."""
    seller_id = seller_scope(principal, seller_id, "stock levels")
    await wait_for(services, "inventory_levels", positions)
    async with services.pool.connection() as conn:
        page = await inventory_levels(conn, seller_id, low_only=low_only, after=cursor, limit=limit)
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get(
    "/products/{product_id}/reviews", response_model=ReviewPage, response_model_exclude_unset=True
)
async def reviews(
    product_id: UUID,
    viewer: Viewer,
    services: Services,
    positions: Positions,
    include_hidden: bool = False,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """A product's reviews, newest first; the first page carries the rating
    histogram (visible reviews). Admins may ask for hidden reviews too."""
    if include_hidden and (viewer is None or not viewer.has_role(Role.ADMIN)):
        raise NotPermitted("only admins see hidden reviews")
    await wait_for(services, "product_reviews", positions)
    async with services.pool.connection() as conn:
        return await product_reviews(
            conn, product_id, include_hidden=include_hidden, after=cursor, limit=limit
        )
