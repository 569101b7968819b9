"""Products and the category tree: sellers manage their own products, admins every
product and the categories. Who may do what is the domain's to decide (403
``not-permitted``); the edge checks the shape of the input."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from commands.catalog.http.deps import Services
from commands.catalog.http.schemas import (
    CategoryMove,
    CategoryRename,
    NewCategory,
    NewProduct,
    Price,
    ProductCategories,
    ProductDetails,
)
from commands.http.deps import CurrentAdmin, CurrentUser, IdempotencyKey
from commands.http.parsed_body import ParsedBodyRoute
from commands.http.responses import respond_idempotently, respond_written
from commands.users.http.schemas import WrittenOut

products = APIRouter(prefix="/products", tags=["catalog"], route_class=ParsedBodyRoute)
categories = APIRouter(prefix="/categories", tags=["catalog"], route_class=ParsedBodyRoute)


# --- products -------------------------------------------------------------------------


@products.post("", status_code=201, response_model=WrittenOut)
def create_product(
    body: NewProduct, principal: CurrentUser, services: Services, idempotency: IdempotencyKey
) -> JSONResponse:
    """A draft product for oneself (sellers) or for any seller (admins, ``seller_id``).
    With an ``Idempotency-Key``, a retry answers the first product."""

    return respond_idempotently(
        idempotency,
        body,
        lambda: services.catalog.create_product(
            principal,
            idempotency.new_id(),
            body.seller_id or principal.user_id,
            body.sku,
            body.name,
            body.description,
            body.attributes,
            body.images,
            body.price.money() if body.price is not None else None,
        ),
    )


@products.patch("/{product_id}", response_model=WrittenOut)
def update_product(
    product_id: UUID, body: ProductDetails, principal: CurrentUser, services: Services
) -> JSONResponse:
    """Change any of name, description, attributes and images (lists and maps are
    replaced whole)."""
    return respond_written(
        services.catalog.update_details(
            principal,
            product_id,
            name=body.name,
            description=body.description,
            attributes=body.attributes,
            images=body.images,
        )
    )


@products.put("/{product_id}/price", response_model=WrittenOut)
def change_price(
    product_id: UUID, body: Price, principal: CurrentUser, services: Services
) -> JSONResponse:
    return respond_written(services.catalog.change_price(principal, product_id, body.money()))


@products.put("/{product_id}/categories", response_model=WrittenOut)
def categorise(
    product_id: UUID, body: ProductCategories, principal: CurrentUser, services: Services
) -> JSONResponse:
    """Put the product in exactly these categories."""
    return respond_written(services.catalog.categorise(principal, product_id, body.category_ids))


@products.post("/{product_id}/publish", response_model=WrittenOut)
def publish(product_id: UUID, principal: CurrentUser, services: Services) -> JSONResponse:
    """Needs a price and a category. Publishing a published product changes nothing."""
    return respond_written(services.catalog.publish(principal, product_id))


@products.post("/{product_id}/unpublish", response_model=WrittenOut)
def unpublish(product_id: UUID, principal: CurrentUser, services: Services) -> JSONResponse:
    return respond_written(services.catalog.unpublish(principal, product_id))


@products.post("/{product_id}/archive", response_model=WrittenOut)
def archive(product_id: UUID, principal: CurrentUser, services: Services) -> JSONResponse:
    """Final: an archived product refuses every further change."""
    return respond_written(services.catalog.archive(principal, product_id))


# --- categories -----------------------------------------------------------------------


@categories.post("", status_code=201, response_model=WrittenOut)
def create_category(
    body: NewCategory, admin: CurrentAdmin, services: Services, idempotency: IdempotencyKey
) -> JSONResponse:
    """A category under ``parent_id`` or at the top level."""

    return respond_idempotently(
        idempotency,
        body,
        lambda: services.catalog.create_category(
            admin, idempotency.new_id(), body.name, body.parent_id
        ),
    )


@categories.patch("/{category_id}", response_model=WrittenOut)
def rename_category(
    category_id: UUID, body: CategoryRename, admin: CurrentAdmin, services: Services
) -> JSONResponse:
    return respond_written(services.catalog.rename_category(admin, category_id, body.name))


@categories.post("/{category_id}/move", response_model=WrittenOut)
def move_category(
    category_id: UUID, body: CategoryMove, admin: CurrentAdmin, services: Services
) -> JSONResponse:
    """Move the category and its subtree under ``parent_id`` (null: the top level)."""
    return respond_written(services.catalog.move_category(admin, category_id, body.parent_id))


@categories.post("/{category_id}/archive", response_model=WrittenOut)
def archive_category(category_id: UUID, admin: CurrentAdmin, services: Services) -> JSONResponse:
    """Only a category without active subcategories can be archived."""
    return respond_written(services.catalog.archive_category(admin, category_id))
