"""Reviews: a customer rates and reviews a product once; its seller may reply once;
an admin may hide it.

Rules:

- One review per customer per product: the review's id is derived from the product
  and the author (``review_id``), so a second review of the same product by the same
  customer fails on the event store's uniqueness constraint; the author edits the
  first instead.
- Only a published product can be reviewed (any other is answered as not found),
  and not by its own seller.
- Rating 1-5 (whole stars). Title (one line, at most 200 characters) and body (at
  most 10,000) may be empty: a rating alone is a review.
- Only the author edits a review (not even an admin: a review is the customer's
  words). An edit records the new rating, title and body; one that changes nothing
  records nothing. Editing a hidden review keeps it hidden.
- The product's seller (named in the review when it is written: a product never
  changes seller) may reply once; a reply is not edited.
- An admin hides a review with a reason, and may unhide it; hiding a hidden review
  or unhiding a visible one changes nothing. Hidden reviews stay in the store (the
  audit trail), the read side leaves them out of lists and ratings.
- ``verified_purchase`` is set later, by the ordering context, with the order that
  proves it; setting it again changes nothing.
"""

from __future__ import annotations

import re
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.access import Principal
from domain.catalog import Product
from domain.errors import DomainError, NotPermitted, UnknownEntity
from domain.users import Role

MAX_TITLE = 200
MAX_BODY = 10_000
MAX_REPLY = 5_000
MAX_HIDE_REASON = 500
MAX_ORDER_REF = 128

_LINE_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_TEXT_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class InvalidReview(DomainError, ValueError):
    """A rating, title, body, reply or reason is malformed or out of bounds."""

    code = "invalid-review"


class NotReviewable(UnknownEntity):
    """The product is not published. Answered as not found (with UnknownEntity's
    code): customers do not see unpublished products, so they must not learn from a
    review that one exists."""


class AlreadyReviewed(DomainError):
    """This customer has already reviewed this product: edit that review instead."""

    code = "already-reviewed"


class AlreadyReplied(DomainError):
    """The seller has already replied to this review."""

    code = "already-replied"


def review_id(product_id: UUID, author_id: UUID) -> UUID:
    return uuid5(NAMESPACE_URL, f"/eventshop/reviews/{product_id}/{author_id}")


def valid_rating(rating: object) -> int:
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise InvalidReview("the rating is a whole number of stars from 1 to 5")
    return rating


def _text(field: str, value: object, max_len: int, *, line: bool, required: bool) -> str:
    if not isinstance(value, str):
        raise InvalidReview(f"the {field} must be text")
    text = value.strip()
    if required and not text:
        raise InvalidReview(f"the {field} must not be empty")
    if len(text) > max_len:
        raise InvalidReview(f"the {field} must be at most {max_len:,} characters")
    if (_LINE_FORBIDDEN if line else _TEXT_FORBIDDEN).search(text):
        raise InvalidReview(f"the {field} must not contain control characters")
    return text


class Review(Aggregate):
    """One customer's review of one product. Written through ``write_review``."""

    class Written(Aggregate.Created):
        product_id: UUID
        seller_id: UUID
        author_id: UUID
        rating: int
        title: str
        body: str

    class Edited(Aggregate.Event):
        rating: int
        title: str
        body: str

    class SellerReplied(Aggregate.Event):
        seller_id: UUID
        body: str

    class Hidden(Aggregate.Event):
        reason: str
        by: UUID

    class Unhidden(Aggregate.Event):
        by: UUID

    class VerifiedPurchaseMarked(Aggregate.Event):
        order_ref: str

    @staticmethod
    def create_id(product_id: UUID, author_id: UUID) -> UUID:
        return review_id(product_id, author_id)

    @event(Written)
    def __init__(
        self,
        product_id: UUID,
        seller_id: UUID,
        author_id: UUID,
        rating: int,
        title: str,
        body: str,
    ) -> None:
        self.product_id = product_id
        self.seller_id = seller_id
        self.author_id = author_id
        self.rating = rating
        self.title = title
        self.body = body
        self.reply: str | None = None
        self.hidden = False
        self.hidden_reason: str | None = None
        self.verified_purchase = False
        self.verifying_order: str | None = None

    def edit(self, principal: Principal, rating: int, title: str, body: str) -> None:
        if principal.user_id != self.author_id:
            raise NotPermitted("only its author may edit a review")
        rating = valid_rating(rating)
        title = _text("title", title, MAX_TITLE, line=True, required=False)
        body = _text("body", body, MAX_BODY, line=False, required=False)
        if (rating, title, body) != (self.rating, self.title, self.body):
            self._edited(rating=rating, title=title, body=body)

    @event(Edited)
    def _edited(self, rating: int, title: str, body: str) -> None:
        self.rating = rating
        self.title = title
        self.body = body

    def reply_as_seller(self, principal: Principal, body: str) -> None:
        if principal.user_id != self.seller_id or not principal.has_role(Role.SELLER):
            raise NotPermitted("only the product's seller may reply to its reviews")
        body = _text("reply", body, MAX_REPLY, line=False, required=True)
        if self.reply is not None:
            raise AlreadyReplied("the seller has already replied to this review")
        self._seller_replied(seller_id=principal.user_id, body=body)

    @event(SellerReplied)
    def _seller_replied(self, seller_id: UUID, body: str) -> None:
        self.reply = body

    def hide(self, principal: Principal, reason: str) -> None:
        principal.require_role(Role.ADMIN)
        reason = _text("reason", reason, MAX_HIDE_REASON, line=True, required=True)
        if not self.hidden:
            self._hidden(reason=reason, by=principal.user_id)

    @event(Hidden)
    def _hidden(self, reason: str, by: UUID) -> None:
        self.hidden = True
        self.hidden_reason = reason

    def unhide(self, principal: Principal) -> None:
        principal.require_role(Role.ADMIN)
        if self.hidden:
            self._unhidden(by=principal.user_id)

    @event(Unhidden)
    def _unhidden(self, by: UUID) -> None:
        self.hidden = False
        self.hidden_reason = None

    def mark_verified_purchase(self, order_ref: str) -> None:
        """The author bought the product (``order_ref``: the order proving it). Called
        by the ordering context, not by a client."""
        order_ref = _text("order reference", order_ref, MAX_ORDER_REF, line=True, required=True)
        if not self.verified_purchase:
            self._verified_purchase_marked(order_ref=order_ref)

    @event(VerifiedPurchaseMarked)
    def _verified_purchase_marked(self, order_ref: str) -> None:
        self.verified_purchase = True
        self.verifying_order = order_ref


def write_review(
    principal: Principal, product: Product, rating: int, title: str = "", body: str = ""
) -> Review:
    """A new review of ``product`` by ``principal``. Saving it fails with an
    IntegrityError if this customer already reviewed this product."""
    if not product.is_published:
        raise NotReviewable("no such product")
    if principal.user_id == product.seller_id:
        raise NotPermitted("sellers cannot review their own products")
    if not principal.has_role(Role.CUSTOMER):
        raise NotPermitted("only customers review products")
    return Review(
        product_id=product.id,
        seller_id=product.seller_id,
        author_id=principal.user_id,
        rating=valid_rating(rating),
        title=_text("title", title, MAX_TITLE, line=True, required=False),
        body=_text("body", body, MAX_BODY, line=False, required=False),
    )
