"""The reviews bounded context: its Application and command handlers.

A review's id is derived from the product and the author, so "once per customer per
product" is the event store's uniqueness constraint: a second ``write`` fails to
save and is answered ``already-reviewed``. The product comes from the catalog
through the ``ProductLookup`` port; whether the author bought it, from the ordering
context through the optional ``PurchaseHistory`` port (until orders exist there is
none, and ``mark_verified_purchase`` is for the ordering policy to call later).
"""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from commands.application import ContextApplication, Written, retry_on_conflict
from commands.tracing import traced_commands
from domain.access import Principal
from domain.catalog import Product
from domain.errors import UnknownEntity
from domain.reviews import AlreadyReviewed, Review, review_id, write_review


class ProductLookup(Protocol):
    def get_product(self, product_id: UUID) -> Product:
        """The product; raises UnknownEntity when there is none."""
        ...


class PurchaseHistory(Protocol):
    def order_proving_purchase(self, customer_id: UUID, product_id: UUID) -> str | None:
        """A delivered order of this customer holding this product, if any."""
        ...


class ReviewsApplication(ContextApplication):
    name = "reviews"


@traced_commands
class ReviewCommands:
    def __init__(
        self,
        app: ReviewsApplication,
        products: ProductLookup,
        purchases: PurchaseHistory | None = None,
    ) -> None:
        self.app = app
        self._products = products
        self._purchases = purchases

    def write(
        self, principal: Principal, product_id: UUID, rating: int, title: str = "", body: str = ""
    ) -> Written:
        product = self._products.get_product(product_id)
        review = write_review(principal, product, rating, title, body)
        if self._purchases is not None:
            order_ref = self._purchases.order_proving_purchase(principal.user_id, product_id)
            if order_ref is not None:
                review.mark_verified_purchase(order_ref)
        try:
            position = self.app.save_all(review)
        except IntegrityError as error:
            raise AlreadyReviewed(
                "you have already reviewed this product: edit your review instead"
            ) from error
        return Written(review.id, position)

    @retry_on_conflict
    def edit(
        self, principal: Principal, review: UUID, rating: int, title: str, body: str
    ) -> Written:
        found = self.get(review)
        found.edit(principal, rating, title, body)
        return Written(found.id, self.app.save_all(found))

    @retry_on_conflict
    def reply(self, principal: Principal, review: UUID, body: str) -> Written:
        found = self.get(review)
        found.reply_as_seller(principal, body)
        return Written(found.id, self.app.save_all(found))

    @retry_on_conflict
    def hide(self, principal: Principal, review: UUID, reason: str) -> Written:
        found = self.get(review)
        found.hide(principal, reason)
        return Written(found.id, self.app.save_all(found))

    @retry_on_conflict
    def unhide(self, principal: Principal, review: UUID) -> Written:
        found = self.get(review)
        found.unhide(principal)
        return Written(found.id, self.app.save_all(found))

    @retry_on_conflict
    def mark_verified_purchase(self, product_id: UUID, author_id: UUID, order_ref: str) -> Written:
        """Mark the author's review of the product, if they wrote one (for the ordering
        policy: nothing to mark is not an error)."""
        rid = review_id(product_id, author_id)
        found = self.find(rid)
        if found is None:
            return Written(rid, None)
        found.mark_verified_purchase(order_ref)
        return Written(rid, self.app.save_all(found))

    def get(self, review: UUID) -> Review:
        found = self.find(review)
        if found is None:
            raise UnknownEntity("no such review")
        return found

    def find(self, review: UUID) -> Review | None:
        try:
            aggregate: object = self.app.repository.get(review)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, Review) else None
