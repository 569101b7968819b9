"""Reviews: once per customer per product, edits by the author, one seller reply,
admin hiding, verified purchases; and ReviewCommands on the in-memory store."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.catalog.products import CatalogApplication, CatalogCommands
from commands.catalog.reviews import ReviewCommands, ReviewsApplication
from domain.access import Principal
from domain.catalog import Product, create_product
from domain.errors import NotPermitted, UnknownEntity
from domain.money import Money
from domain.reviews import (
    MAX_BODY,
    MAX_TITLE,
    AlreadyReplied,
    AlreadyReviewed,
    InvalidReview,
    NotReviewable,
    Review,
    review_id,
    write_review,
)

SELLER = Principal(UUID(int=1), uuid4(), frozenset({"customer", "seller"}))
OTHER_SELLER = Principal(UUID(int=2), uuid4(), frozenset({"customer", "seller"}))
ADMIN = Principal(UUID(int=3), uuid4(), frozenset({"customer", "admin"}))
CUSTOMER = Principal(UUID(int=4), uuid4(), frozenset({"customer"}))
ANOTHER_CUSTOMER = Principal(UUID(int=5), uuid4(), frozenset({"customer"}))


def replay(events: list[Any]) -> Any:
    aggregate = None
    for e in events:
        aggregate = e.mutate(aggregate)
    return aggregate


def published_product() -> Product:
    product = create_product(
        SELLER, uuid4(), SELLER.user_id, "MUG-1", "Mug", price=Money.of("9", "EUR")
    )
    product.categorise(SELLER, [uuid4()])
    product.publish(SELLER)
    return product


def test_a_review_is_keyed_by_product_and_author() -> None:
    product = published_product()
    review = write_review(CUSTOMER, product, 4, " Nice ", " Holds tea.\n")
    assert review.id == review_id(product.id, CUSTOMER.user_id)
    assert review.id != review_id(product.id, ANOTHER_CUSTOMER.user_id)
    assert (review.rating, review.title, review.body) == (4, "Nice", "Holds tea.")
    assert review.seller_id == SELLER.user_id
    assert not review.hidden and not review.verified_purchase and review.reply is None
    assert write_review(CUSTOMER, product, 5).title == ""  # a rating alone is a review


@given(rating=st.one_of(st.integers(-10, 10), st.booleans(), st.floats(), st.text(max_size=2)))
@settings(max_examples=100)
def test_ratings_are_whole_stars_from_one_to_five(rating: Any) -> None:
    product = published_product()
    valid = isinstance(rating, int) and not isinstance(rating, bool) and 1 <= rating <= 5
    if valid:
        assert write_review(CUSTOMER, product, rating).rating == rating
    else:
        with pytest.raises(InvalidReview):
            write_review(CUSTOMER, product, rating)


@pytest.mark.parametrize(
    ("title", "body"),
    [("x" * (MAX_TITLE + 1), ""), ("", "x" * (MAX_BODY + 1)), ("a\nb", ""), ("", "nul\x00")],
)
def test_title_and_body_are_bounded(title: str, body: str) -> None:
    with pytest.raises(InvalidReview):
        write_review(CUSTOMER, published_product(), 3, title, body)


def test_only_published_products_are_reviewed_and_not_by_their_seller() -> None:
    product = published_product()
    with pytest.raises(NotPermitted):
        write_review(SELLER, product, 5)
    product.unpublish(SELLER)
    with pytest.raises(NotReviewable):
        write_review(CUSTOMER, product, 5)


def test_only_the_author_edits_and_only_changes_are_recorded() -> None:
    review = write_review(CUSTOMER, published_product(), 2, "Meh")
    review.collect_events()
    for someone in (ANOTHER_CUSTOMER, SELLER, ADMIN):
        with pytest.raises(NotPermitted):
            review.edit(someone, 5, "Great", "")
    review.edit(CUSTOMER, 2, " Meh ", "")
    assert review.collect_events() == []
    review.edit(CUSTOMER, 4, "Better", "It grew on me")
    (edited,) = review.collect_events()
    assert (edited.rating, edited.title, edited.body) == (4, "Better", "It grew on me")  # type: ignore[attr-defined]
    with pytest.raises(InvalidReview):
        review.edit(CUSTOMER, 6, "", "")


def test_the_seller_replies_once() -> None:
    review = write_review(CUSTOMER, published_product(), 3)
    for someone in (OTHER_SELLER, ADMIN, CUSTOMER):
        with pytest.raises(NotPermitted):
            review.reply_as_seller(someone, "Thanks")
    former_seller = Principal(SELLER.user_id, uuid4(), frozenset({"customer"}))
    with pytest.raises(NotPermitted):
        review.reply_as_seller(former_seller, "Thanks")
    with pytest.raises(InvalidReview):
        review.reply_as_seller(SELLER, "  ")
    review.reply_as_seller(SELLER, " Thank you! ")
    assert review.reply == "Thank you!"
    with pytest.raises(AlreadyReplied):
        review.reply_as_seller(SELLER, "Again")


def hiding(review: Review) -> tuple[bool, str | None]:
    return review.hidden, review.hidden_reason


def test_admins_hide_and_unhide_with_a_reason() -> None:
    review = write_review(CUSTOMER, published_product(), 1, "Awful")
    for someone in (CUSTOMER, SELLER):
        with pytest.raises(NotPermitted):
            review.hide(someone, "spam")
    with pytest.raises(InvalidReview):
        review.hide(ADMIN, "")
    review.hide(ADMIN, "abusive language")
    review.hide(ADMIN, "again")  # already hidden: nothing
    assert hiding(review) == (True, "abusive language")
    review.edit(CUSTOMER, 2, "Bad", "")  # the author may still edit; it stays hidden
    assert review.hidden
    with pytest.raises(NotPermitted):
        review.unhide(SELLER)
    review.unhide(ADMIN)
    review.unhide(ADMIN)
    assert hiding(review) == (False, None)
    names = [type(e).__name__ for e in review.collect_events()]
    assert names == ["Written", "Hidden", "Edited", "Unhidden"]


def test_verified_purchase_is_marked_once() -> None:
    review = write_review(CUSTOMER, published_product(), 5)
    with pytest.raises(InvalidReview):
        review.mark_verified_purchase("")
    review.mark_verified_purchase("order-1")
    review.mark_verified_purchase("order-2")
    assert review.verified_purchase and review.verifying_order == "order-1"
    events = list(review.collect_events())
    assert [type(e).__name__ for e in events] == ["Written", "VerifiedPurchaseMarked"]
    assert replay(events) == review


# --- the command handlers ------------------------------------------------------------


class Purchases:
    def __init__(self, orders: dict[tuple[UUID, UUID], str]) -> None:
        self.orders = orders

    def order_proving_purchase(self, customer_id: UUID, product_id: UUID) -> str | None:
        return self.orders.get((customer_id, product_id))


@pytest.fixture
def catalog() -> CatalogCommands:
    return CatalogCommands(CatalogApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}))


@pytest.fixture
def product_id(catalog: CatalogCommands) -> UUID:
    home = catalog.create_category(ADMIN, uuid4(), "Home").id
    product_id = uuid4()
    catalog.create_product(
        SELLER, product_id, SELLER.user_id, "MUG-1", "Mug", price=Money.of("9", "EUR")
    )
    catalog.categorise(SELLER, product_id, [home])
    catalog.publish(SELLER, product_id)
    return product_id


@pytest.fixture
def reviews(catalog: CatalogCommands, product_id: UUID) -> ReviewCommands:
    purchases = Purchases({(ANOTHER_CUSTOMER.user_id, product_id): "order-7"})
    app = ReviewsApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    return ReviewCommands(app, catalog, purchases)


def test_a_customer_reviews_a_product_once(reviews: ReviewCommands, product_id: UUID) -> None:
    written = reviews.write(CUSTOMER, product_id, 4, "Nice")
    assert written.id == review_id(product_id, CUSTOMER.user_id)
    assert written.position is not None and written.position.log == "reviews"
    with pytest.raises(AlreadyReviewed):
        reviews.write(CUSTOMER, product_id, 5, "Changed my mind")
    reviews.edit(CUSTOMER, written.id, 5, "Changed my mind", "")
    assert reviews.get(written.id).rating == 5
    assert not reviews.get(written.id).verified_purchase
    with pytest.raises(UnknownEntity):
        reviews.write(CUSTOMER, uuid4(), 4)


def test_review_handlers(reviews: ReviewCommands, product_id: UUID) -> None:
    rid = reviews.write(ANOTHER_CUSTOMER, product_id, 3).id
    assert reviews.get(rid).verified_purchase  # the purchase history proves it
    reviews.reply(SELLER, rid, "Thanks")
    with pytest.raises(AlreadyReplied):
        reviews.reply(SELLER, rid, "Thanks again")
    reviews.hide(ADMIN, rid, "off topic")
    assert reviews.get(rid).hidden
    reviews.unhide(ADMIN, rid)
    with pytest.raises(NotPermitted):
        reviews.hide(SELLER, rid, "I don't like it")
    with pytest.raises(UnknownEntity):
        reviews.edit(CUSTOMER, uuid4(), 3, "", "")
    stored: Review = reviews.app.repository.get(rid)
    assert stored.reply == "Thanks" and not stored.hidden


def test_marking_verified_purchases(reviews: ReviewCommands, product_id: UUID) -> None:
    nothing = reviews.mark_verified_purchase(product_id, CUSTOMER.user_id, "order-1")
    assert nothing.position is None  # no review yet: nothing to mark, no error
    rid = reviews.write(CUSTOMER, product_id, 5).id
    assert reviews.mark_verified_purchase(product_id, CUSTOMER.user_id, "order-1").position
    assert reviews.mark_verified_purchase(product_id, CUSTOMER.user_id, "order-2").position is None
    assert reviews.get(rid).verifying_order == "order-1"
