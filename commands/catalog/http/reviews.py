"""Reviews: a customer reviews a published product once and edits it; the product's
seller replies once; an admin hides (and unhides) a review with a reason."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from commands.catalog.http.deps import Services
from commands.catalog.http.schemas import (
    NewReview,
    ReviewChanges,
    ReviewHiding,
    ReviewReply,
)
from commands.http.deps import CurrentAdmin, CurrentUser, IdempotencyKey
from commands.http.parsed_body import ParsedBodyRoute
from commands.http.responses import respond_idempotently, respond_written
from commands.users.http.schemas import WrittenOut

product_reviews = APIRouter(prefix="/products", tags=["reviews"], route_class=ParsedBodyRoute)
router = APIRouter(prefix="/reviews", tags=["reviews"], route_class=ParsedBodyRoute)


@product_reviews.post("/{product_id}/reviews", status_code=201, response_model=WrittenOut)
def write_review(
    product_id: UUID,
    body: NewReview,
    principal: CurrentUser,
    services: Services,
    idempotency: IdempotencyKey,
) -> JSONResponse:
    """One review per customer per product (a second is 409 ``already-reviewed``:
    edit the first). The review's id follows from the product and the author."""

    return respond_idempotently(
        idempotency,
        body,
        lambda: services.reviews.write(principal, product_id, body.rating, body.title, body.body),
    )


@router.patch("/{review_id}", response_model=WrittenOut)
def edit_review(
    review_id: UUID, body: ReviewChanges, principal: CurrentUser, services: Services
) -> JSONResponse:
    """The author changes any of rating, title and body; the others stay."""
    current = services.reviews.get(review_id)
    return respond_written(
        services.reviews.edit(
            principal,
            review_id,
            body.rating if body.rating is not None else current.rating,
            body.title if body.title is not None else current.title,
            body.body if body.body is not None else current.body,
        )
    )


@router.post("/{review_id}/reply", response_model=WrittenOut)
def reply(
    review_id: UUID, body: ReviewReply, principal: CurrentUser, services: Services
) -> JSONResponse:
    """The product's seller replies, once (a second reply is 409 ``already-replied``)."""
    return respond_written(services.reviews.reply(principal, review_id, body.body))


@router.post("/{review_id}/hide", response_model=WrittenOut)
def hide(
    review_id: UUID, body: ReviewHiding, admin: CurrentAdmin, services: Services
) -> JSONResponse:
    """Leave the review out of lists and ratings; it stays in the store."""
    return respond_written(services.reviews.hide(admin, review_id, body.reason))


@router.post("/{review_id}/unhide", response_model=WrittenOut)
def unhide(review_id: UUID, admin: CurrentAdmin, services: Services) -> JSONResponse:
    return respond_written(services.reviews.unhide(admin, review_id))
