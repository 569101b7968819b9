"""The catalog bounded context: its Application and command handlers for products and
the category tree.

Handlers load, decide (the aggregates and ``domain.catalog`` enforce the rules,
including who may act) and save, answering with the position written. Creation is
idempotent on the id (a retried create answers the first one's id, with no new
position); everything else retries optimistic-concurrency conflicts a bounded number
of times.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from commands.application import ContextApplication, Written, retry_on_conflict
from commands.errors import ConcurrencyConflict
from commands.tracing import traced_commands
from domain.access import Principal
from domain.catalog import (
    Product,
    SkuClaim,
    SkuTaken,
    create_product,
    sku_claim_id,
)
from domain.categories import (
    CATEGORY_TREE_ID,
    Category,
    CategoryArchived,
    CategoryTree,
    archive_category,
    create_category,
    move_category,
)
from domain.errors import UnknownEntity
from domain.money import Money, normalise_sku

A = TypeVar("A", bound=Aggregate)


class CatalogApplication(ContextApplication):
    name = "catalog"
    snapshotting_intervals = {Product: 50, Category: 50, CategoryTree: 50}


@traced_commands
class CatalogCommands:
    def __init__(self, app: CatalogApplication) -> None:
        self.app = app

    # --- products -------------------------------------------------------------------

    def create_product(
        self,
        principal: Principal,
        product_id: UUID,
        seller_id: UUID,
        sku: str,
        name: str,
        description: str = "",
        attributes: Mapping[str, str] | None = None,
        images: Iterable[str] | None = None,
        price: Money | None = None,
    ) -> Written:
        """A new draft product with its SKU claimed. ``product_id`` comes from the
        idempotency key when there is one, so a retried create finds the product it
        already created."""
        existing = self._find(Product, product_id)
        if existing is not None:
            existing.require_can_manage(principal)
            return Written(product_id, None)
        product = create_product(
            principal, product_id, seller_id, sku, name, description, attributes, images, price
        )
        claim = SkuClaim(sku=product.sku, product_id=product_id)
        try:
            position = self.app.save_all(product, claim)
        except IntegrityError as error:
            if self._find(Product, product_id) is not None:
                return Written(product_id, None)  # the same create, saved concurrently
            if self.product_id_for_sku(product.sku) is not None:
                raise SkuTaken(f"another product already has SKU {product.sku}") from error
            raise ConcurrencyConflict("this id is already in use") from error
        return Written(product_id, position)

    @retry_on_conflict
    def update_details(
        self,
        principal: Principal,
        product_id: UUID,
        *,
        name: str | None = None,
        description: str | None = None,
        attributes: Mapping[str, str] | None = None,
        images: Iterable[str] | None = None,
    ) -> Written:
        product = self.get_product(product_id)
        product.update_details(
            principal, name=name, description=description, attributes=attributes, images=images
        )
        return Written(product_id, self.app.save_all(product))

    @retry_on_conflict
    def change_price(self, principal: Principal, product_id: UUID, price: Money) -> Written:
        product = self.get_product(product_id)
        product.change_price(principal, price)
        return Written(product_id, self.app.save_all(product))

    @retry_on_conflict
    def categorise(
        self, principal: Principal, product_id: UUID, category_ids: Iterable[UUID]
    ) -> Written:
        """Put a product in exactly these categories. Each must exist; a category the
        product is not already in must not be archived."""
        product = self.get_product(product_id)
        product.require_can_manage(principal)
        ids = set(category_ids)
        for category_id in ids - set(product.category_ids):
            if self._get(Category, category_id, "category").archived:
                raise CategoryArchived("archived categories take no new products")
        product.categorise(principal, ids)
        return Written(product_id, self.app.save_all(product))

    @retry_on_conflict
    def publish(self, principal: Principal, product_id: UUID) -> Written:
        product = self.get_product(product_id)
        product.publish(principal)
        return Written(product_id, self.app.save_all(product))

    @retry_on_conflict
    def unpublish(self, principal: Principal, product_id: UUID) -> Written:
        product = self.get_product(product_id)
        product.unpublish(principal)
        return Written(product_id, self.app.save_all(product))

    @retry_on_conflict
    def archive(self, principal: Principal, product_id: UUID) -> Written:
        product = self.get_product(product_id)
        product.archive(principal)
        return Written(product_id, self.app.save_all(product))

    # --- categories -----------------------------------------------------------------

    @retry_on_conflict
    def create_category(
        self, principal: Principal, category_id: UUID, name: str, parent_id: UUID | None = None
    ) -> Written:
        """A new category (under ``parent_id``, or at the top level). Idempotent on the
        id, like ``create_product``."""
        if self._find(Category, category_id) is not None:
            return Written(category_id, None)
        parent = self._get(Category, parent_id, "parent category") if parent_id else None
        category = create_category(principal, category_id, name, parent, self._parent_of)
        changed = [category] if parent is None else [category, parent]
        return Written(category_id, self.app.save_all(*changed))

    @retry_on_conflict
    def rename_category(self, principal: Principal, category_id: UUID, name: str) -> Written:
        category = self._get(Category, category_id, "category")
        category.rename(principal, name)
        return Written(category_id, self.app.save_all(category))

    @retry_on_conflict
    def move_category(
        self, principal: Principal, category_id: UUID, parent_id: UUID | None
    ) -> Written:
        """Move a category (with its subtree) under ``parent_id`` (None: top level)."""
        # The tree first: any move saved after this load conflicts with ours, so the
        # ancestors walked below cannot change unseen before we save.
        tree = self._find(CategoryTree, CATEGORY_TREE_ID) or CategoryTree()
        category = self._get(Category, category_id, "category")
        old_parent = (
            self._get(Category, category.parent_id, "category") if category.parent_id else None
        )
        new_parent = self._get(Category, parent_id, "parent category") if parent_id else None
        move_category(principal, category, old_parent, new_parent, tree, self._parent_of)
        changed = [a for a in (category, old_parent, new_parent, tree) if a is not None]
        return Written(category_id, self.app.save_all(*changed))

    @retry_on_conflict
    def archive_category(self, principal: Principal, category_id: UUID) -> Written:
        category = self._get(Category, category_id, "category")
        parent = self._get(Category, category.parent_id, "category") if category.parent_id else None
        archive_category(principal, category, parent)
        changed = [category] if parent is None else [category, parent]
        return Written(category_id, self.app.save_all(*changed))

    # --- lookups (also the ports other contexts use) ----------------------------------

    def get_product(self, product_id: UUID) -> Product:
        return self._get(Product, product_id, "product")

    def get_category(self, category_id: UUID) -> Category:
        return self._get(Category, category_id, "category")

    def product_id_for_sku(self, sku: str) -> UUID | None:
        claim = self._find(SkuClaim, sku_claim_id(sku))
        return claim.product_id if claim is not None else None

    def seller_of_sku(self, sku: str) -> UUID | None:
        """The seller of the product with this SKU (None: no product has it)."""
        product_id = self.product_id_for_sku(normalise_sku(sku))
        if product_id is None:
            return None
        return self.get_product(product_id).seller_id

    # --- loading --------------------------------------------------------------------

    def _parent_of(self, category_id: UUID) -> UUID | None:
        return self._get(Category, category_id, "category").parent_id

    def _find(self, cls: type[A], aggregate_id: UUID) -> A | None:
        try:
            aggregate: object = self.app.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, cls) else None

    def _get(self, cls: type[A], aggregate_id: UUID, what: str) -> A:
        aggregate = self._find(cls, aggregate_id)
        if aggregate is None:
            raise UnknownEntity(f"no such {what}")
        return aggregate
