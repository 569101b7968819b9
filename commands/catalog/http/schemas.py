"""Request bodies of the catalog, inventory and reviews write API.

Money never passes through a float: JSON numbers arrive as ``Decimal``
(``commands.http.parsed_body``), and an amount is accepted as a string in
plain decimal notation (``"19.99"``, the recommended form) or as a JSON number
without an exponent. ``NaN`` and ``Infinity`` are not JSON and are refused (400).
Counts (quantities, deltas, thresholds, ratings) are strict whole numbers: ``5.0``,
``"5"`` and ``true`` are refused rather than guessed at. Unknown fields are refused
(422) as everywhere in the write API; text bounds mirror the domain's, so an
oversized field is refused before anything is loaded.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from pydantic import BeforeValidator, Field, StringConstraints, model_validator

from commands.http.parsed_body import ExponentDecimal
from commands.users.http.schemas import Body
from domain.catalog import (
    MAX_ATTRIBUTE_VALUE,
    MAX_ATTRIBUTES,
    MAX_CATEGORIES_PER_PRODUCT,
    MAX_DESCRIPTION,
    MAX_IMAGES,
    MAX_NAME,
    MAX_URL,
)
from domain.categories import MAX_CATEGORY_NAME
from domain.inventory import MAX_QUANTITY, MAX_REASON
from domain.money import Money
from domain.reviews import MAX_BODY, MAX_HIDE_REASON, MAX_REPLY, MAX_TITLE

# --- field types ------------------------------------------------------------------------

_PLAIN_DECIMAL = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,20})?")


def _exact_amount(value: object) -> Decimal:
    """A string in plain decimal notation, a whole number, or a JSON number without an
    exponent, as an exact Decimal. Range and precision are Money's to judge."""
    if isinstance(value, bool):
        raise ValueError('the amount must be a decimal number such as "19.99"')
    if isinstance(value, str):
        text = value.strip()
        if _PLAIN_DECIMAL.fullmatch(text) is None:
            raise ValueError(
                'the amount must be a decimal number such as "19.99", without exponent'
            )
        return Decimal(text)
    if isinstance(value, ExponentDecimal):
        raise ValueError('the amount must not be written with an exponent: send "19.99"')
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("the amount must be a finite number")
        return value
    # float never arrives through ParsedBodyRoute; refuse it anywhere else.
    raise ValueError('the amount must be a decimal number such as "19.99"')


Amount = Annotated[
    Decimal,
    BeforeValidator(_exact_amount),
    Field(description='A decimal amount, preferably as a string: "19.99"'),
]
Currency = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=3),
    Field(description="ISO 4217 code, e.g. EUR"),
]
Text = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION)]
ProductName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME)]
CategoryName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CATEGORY_NAME)]
Sku = Annotated[str, StringConstraints(min_length=1, max_length=64)]
AttributeKey = Annotated[str, StringConstraints(min_length=1, max_length=40)]
AttributeValue = Annotated[str, StringConstraints(max_length=MAX_ATTRIBUTE_VALUE)]
Attributes = Annotated[dict[AttributeKey, AttributeValue], Field(max_length=MAX_ATTRIBUTES)]
ImageUrl = Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL)]
Images = Annotated[list[ImageUrl], Field(max_length=MAX_IMAGES)]
Quantity = Annotated[int, Field(strict=True, ge=1, le=MAX_QUANTITY)]
Delta = Annotated[int, Field(strict=True, ge=-MAX_QUANTITY, le=MAX_QUANTITY)]
Threshold = Annotated[int, Field(strict=True, ge=0, le=MAX_QUANTITY)]
Rating = Annotated[int, Field(strict=True, ge=1, le=5, description="Whole stars, 1 to 5")]
AdjustmentReason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_REASON)
]
ReplyText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_REPLY)
]
HideReason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_HIDE_REASON)
]


# --- products ---------------------------------------------------------------------------


class Price(Body):
    amount: Amount
    currency: Currency

    @model_validator(mode="after")
    def _valid_money(self) -> Price:
        self.money()  # InvalidMoney is a ValueError: a 422 naming what is wrong
        return self

    def money(self) -> Money:
        return Money.of(self.amount, self.currency)


class NewProduct(Body):
    sku: Sku
    name: ProductName
    description: Text = ""
    attributes: Attributes = Field(default_factory=dict)
    images: Images = Field(default_factory=list)
    price: Price | None = None
    seller_id: UUID | None = Field(
        default=None, description="Admins only: the seller it is for (default: oneself)"
    )


class ProductDetails(Body):
    name: ProductName | None = None
    description: Text | None = None
    attributes: Attributes | None = Field(default=None, description="Replaced whole")
    images: Images | None = Field(default=None, description="Replaced whole")

    @model_validator(mode="after")
    def _something_to_change(self) -> ProductDetails:
        given = {k for k in self.model_fields_set if getattr(self, k) is not None}
        if not given:
            raise ValueError("give at least one of name, description, attributes, images")
        return self


class ProductCategories(Body):
    category_ids: Annotated[list[UUID], Field(max_length=MAX_CATEGORIES_PER_PRODUCT)]


# --- categories -------------------------------------------------------------------------


class NewCategory(Body):
    name: CategoryName
    parent_id: UUID | None = Field(default=None, description="None: a top-level category")


class CategoryRename(Body):
    name: CategoryName


class CategoryMove(Body):
    parent_id: UUID | None = Field(description="The new parent; null: the top level")


# --- inventory --------------------------------------------------------------------------


class StockReceipt(Body):
    quantity: Quantity


class StockAdjustment(Body):
    delta: Delta = Field(description="Units gained (positive) or lost (negative), not 0")
    reason: AdjustmentReason

    @model_validator(mode="after")
    def _non_zero(self) -> StockAdjustment:
        if self.delta == 0:
            raise ValueError("an adjustment is a non-zero number of units")
        return self


class LowStockThreshold(Body):
    threshold: Threshold | None = Field(
        description="Alert when available stock drops to this or below; null: never"
    )


# --- reviews ----------------------------------------------------------------------------


class NewReview(Body):
    rating: Rating
    title: Annotated[str, StringConstraints(max_length=MAX_TITLE)] = ""
    body: Annotated[str, StringConstraints(max_length=MAX_BODY)] = ""


class ReviewChanges(Body):
    rating: Rating | None = None
    title: Annotated[str, StringConstraints(max_length=MAX_TITLE)] | None = None
    body: Annotated[str, StringConstraints(max_length=MAX_BODY)] | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> ReviewChanges:
        if not any(getattr(self, k) is not None for k in self.model_fields_set):
            raise ValueError("give at least one of rating, title, body")
        return self


class ReviewReply(Body):
    body: ReplyText


class ReviewHiding(Body):
    reason: HideReason
