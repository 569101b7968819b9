"""What the analytics queries answer (``read_api.analytics``), for the OpenAPI
document; each answer is validated against its model, key by key. Amounts are exact
decimal strings beside their ``currency`` (never summed across currencies); rates
are decimal strings to four places, null when there is nothing to divide by."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from pydantic import Field

from read_api.catalog_models import Answer
from read_api.ordering_models import NextCursor

Rate = Annotated[
    Decimal | None, Field(description="A ratio to four places; null: nothing to divide by")
]


class PeriodSales(Answer):
    period: str = Field(examples=["2026-12-07", "2026-W50", "2026-12"])
    period_start: date
    currency: str
    placed: int = Field(description="Orders placed in the period, whatever became of them")
    orders: int = Field(description="Sales: confirmed, and not cancelled before capture")
    units: int
    gross: Decimal
    refunded: Decimal = Field(description="Refunded of these orders, at any time since")
    net: Decimal = Field(description="gross - refunded")
    average_order_value: Decimal | None = Field(description="gross / orders, to the minor unit")
    refunded_orders: int
    refund_rate: Rate
    returned_orders: int
    return_rate: Rate
    cancelled: int
    cancellation_rate: Rate = Field(description="cancelled / placed")
    rejected: int
    rejection_rate: Rate = Field(description="rejected / placed")


class SalesReport(Answer):
    grouping: str
    first: date
    last: date
    items: list[PeriodSales] = Field(description="Per period and currency, oldest first")


class DimensionSales(Answer):
    key: str | None = Field(description="The product, category or seller id")
    name: str | None
    currency: str
    orders: int
    units: int
    gross: Decimal
    returned_units: int


class DimensionPage(Answer):
    items: list[DimensionSales] = Field(description="By currency, then the largest gross first")
    next_cursor: NextCursor


class StopReason(Answer):
    kind: str = Field(examples=["cancelled", "rejected"])
    by_admin: bool | None = Field(description="Cancellations: an admin's, or the shopper's")
    reason: str
    orders: int


class StopReasons(Answer):
    items: list[StopReason] = Field(description="The most frequent first")


class FunnelSteps(Answer):
    carts_created: int
    carts_with_line: int
    checkouts_started: int
    orders_confirmed: int
    orders_shipped: int
    orders_delivered: int
    orders_returned: int


class FunnelFigures(Answer):
    steps: FunnelSteps
    conversions: dict[str, Decimal | None] = Field(
        description="'<step>-><next step>': the next step's count over this one's"
    )


class FunnelDay(FunnelFigures):
    day: date


class Funnel(Answer):
    days: list[FunnelDay]
    total: FunnelFigures


class DeclineDay(Answer):
    day: date
    method: str = Field(description="The payment gateway", examples=["sandbox", "stripe"])
    attempts: int
    authorized: int
    declined: int
    decline_rate: Rate


class DeclineCode(Answer):
    method: str
    code: str | None
    declined: int


class PaymentDeclines(Answer):
    days: list[DeclineDay]
    codes: list[DeclineCode] = Field(description="The most frequent first")


class StockCover(Answer):
    sku: str
    item_id: UUID
    product_id: UUID | None
    seller_id: UUID | None
    on_hand: int
    reserved: int
    available: int
    shipped: int = Field(description="Units shipped in the range")
    days_of_cover: Decimal | None = Field(
        description="available / (shipped / days in the range); null: nothing shipped"
    )
    stock_outs: int = Field(description="Times available stock fell to zero in the range")
    low_stock_alerts: int
    last_stock_out: datetime | None


class StockCoverPage(Answer):
    items: list[StockCover] = Field(description="By SKU")
    next_cursor: NextCursor


class StockEventEntry(Answer):
    at: datetime
    item_id: UUID
    version: int
    sku: str
    kind: str = Field(examples=["stock_out", "restocked", "low_stock"])
    available: int
    threshold: int | None
    product_id: UUID | None
    seller_id: UUID | None


class StockEventPage(Answer):
    items: list[StockEventEntry] = Field(description="Oldest first")
    next_cursor: NextCursor
