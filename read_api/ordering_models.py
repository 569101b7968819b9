"""What the carts, orders and payments queries answer (``read_api.ordering``), for the
OpenAPI document; each answer is validated against its model, key by key (no other
key is answered). Amounts are exact decimal strings, in money objects
(``{"amount", "currency"}``) or beside the order's or payment's ``currency``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from pydantic import Field

from domain.order_status import OrderStatus
from domain.payments import PaymentStatus
from read_api.actor_models import ActorAnswer
from read_api.catalog_models import Answer, Money

IsoTimestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
"""A time as the cart view stores it: ISO 8601 text with its offset."""
NextCursor = Annotated[
    str | None, Field(description="Pass as cursor for the next page; null: last")
]


# --- carts -----------------------------------------------------------------------------


class CartEntry(Answer):
    product_id: UUID
    sku: str
    quantity: int
    unit_price: Money
    line_total: Money


class PriceChange(Answer):
    sku: str
    previous: Money
    current: Money | None = Field(description="Null: the product can no longer be bought")


class Cart(Answer):
    cart_id: UUID
    lines: list[CartEntry]
    price_changes: list[PriceChange] = Field(
        description="Lines whose price moved at the last checkout attempt, until the cart changes"
    )
    merged_into: UUID | None = Field(description="The cart a guest cart was merged into")
    last_order_id: UUID | None
    currency: str | None = Field(description="Null while the cart is empty")
    total: Money | None = Field(description="Null while the cart is empty")
    version: int = Field(description="0: a cart with nothing done to it yet")
    updated_at: IsoTimestamp | None


# --- orders ----------------------------------------------------------------------------


class OrderLine(Answer):
    product_id: UUID
    sku: str
    quantity: int
    unit_price: Money


class Authentication(Answer):
    """What the shopper needs to authenticate the payment (3-D Secure, PayPal approval)."""

    payment_reference: str
    client_secret: str | None
    approval_url: str | None


class Order(Answer):
    order_id: UUID
    customer_id: UUID
    status: OrderStatus
    currency: str
    total: Decimal
    captured: Decimal
    refunded: Decimal
    lines: list[OrderLine]
    shipping_address: dict[str, str]
    payment_reference: str | None
    authentication: Authentication | None = Field(
        description="While the order awaits authentication"
    )
    rejection_reason: str | None
    cancellation_reason: str | None
    carrier: str | None
    tracking_number: str | None
    placed_at: datetime
    delivered_at: datetime | None
    updated_at: datetime


class TimelineEntry(Answer):
    status: OrderStatus
    at: datetime
    note: str
    actor: ActorAnswer = Field(
        description="Who acted (unknown: recorded before actors were). A shopper sees "
        "the kind only, but for their own acts; an admin sees all"
    )


class OrderDetail(Order):
    timeline: list[TimelineEntry] = Field(description="Oldest first")


class OrderPage(Answer):
    items: list[Order]
    next_cursor: NextCursor


# --- payments --------------------------------------------------------------------------


class PaymentFact(Answer):
    """One fact the gateway reported on a payment."""

    kind: str = Field(examples=["requested", "authorized", "captured", "refunded"])
    amount: Decimal | None
    reference: str | None
    gateway_event_id: str | None
    note: str | None
    at: datetime


class Payment(Answer):
    payment_id: UUID
    order_id: UUID
    customer_id: UUID
    gateway: str
    capture_mode: str
    status: PaymentStatus
    currency: str
    amount: Decimal
    authorized: Decimal
    captured: Decimal
    refunded: Decimal
    reference: str | None
    failure_code: str | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime
    history: list[PaymentFact] = Field(description="Oldest first")


class PaymentPage(Answer):
    items: list[Payment]
    next_cursor: NextCursor


class OrderPayments(Answer):
    items: list[Payment]
