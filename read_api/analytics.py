"""What admins (and sellers, of their own products) see of the analytics views.

- ``GET /admin/analytics/sales``: per day, ISO week or month and currency.
- ``GET /admin/analytics/products``, ``/categories``, ``/sellers``: sales per
  product, category or seller (a seller: their own products only), paginated.
- ``GET /admin/analytics/stop-reasons``: cancellations and rejections by reason.
- ``GET /admin/analytics/funnel``: the checkout funnel per day.
- ``GET /admin/analytics/payment-declines``: declines per method and day, codes.
- ``GET /admin/analytics/stock`` (days of cover, stock-outs per SKU) and
  ``/stock/events``: sellers see their own SKUs.

Ranges are whole UTC days, ``from`` to ``to`` inclusive (default: the last 30 days);
a range that ends before it starts, or spans more than about ten years, is a 422.
Each route waits for the consistency token it is given, as everywhere in the read
API; see ``projections.analytics.sales_queries`` for what each figure counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.exceptions import RequestValidationError

from commands.http.parsed_body import ParsedBodyRoute
from domain.access import Principal
from domain.positions import Position
from projections.analytics.funnel_queries import funnel
from projections.analytics.payment_queries import payment_declines
from projections.analytics.periods import BadRange, DateRange, Grouping, ending
from projections.analytics.sales_queries import (
    Dimension,
    DimensionQuery,
    sales_by_dimension,
    sales_by_period,
    stop_reasons,
)
from projections.analytics.stock import StockEvent
from projections.analytics.stock_queries import stock_cover, stock_events
from read_api.analytics_models import (
    DimensionPage,
    Funnel,
    PaymentDeclines,
    SalesReport,
    StockCoverPage,
    StockEventPage,
    StopReasons,
)
from read_api.deps import (
    CurrentAdmin,
    CurrentUser,
    Positions,
    ReadServices,
    Services,
    seller_scope,
    wait_for,
)

router = APIRouter(tags=["analytics"], route_class=ParsedBodyRoute)

DEFAULT_DAYS = 30
SALES, FUNNEL, PAYMENTS, STOCK = (
    "analytics_sales",
    "analytics_funnel",
    "analytics_payments",
    "analytics_stock",
)
Cursor = Annotated[str | None, Query(max_length=500, description="next_cursor of the last page")]
Limit = Annotated[int, Query(ge=1, le=200)]
Currency = Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")]
SellerId = Annotated[UUID | None, Query(description="Admins: one seller's products")]


async def _span(
    first: Annotated[
        date | None, Query(alias="from", description="First day (UTC); default: 29 days before to")
    ] = None,
    last: Annotated[
        date | None, Query(alias="to", description="Last day (UTC); default: today")
    ] = None,
) -> DateRange:
    last = last or datetime.now(UTC).date()
    try:
        return DateRange(first, last) if first else ending(last, DEFAULT_DAYS)
    except BadRange as error:
        # The same 422 problem as a malformed parameter, so clients handle one shape.
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("query", "to"), "msg": str(error)}]
        ) from error


Span = Annotated[DateRange, Depends(_span)]


@router.get("/admin/analytics/sales", response_model=SalesReport)
async def sales(
    admin: CurrentAdmin,
    services: Services,
    positions: Positions,
    span: Span,
    group: Grouping = Grouping.DAY,
    currency: Currency = None,
) -> dict[str, Any]:
    await wait_for(services, SALES, positions)
    async with services.pool.connection() as conn:
        items = await sales_by_period(conn, span, group, currency)
    return {"grouping": group.value, "first": span.first, "last": span.last, "items": items}


@dataclass(frozen=True)
class DimensionAsk:
    """What the three per-dimension routes take alike."""

    principal: Principal
    services: ReadServices
    positions: list[Position]
    span: DateRange
    currency: str | None
    seller_id: UUID | None
    cursor: str | None
    limit: int


async def _dimension_ask(
    principal: CurrentUser,
    services: Services,
    positions: Positions,
    span: Span,
    currency: Currency = None,
    seller_id: SellerId = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> DimensionAsk:
    return DimensionAsk(principal, services, positions, span, currency, seller_id, cursor, limit)


Asked = Annotated[DimensionAsk, Depends(_dimension_ask)]


async def _by_dimension(dimension: Dimension, ask: DimensionAsk) -> dict[str, Any]:
    scope = seller_scope(ask.principal, ask.seller_id, "sales figures")
    await wait_for(ask.services, SALES, ask.positions)
    async with ask.services.pool.connection() as conn:
        page = await sales_by_dimension(
            conn,
            DimensionQuery(dimension, ask.span, ask.currency, scope),
            after=ask.cursor,
            limit=ask.limit,
        )
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/admin/analytics/products", response_model=DimensionPage)
async def sales_per_product(ask: Asked) -> dict[str, Any]:
    return await _by_dimension(Dimension.PRODUCT, ask)


@router.get("/admin/analytics/categories", response_model=DimensionPage)
async def sales_per_category(ask: Asked) -> dict[str, Any]:
    return await _by_dimension(Dimension.CATEGORY, ask)


@router.get("/admin/analytics/sellers", response_model=DimensionPage)
async def sales_per_seller(ask: Asked) -> dict[str, Any]:
    return await _by_dimension(Dimension.SELLER, ask)


@router.get("/admin/analytics/stop-reasons", response_model=StopReasons)
async def cancellations_and_rejections(
    admin: CurrentAdmin, services: Services, positions: Positions, span: Span
) -> dict[str, Any]:
    await wait_for(services, SALES, positions)
    async with services.pool.connection() as conn:
        return {"items": await stop_reasons(conn, span)}


@router.get("/admin/analytics/funnel", response_model=Funnel)
async def checkout_funnel(
    admin: CurrentAdmin, services: Services, positions: Positions, span: Span
) -> dict[str, Any]:
    await wait_for(services, FUNNEL, positions)
    async with services.pool.connection() as conn:
        return await funnel(conn, span)


@router.get("/admin/analytics/payment-declines", response_model=PaymentDeclines)
async def declines(
    admin: CurrentAdmin, services: Services, positions: Positions, span: Span
) -> dict[str, Any]:
    await wait_for(services, PAYMENTS, positions)
    async with services.pool.connection() as conn:
        return await payment_declines(conn, span)


@router.get("/admin/analytics/stock", response_model=StockCoverPage)
async def stock(
    principal: CurrentUser,
    services: Services,
    positions: Positions,
    span: Span,
    seller_id: SellerId = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    """Per SKU: what is available, what was shipped in the range, the days of cover at
    the range's pace, and the range's stock-outs and low-stock alerts."""
    scope = seller_scope(principal, seller_id, "stock figures")
    await wait_for(services, STOCK, positions)
    async with services.pool.connection() as conn:
        page = await stock_cover(conn, span, seller_id=scope, after=cursor, limit=limit)
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/admin/analytics/stock/events", response_model=StockEventPage)
async def stock_event_list(
    principal: CurrentUser,
    services: Services,
    positions: Positions,
    span: Span,
    kind: StockEvent | None = None,
    seller_id: SellerId = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    scope = seller_scope(principal, seller_id, "stock figures")
    await wait_for(services, STOCK, positions)
    async with services.pool.connection() as conn:
        page = await stock_events(conn, span, kind=kind, seller_id=scope, after=cursor, limit=limit)
    return {"items": page.items, "next_cursor": page.next_cursor}
