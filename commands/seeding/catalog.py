"""``shop seed catalog``: a realistic catalog, built by the domain's own rules and
appended in bulk (ADR 6).

Every aggregate is made by the same domain functions the command handlers call
(``create_category``, ``create_product`` with its ``SkuClaim``, ``categorise``,
``publish``, ``StockItem.receive``, ``write_review``...), so the events are exactly
those the command path appends; the difference is that many aggregates share one
``save`` (one transaction of the event store), which is what makes a million
products take minutes instead of hours. Uniqueness is still the event store's:
a product is saved with its SKU claim, a review's id is derived from its product
and author, an account with its email claim.

Everything is deterministic from the seed: ids, names, prices, stock, reviews. Item
``i`` depends only on the seed and ``i`` (``commands.seeding.drafts`` draws it), so
rerunning with a larger ``--products`` (same seed and account counts) adds only what
is missing: each batch first asks the event store which of its aggregates already
exist (``ExistingAggregates``) and builds only the others. An interrupted run resumes
the same way.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from commands.actors import carried_to_threads
from commands.catalog.inventory import InventoryApplication
from commands.catalog.products import CatalogApplication
from commands.catalog.reviews import ReviewsApplication
from commands.seeding.drafts import (
    MAX_REVIEWS,
    Leaf,
    ProductDrafts,
    seed_id,
    seed_principal,
    seeded_rng,
)
from commands.seeding.words import FIRST_NAMES, LAST_NAMES, SHOP_WORDS, TAXONOMY
from commands.users.accounts import UsersApplication
from domain.access import Principal
from domain.catalog import Product, SkuClaim
from domain.categories import Category, create_category
from domain.errors import DomainError
from domain.inventory import StockItem
from domain.reviews import Review
from domain.users import EmailIndex, Role, User

BATCH = 200
"""Products per save; with their claims and status events ~900 catalog events."""
IN_FLIGHT = 3
"""Batches built ahead of the writers (bounds memory)."""


class ExistingAggregates(Protocol):
    def __call__(self, app: Application[UUID], ids: Sequence[UUID]) -> set[UUID]:
        """Which of ``ids`` have events in ``app``'s store."""
        ...


Progress = Callable[[int, int], None]
"""(products done, products wanted)."""


class SeedRefused(DomainError):
    """The database holds something the seed cannot build on."""

    code = "seed-refused"


@dataclass(frozen=True)
class SeedPlan:
    products: int
    seed: int = 1
    sellers: int = 40
    customers: int = 1000

    def __post_init__(self) -> None:
        if not 0 <= self.products <= 10_000_000:
            raise SeedRefused("--products must be between 0 and 10,000,000")
        if not 1 <= self.sellers <= 10_000 or not MAX_REVIEWS <= self.customers <= 1_000_000:
            raise SeedRefused(f"--sellers must be 1-10,000 and --customers {MAX_REVIEWS}-1,000,000")


@dataclass
class SeedReport:
    categories: int = 0
    accounts: int = 0
    products: int = 0
    stock_items: int = 0
    reviews: int = 0
    existing_products: int = 0
    refused_skus: list[str] = field(default_factory=list)
    events: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def refuse(self, sku: str) -> None:
        with self._lock:
            self.refused_skus.append(sku)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)


@dataclass(frozen=True)
class _Node:
    id: UUID
    name: str
    parent_id: UUID | None
    department: str
    nouns: list[str] | None = None
    """The nouns of a leaf's products; None for an inner category."""


@dataclass
class _Batch:
    products: list[Product]
    claims: list[SkuClaim]
    stock: dict[UUID, StockItem]
    """Product id -> its new stock item (missing when it exists already)."""
    reviews: dict[UUID, list[Review]]
    """Product id -> its new reviews."""
    ids: dict[UUID, int]
    """Every product this batch covers (new and already there) -> its number."""


class CatalogSeeder:
    def __init__(
        self,
        users: UsersApplication,
        catalog: CatalogApplication,
        inventory: InventoryApplication,
        reviews: ReviewsApplication,
        existing: ExistingAggregates,
        password_hash: str,
        now: Callable[[], datetime],
    ) -> None:
        self._users = users
        self._catalog = catalog
        self._inventory = inventory
        self._reviews = reviews
        self._existing = existing
        self._password_hash = password_hash
        self._now = now

    def run(self, plan: SeedPlan, progress: Progress | None = None) -> SeedReport:
        report = SeedReport()
        self._plan = plan
        admin = self._accounts(report)
        leaves = self._categories(admin, report)
        self._drafts = ProductDrafts(plan.seed, plan.sellers, plan.customers, leaves)
        if progress is not None:
            progress(0, plan.products)
        self._products(report, progress)
        return report

    # --- ids ----------------------------------------------------------------------

    def _id(self, kind: str, n: int | str) -> UUID:
        return seed_id(self._plan.seed, kind, n)

    def _principal(self, user_id: UUID, *roles: Role) -> Principal:
        return seed_principal(self._plan.seed, user_id, *roles)

    # --- accounts -----------------------------------------------------------------

    def _accounts(self, report: SeedReport) -> Principal:
        """The catalog admin, the sellers and the customers (verified accounts); the
        admin's principal."""
        seed, plan = self._plan.seed, self._plan
        people: list[tuple[UUID, str, str, Role | None]] = [
            (
                self._id("admin", 0),
                f"catalog-admin.seed{seed}@example.com",
                "Catalog Admin",
                Role.ADMIN,
            ),
        ]
        for n in range(plan.sellers):
            rng = seeded_rng(seed, "seller", n)
            name = f"{rng.choice(LAST_NAMES)} {rng.choice(SHOP_WORDS)}"
            people.append(
                (self._id("seller", n), f"seller{n}.seed{seed}@example.com", name, Role.SELLER)
            )
        for n in range(plan.customers):
            rng = seeded_rng(seed, "customer", n)
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            people.append(
                (self._id("customer", n), f"customer{n}.seed{seed}@example.com", name, None)
            )
        for start in range(0, len(people), 500):
            chunk = people[start : start + 500]
            there = self._existing(self._users, [p[0] for p in chunk])
            created: list[Aggregate] = []
            for user_id, email, name, role in chunk:
                if user_id in there:
                    continue
                user = User.register(user_id, email, self._password_hash, name)
                token = self._id("verification", str(user_id))
                now = self._now()
                user.request_email_verification(token, now + timedelta(hours=24))
                user.verify_email(token, now)
                if role is not None:
                    user.grant_role(role, by=people[0][0])
                created += [user, EmailIndex(email=email, user_id=user_id)]
            if created:
                try:
                    self._save(self._users, created, report)
                except IntegrityError as error:
                    raise SeedRefused(
                        "an email address of a seeded account belongs to another account: "
                        "seed another number (--seed)"
                    ) from error
                report.add(accounts=len(created) // 2)
        return self._principal(people[0][0], Role.ADMIN)

    # --- categories ---------------------------------------------------------------

    def _categories(self, admin: Principal, report: SeedReport) -> list[Leaf]:
        """Create the tree's missing categories (all in one save); the leaves."""
        plan: list[_Node] = []
        for department, subs in TAXONOMY.items():
            top = _Node(self._id("category", department), department, None, department)
            plan.append(top)
            for sub, content in subs.items():
                path = f"{department}/{sub}"
                nouns = content if isinstance(content, list) else None
                node = _Node(self._id("category", path), sub, top.id, department, nouns)
                plan.append(node)
                if isinstance(content, dict):
                    plan += [
                        _Node(self._id("category", f"{path}/{leaf}"), leaf, node.id, department, ns)
                        for leaf, ns in content.items()
                    ]
        there = self._existing(self._catalog, [node.id for node in plan])
        known: dict[UUID, Category] = {}
        changed: dict[UUID, Category] = {}
        for node in plan:
            if node.id in there:
                found: object = self._catalog.repository.get(node.id)
                if not isinstance(found, Category) or found.archived:
                    raise SeedRefused(
                        f"the seeded category {node.name!r} has been archived or replaced: "
                        "seed another number (--seed)"
                    )
                known[node.id] = found
                continue
            parent = known[node.parent_id] if node.parent_id is not None else None
            category = create_category(
                admin, node.id, node.name, parent, lambda i: known[i].parent_id
            )
            known[node.id] = changed[node.id] = category
            if parent is not None:
                changed[parent.id] = parent
        if changed:
            self._save(self._catalog, list(changed.values()), report)
            report.add(categories=sum(1 for node in plan if node.id not in there))
        return [
            Leaf(node.id, node.department, node.nouns) for node in plan if node.nouns is not None
        ]

    # --- products -----------------------------------------------------------------

    def _products(self, report: SeedReport, progress: Progress | None) -> None:
        """Batches are built here and saved by one writer thread per event store (the
        stores lock their tables independently), the catalog's first: a product whose
        SKU another product has taken gets no stock or reviews."""
        total = self._plan.products
        done = 0
        pending: deque[Future[None]] = deque()
        # The writers save as whoever runs the seed (the command line).
        acting = carried_to_threads()
        with (
            ThreadPoolExecutor(1, "seed-catalog", initializer=acting) as catalog_writer,
            ThreadPoolExecutor(1, "seed-inventory", initializer=acting) as inventory_writer,
            ThreadPoolExecutor(1, "seed-reviews", initializer=acting) as reviews_writer,
        ):

            def write(batch: _Batch) -> None:
                accepted = self._save_products(batch, report)
                stock = [item for pid, item in batch.stock.items() if pid in accepted]
                reviews = [r for pid, rs in batch.reviews.items() if pid in accepted for r in rs]
                saves = [
                    inventory_writer.submit(
                        self._save_counted, self._inventory, stock, report, "stock_items"
                    ),
                    reviews_writer.submit(
                        self._save_counted, self._reviews, reviews, report, "reviews"
                    ),
                ]
                for save in saves:
                    save.result()

            for start in range(0, total, BATCH):
                batch = self._batch(range(start, min(start + BATCH, total)), report)
                pending.append(catalog_writer.submit(write, batch))
                while len(pending) >= IN_FLIGHT or (pending and pending[0].done()):
                    pending.popleft().result()
                    done = min(done + BATCH, total)
                    if progress is not None:
                        progress(done, total)
            while pending:
                pending.popleft().result()
                done = min(done + BATCH, total)
                if progress is not None:
                    progress(done, total)

    def _save_products(self, batch: _Batch, report: SeedReport) -> set[UUID]:
        """Save the batch's new products with their SKU claims; the ids of every
        product of the batch that stands (new or already there). If a SKU is taken
        by a product the seed did not make, the batch is saved one product at a time
        and that product is left out, as the command path would refuse it."""
        accepted = set(batch.ids)
        pairs = list(zip(batch.products, batch.claims, strict=True))
        try:
            self._save(self._catalog, [a for pair in pairs for a in pair], report)
        except IntegrityError:
            # The failed save took the aggregates' pending events: draw them again.
            for product in batch.products:
                again = self._drafts.draft(batch.ids[product.id])
                try:
                    self._save(self._catalog, [again.product, again.claim], report)
                except IntegrityError:
                    accepted.discard(product.id)
                    report.refuse(product.sku)
        report.add(products=sum(1 for p in batch.products if p.id in accepted))
        return accepted

    def _save_counted(
        self, app: Application[UUID], aggregates: Sequence[Aggregate], report: SeedReport, what: str
    ) -> None:
        if aggregates:
            self._save(app, aggregates, report)
            report.add(**{what: len(aggregates)})

    @staticmethod
    def _save(app: Application[UUID], aggregates: Sequence[Aggregate], report: SeedReport) -> None:
        report.add(events=len(app.save(*aggregates)))

    def _batch(self, numbers: range, report: SeedReport) -> _Batch:
        """Products ``numbers`` with their stock and reviews, leaving out whatever the
        event stores already hold."""
        drafts = [self._drafts.draft(n) for n in numbers]
        there = self._existing(self._catalog, [d.product.id for d in drafts])
        items = self._existing(self._inventory, [d.stock.id for d in drafts])
        reviewed = self._existing(self._reviews, [r.id for d in drafts for r in d.reviews])
        report.add(existing_products=len(there))
        fresh = [d for d in drafts if d.product.id not in there]
        return _Batch(
            products=[d.product for d in fresh],
            claims=[d.claim for d in fresh],
            stock={d.product.id: d.stock for d in drafts if d.stock.id not in items},
            reviews={d.product.id: [r for r in d.reviews if r.id not in reviewed] for d in drafts},
            ids={d.product.id: n for n, d in zip(numbers, drafts, strict=True)},
        )


def seeded_counts(report: SeedReport) -> Iterator[tuple[str, int]]:
    """The report as (label, value) lines for a terminal."""
    yield "categories created", report.categories
    yield "accounts created", report.accounts
    yield "products created", report.products
    yield "products already there", report.existing_products
    yield "stock items created", report.stock_items
    yield "reviews created", report.reviews
    yield "events appended", report.events
    if report.refused_skus:
        yield "refused (SKU taken by another product)", len(report.refused_skus)
