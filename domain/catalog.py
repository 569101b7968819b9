"""The catalog: products, and the SKU claims that keep SKUs unique.

Rules (each enforced here, so no caller can forget them):

- Who: a seller manages their own products (the principal is the product's seller
  and still holds the seller role); an admin manages every product and is the only
  one who manages categories. Anyone else gets ``NotPermitted``.
- A product is created as a draft. Publishing needs a price and at least one
  category: a published product must be purchasable and reachable by browsing (its
  name is never empty, so that needs no check). While published it keeps at least
  one category; unpublish it first to clear them. Publishing again, unpublishing
  something not published and archiving twice change nothing (safe to retry).
- Archived products refuse every other change (archiving is final: the SKU stays
  claimed by the archived product, so its stock history is never re-attributed).
- A product's SKU is fixed at creation and unique across the catalog: a
  ``SkuClaim`` with an id derived from the SKU is saved atomically with the
  product, so a second product with the same SKU fails on the event store's
  uniqueness constraint, like ``EmailIndex`` for users.
- Categories live in ``domain.categories``; a product names the ones it is in.

Text is stripped; names and attribute entries are single lines; nothing may contain
NUL or other control characters (a description may hold tabs and newlines).
Attribute keys are lower-case slugs (they become facet and index field names).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.access import Principal
from domain.errors import DomainError, NotPermitted
from domain.money import Money, normalise_sku
from domain.text import single_line
from domain.users import Role

MAX_NAME = 200
MAX_DESCRIPTION = 20_000
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_VALUE = 200
MAX_IMAGES = 20
MAX_URL = 2_048
MAX_CATEGORIES_PER_PRODUCT = 20

_ATTRIBUTE_KEY = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_TEXT_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class ProductStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    UNPUBLISHED = "unpublished"
    ARCHIVED = "archived"


# --- errors -------------------------------------------------------------------------


class InvalidProduct(DomainError, ValueError):
    """A product field is malformed or out of bounds."""

    code = "invalid-product"


class ProductArchived(DomainError):
    """The product is archived and can no longer change."""

    code = "product-archived"


class NotPublishable(DomainError):
    """The product lacks what a published product needs (a price, a category)."""

    code = "product-not-publishable"


class SkuTaken(DomainError):
    """Another product already has this SKU."""

    code = "sku-taken"


# --- validation ---------------------------------------------------------------------


def valid_name(name: object) -> str:
    return single_line("name", name, MAX_NAME, InvalidProduct)


def valid_description(description: object) -> str:
    if not isinstance(description, str):
        raise InvalidProduct("description must be text")
    text = description.strip()
    if len(text) > MAX_DESCRIPTION:
        raise InvalidProduct(f"description must be at most {MAX_DESCRIPTION:,} characters")
    if _TEXT_FORBIDDEN.search(text):
        raise InvalidProduct("description must not contain control characters")
    return text


def valid_attributes(attributes: object) -> dict[str, str]:
    if not isinstance(attributes, Mapping):
        raise InvalidProduct("attributes must be an object of names to text values")
    if len(attributes) > MAX_ATTRIBUTES:
        raise InvalidProduct(f"at most {MAX_ATTRIBUTES} attributes")
    result: dict[str, str] = {}
    for raw_key, raw_value in attributes.items():
        key = raw_key.strip().lower() if isinstance(raw_key, str) else ""
        if _ATTRIBUTE_KEY.fullmatch(key) is None:
            raise InvalidProduct(
                "attribute names are 1-40 characters of a-z, 0-9, '_' and '-': "
                f"{str(raw_key)[:50]!r}"
            )
        if key in result:
            raise InvalidProduct(f"attribute {key!r} is given twice")
        result[key] = single_line(
            f"attribute {key!r}", raw_value, MAX_ATTRIBUTE_VALUE, InvalidProduct
        )
    return dict(sorted(result.items()))


def valid_image_url(url: object) -> str:
    text = single_line("an image URL", url, MAX_URL, InvalidProduct)
    if any(c.isspace() for c in text):
        raise InvalidProduct("an image URL must not contain spaces")
    try:
        parts = urlsplit(text)
        hostname = parts.hostname
    except ValueError as error:
        raise InvalidProduct(f"not a URL: {text[:80]!r}") from error
    if parts.scheme.lower() not in {"http", "https"} or not hostname:
        raise InvalidProduct(f"image URLs must be absolute http(s) URLs: {text[:80]!r}")
    if parts.username is not None or parts.password is not None:
        raise InvalidProduct("image URLs must not carry credentials")
    return text


def valid_images(images: object) -> list[str]:
    if isinstance(images, str | bytes) or not isinstance(images, Iterable):
        raise InvalidProduct("images must be a list of URLs")
    urls = [valid_image_url(url) for url in images]
    if len(urls) > MAX_IMAGES:
        raise InvalidProduct(f"at most {MAX_IMAGES} images")
    if len(set(urls)) != len(urls):
        raise InvalidProduct("the same image URL is given twice")
    return urls


def valid_category_ids(category_ids: Iterable[UUID]) -> list[UUID]:
    ids = set(category_ids)
    if not all(isinstance(i, UUID) for i in ids):
        raise InvalidProduct("category ids must be UUIDs")
    if len(ids) > MAX_CATEGORIES_PER_PRODUCT:
        raise InvalidProduct(f"a product is in at most {MAX_CATEGORIES_PER_PRODUCT} categories")
    return sorted(ids, key=str)


# --- who may do what ------------------------------------------------------------------


def require_can_create_product(principal: Principal, seller_id: UUID) -> None:
    """A seller creates products for themself; an admin for any seller."""
    if principal.has_role(Role.ADMIN):
        return
    if not principal.has_role(Role.SELLER):
        raise NotPermitted("only sellers and admins create products")
    if principal.user_id != seller_id:
        raise NotPermitted("sellers create products only for themselves")


# --- products -------------------------------------------------------------------------


class Product(Aggregate):
    """Something a seller offers. Created through ``create_product``, which validates."""

    class Created(Aggregate.Created):
        seller_id: UUID
        sku: str
        name: str
        description: str
        attributes: dict[str, str]
        images: list[str]
        price: dict[str, str] | None
        by: UUID

    class DetailsUpdated(Aggregate.Event):
        changes: dict[str, Any]
        by: UUID

    class PriceChanged(Aggregate.Event):
        price: dict[str, str]
        by: UUID

    class Categorised(Aggregate.Event):
        category_ids: list[UUID]
        by: UUID

    class Published(Aggregate.Event):
        by: UUID

    class Unpublished(Aggregate.Event):
        by: UUID

    class Archived(Aggregate.Event):
        by: UUID

    @event(Created)
    def __init__(
        self,
        id: UUID,
        seller_id: UUID,
        sku: str,
        name: str,
        description: str,
        attributes: dict[str, str],
        images: list[str],
        price: dict[str, str] | None,
        by: UUID,
    ) -> None:
        self.seller_id = seller_id
        self.sku = sku
        self.name = name
        self.description = description
        self.attributes = dict(attributes)
        self.images = list(images)
        # The payload form ({"amount": "9.99", "currency": "EUR"}), so that snapshots
        # need no custom transcoding; ``price`` gives the Money.
        self.price_data: dict[str, str] | None = dict(price) if price is not None else None
        self.category_ids: list[UUID] = []
        self.status: str = ProductStatus.DRAFT.value

    @property
    def price(self) -> Money | None:
        return Money.from_dict(self.price_data) if self.price_data is not None else None

    @property
    def is_published(self) -> bool:
        return self.status == ProductStatus.PUBLISHED.value

    @property
    def is_archived(self) -> bool:
        return self.status == ProductStatus.ARCHIVED.value

    # --- authorisation ------------------------------------------------------------

    def may_manage(self, principal: Principal) -> bool:
        if principal.has_role(Role.ADMIN):
            return True
        return principal.user_id == self.seller_id and principal.has_role(Role.SELLER)

    def require_can_manage(self, principal: Principal) -> None:
        if not self.may_manage(principal):
            raise NotPermitted("only the product's seller or an admin may change it")

    def _require_changeable(self, principal: Principal) -> None:
        self.require_can_manage(principal)
        if self.is_archived:
            raise ProductArchived("this product is archived and can no longer change")

    # --- details ------------------------------------------------------------------

    def update_details(
        self,
        principal: Principal,
        *,
        name: str | None = None,
        description: str | None = None,
        attributes: Mapping[str, str] | None = None,
        images: Iterable[str] | None = None,
    ) -> None:
        """Change any of the given fields (None leaves a field as it is); records only
        what actually changes."""
        self._require_changeable(principal)
        proposed: dict[str, Any] = {}
        if name is not None:
            proposed["name"] = valid_name(name)
        if description is not None:
            proposed["description"] = valid_description(description)
        if attributes is not None:
            proposed["attributes"] = valid_attributes(attributes)
        if images is not None:
            proposed["images"] = valid_images(images)
        changes = {k: v for k, v in proposed.items() if getattr(self, k) != v}
        if changes:
            self._details_updated(changes=changes, by=principal.user_id)

    @event(DetailsUpdated)
    def _details_updated(self, changes: dict[str, Any], by: UUID) -> None:
        for field, value in changes.items():
            setattr(self, field, value)

    def change_price(self, principal: Principal, price: Money) -> None:
        self._require_changeable(principal)
        if not isinstance(price, Money):
            raise InvalidProduct("a price is an amount with a currency")
        if price.to_dict() != self.price_data:
            self._price_changed(price=price.to_dict(), by=principal.user_id)

    @event(PriceChanged)
    def _price_changed(self, price: dict[str, str], by: UUID) -> None:
        self.price_data = dict(price)

    def categorise(self, principal: Principal, category_ids: Iterable[UUID]) -> None:
        """Put the product in exactly these categories. The caller checks that they
        exist and are not archived (that needs the categories themselves)."""
        self._require_changeable(principal)
        ids = valid_category_ids(category_ids)
        if not ids and self.is_published:
            raise NotPublishable(
                "a published product stays in at least one category: unpublish it first"
            )
        if ids != self.category_ids:
            self._categorised(category_ids=ids, by=principal.user_id)

    @event(Categorised)
    def _categorised(self, category_ids: list[UUID], by: UUID) -> None:
        self.category_ids = list(category_ids)

    # --- lifecycle ----------------------------------------------------------------

    def publish(self, principal: Principal) -> None:
        self._require_changeable(principal)
        if self.is_published:
            return
        missing = [
            what
            for what, present in (("a price", self.price_data), ("a category", self.category_ids))
            if not present
        ]
        if missing:
            raise NotPublishable(f"a product needs {' and '.join(missing)} to be published")
        self._published(by=principal.user_id)

    @event(Published)
    def _published(self, by: UUID) -> None:
        self.status = ProductStatus.PUBLISHED.value

    def unpublish(self, principal: Principal) -> None:
        self._require_changeable(principal)
        if self.is_published:
            self._unpublished(by=principal.user_id)

    @event(Unpublished)
    def _unpublished(self, by: UUID) -> None:
        self.status = ProductStatus.UNPUBLISHED.value

    def archive(self, principal: Principal) -> None:
        self.require_can_manage(principal)
        if not self.is_archived:
            self._archived(by=principal.user_id)

    @event(Archived)
    def _archived(self, by: UUID) -> None:
        self.status = ProductStatus.ARCHIVED.value


def create_product(
    principal: Principal,
    product_id: UUID,
    seller_id: UUID,
    sku: str,
    name: str,
    description: str = "",
    attributes: Mapping[str, str] | None = None,
    images: Iterable[str] | None = None,
    price: Money | None = None,
) -> Product:
    """A new draft product, after checking who asks and every field."""
    require_can_create_product(principal, seller_id)
    if price is not None and not isinstance(price, Money):
        raise InvalidProduct("a price is an amount with a currency")
    return Product(
        id=product_id,
        seller_id=seller_id,
        sku=normalise_sku(sku),
        name=valid_name(name),
        description=valid_description(description),
        attributes=valid_attributes(attributes or {}),
        images=valid_images(images or []),
        price=price.to_dict() if price is not None else None,
        by=principal.user_id,
    )


class SkuClaim(Aggregate):
    """Claims a SKU for one product; saved atomically with that product."""

    @staticmethod
    def create_id(sku: str) -> UUID:
        return sku_claim_id(sku)

    class Claimed(Aggregate.Created):
        sku: str
        product_id: UUID

    @event(Claimed)
    def __init__(self, sku: str, product_id: UUID) -> None:
        self.sku = normalise_sku(sku)
        self.product_id = product_id


def sku_claim_id(sku: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"/eventshop/catalog/skus/{normalise_sku(sku)}")
