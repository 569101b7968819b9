"""What the catalog's queries answer (``read_api.catalog``), for the OpenAPI document.

The models describe the bodies exactly, key by key: no other key is answered
(``additionalProperties: false``). Product detail, listing and search build their
bodies themselves (a cached one is stored bytes), so these models document them and
validate nothing at run time; the other routes' answers are validated against them.
Amounts and averages are exact decimal strings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from domain.catalog import ProductStatus

DecimalText = Annotated[str, Field(pattern=r"^-?[0-9]+(\.[0-9]+)?$", examples=["19.99"])]
"""An exact amount, as text (never a float)."""
Histogram = Annotated[
    dict[str, int],
    Field(description='Reviews per number of stars, "1" to "5"', examples=[{"1": 0, "5": 2}]),
]


class Answer(BaseModel):
    """A body of the read API: exactly these keys."""

    model_config = ConfigDict(extra="forbid")


class Money(Answer):
    amount: DecimalText
    currency: str = Field(description="ISO 4217 code")


# --- products --------------------------------------------------------------------------


class Stock(Answer):
    available: int = Field(description="On hand less reserved, never below 0")
    in_stock: bool


class StockDetail(Stock):
    on_hand: int
    reserved: int = Field(description="Held by orders not yet shipped")


class Rating(Answer):
    count: int = Field(description="Visible reviews")
    average: DecimalText | None = Field(description="Of the visible reviews; null with none")


class RatingDetail(Rating):
    histogram: Histogram


class ProductListing(Answer):
    """A product in a listing or a search."""

    id: UUID
    seller_id: UUID
    sku: str
    name: str
    attributes: dict[str, str]
    images: list[str]
    status: ProductStatus
    category_ids: list[UUID]
    created_at: datetime
    updated_at: datetime
    price: Money | None = Field(description="Null until the seller prices the product")
    stock: Stock
    rating: Rating


class ProductDetail(Answer):
    """A product's page: its description, its stock in full and its rating histogram."""

    id: UUID
    seller_id: UUID
    sku: str
    name: str
    description: str
    attributes: dict[str, str]
    images: list[str]
    status: ProductStatus
    category_ids: list[UUID]
    created_at: datetime
    updated_at: datetime
    price: Money | None = Field(description="Null until the seller prices the product")
    stock: StockDetail
    rating: RatingDetail


class ProductPage(Answer):
    items: list[ProductListing]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null: last")


# --- search ----------------------------------------------------------------------------


class CategoryFacet(Answer):
    id: UUID
    name: str | None = Field(description="Null for a category the catalog no longer names")
    count: int


class PriceBucket(Answer):
    min: DecimalText
    max: DecimalText | None = Field(description="Null: the last bucket, open above")
    count: int


class PriceFacet(Answer):
    currency: str
    buckets: list[PriceBucket]


class RatingFacet(Answer):
    min: int = Field(description="Products rated at least this many stars")
    count: int


class Facets(Answer):
    categories: list[CategoryFacet]
    price: list[PriceFacet]
    rating: list[RatingFacet]


class SearchAnswer(Answer):
    items: list[ProductListing]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null: last")
    mode: Literal["exact", "fuzzy"] = Field(
        description="exact: every word matched as a prefix; fuzzy: typos corrected"
    )
    total: int | None = Field(description="With the first page (and facets) only")
    facets: Facets | None = Field(description="With the first page only, unless facets=false")
    exhaustive: bool = Field(description="False: total and facet counts are lower bounds")


# --- categories ------------------------------------------------------------------------


class CategoryNode(Answer):
    id: UUID
    name: str
    parent_id: UUID | None
    path: list[UUID] = Field(description="The ids from the top-level category to this one")
    archived: bool
    children: list[CategoryNode]


class CategoryTree(Answer):
    items: list[CategoryNode] = Field(description="The top-level categories")


# --- inventory -------------------------------------------------------------------------


class InventoryLevel(Answer):
    sku: str
    product_id: UUID | None = Field(description="Null for stock received before its product")
    seller_id: UUID | None
    product_name: str | None
    on_hand: int
    reserved: int
    available: int = Field(description="On hand less reserved")
    low_stock_threshold: int | None
    low_since: datetime | None
    updated_at: datetime | None
    low_stock: bool


class InventoryPage(Answer):
    items: list[InventoryLevel]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null: last")


# --- reviews ---------------------------------------------------------------------------


class Review(Answer):
    review_id: UUID
    product_id: UUID
    author_id: UUID
    rating: int = Field(ge=1, le=5)
    title: str
    body: str
    verified_purchase: bool
    reply: str | None = Field(description="The seller's reply")
    replied_at: datetime | None
    created_at: datetime
    updated_at: datetime
    # Answered only to an admin's include_hidden=true: without it, every review
    # answered is visible.
    hidden: bool = Field(default=False, description="Only with include_hidden=true")
    hidden_reason: str | None = Field(default=None, description="Only with include_hidden=true")


class ReviewSummary(Answer):
    count: int = Field(description="Visible reviews")
    average: DecimalText | None = Field(description="Null with no visible review")
    histogram: Histogram


class ReviewPage(Answer):
    items: list[Review]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null: last")
    summary: ReviewSummary | None = Field(description="With the first page only")
