"""Request bodies of the carts, checkout and orders API. Unknown fields are refused
(422): a client cannot send prices or lines to checkout, which takes both from the
cart and the catalog."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import Field, StringConstraints

from commands.catalog.http.schemas import Price
from commands.users.http.schemas import EXACT, Body
from domain.lines import MAX_LINE_QUANTITY
from domain.order_fields import (
    MAX_ADDRESS_FIELD,
    MAX_ADDRESS_FIELDS,
    MAX_CARRIER,
    MAX_REASON,
    MAX_TRACKING_NUMBER,
)

LineQuantity = Annotated[int, Field(strict=True, ge=1, le=MAX_LINE_QUANTITY)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_REASON)]
RequiredReason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_REASON)
]
PaymentMethodToken = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9_\-]{3,255}$"),
    Field(description="A payment method id or token from the provider (pm_..., tok_...)"),
    EXACT,
]
AddressField = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ADDRESS_FIELD)]


class CartLine(Body):
    product_id: UUID
    quantity: LineQuantity


class CartQuantity(Body):
    quantity: LineQuantity


class CartMerge(Body):
    cart_token: Annotated[str, StringConstraints(min_length=1, max_length=100), EXACT]


class Checkout(Body):
    shipping_address: Annotated[
        dict[Annotated[str, StringConstraints(min_length=1, max_length=40)], AddressField],
        Field(min_length=1, max_length=MAX_ADDRESS_FIELDS),
    ]
    payment_method: PaymentMethodToken


class ShopperCancellation(Body):
    reason: Reason = ""


class AdminCancellation(Body):
    reason: RequiredReason


class ReturnRequest(Body):
    reason: RequiredReason


class ReturnRefusal(Body):
    reason: RequiredReason


class Shipment(Body):
    carrier: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_CARRIER)
    ]
    tracking_number: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TRACKING_NUMBER)
    ]


class Refund(Body):
    amount: Price | None = Field(
        default=None, description="Omit to refund everything captured and not yet refunded"
    )
    reason: RequiredReason
