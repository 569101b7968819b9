"""The catalog seeder on in-memory event stores: whatever the seed and sizes, the
events it appends obey the rules the command path enforces, the same seed makes the
same catalog, and a rerun adds only what is missing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.actors import acting_as
from commands.catalog.inventory import InventoryApplication
from commands.catalog.products import CatalogApplication
from commands.catalog.reviews import ReviewsApplication
from commands.seeding.catalog import CatalogSeeder, SeedPlan, SeedReport
from commands.users.accounts import UsersApplication
from domain.actors import Actor, actor_of
from domain.catalog import Product, SkuClaim
from domain.categories import Category
from domain.inventory import StockItem
from domain.reviews import Review
from domain.users import User

POPO = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


def in_memory_existing(app: Application[UUID], ids: Sequence[UUID]) -> set[UUID]:
    return {i for i in ids if i in app.repository}


@dataclass
class Stores:
    users: UsersApplication
    catalog: CatalogApplication
    inventory: InventoryApplication
    reviews: ReviewsApplication

    def seed(self, plan: SeedPlan) -> SeedReport:
        seeder = CatalogSeeder(
            self.users,
            self.catalog,
            self.inventory,
            self.reviews,
            in_memory_existing,
            "$argon2id$not-a-real-hash",
            lambda: datetime.now(UTC),
        )
        return seeder.run(plan)

    def aggregates(self, app: Application[UUID]) -> list[Any]:
        notifications = app.recorder.select_notifications(start=1, limit=10**6)
        return [app.repository.get(UUID(str(i))) for i in {n.originator_id for n in notifications}]


def stores() -> Stores:
    return Stores(
        UsersApplication(env=POPO),
        CatalogApplication(env=POPO),
        InventoryApplication(env=POPO),
        ReviewsApplication(env=POPO),
    )


def event_count(s: Stores) -> int:
    return sum(
        len(app.recorder.select_notifications(start=1, limit=10**7))
        for app in (s.users, s.catalog, s.inventory, s.reviews)
    )


plans = st.builds(
    SeedPlan,
    products=st.integers(0, 60),
    seed=st.integers(0, 10**9),
    sellers=st.integers(1, 6),
    customers=st.integers(6, 25),
)


@settings(max_examples=12, deadline=None)
@given(plans)
def test_seeded_catalogs_obey_the_command_paths_rules(plan: SeedPlan) -> None:
    s = stores()
    report = s.seed(plan)
    catalog = s.aggregates(s.catalog)
    products = [a for a in catalog if isinstance(a, Product)]
    claims = {a.sku: a.product_id for a in catalog if isinstance(a, SkuClaim)}
    categories = {a.id: a for a in catalog if isinstance(a, Category)}
    users = {a.id: a for a in s.aggregates(s.users) if isinstance(a, User)}

    assert len(products) == report.products == plan.products
    assert report.events == event_count(s)
    # SKUs: unique, each claimed by its product.
    assert len({p.sku for p in products}) == len(products)
    assert claims == {p.sku: p.id for p in products}
    # The tree: 100-300 categories, 2-3 levels, children listed by their parents.
    assert 100 <= len(categories) <= 300
    for c in categories.values():
        if c.parent_id is not None:
            assert c.id in categories[c.parent_id].children
        depth, parent = 1, c.parent_id
        while parent is not None:
            depth, parent = depth + 1, categories[parent].parent_id
        assert depth <= 3
    # Products: a seller's own, in existing categories; published ones priced.
    by_id = {p.id: p for p in products}
    for p in products:
        assert p.seller_id in users and "seller" in users[p.seller_id].roles
        assert p.category_ids and set(p.category_ids) <= set(categories)
        if p.is_published:
            assert p.price is not None
    # Stock: one item per SKU, never negative.
    items = [a for a in s.aggregates(s.inventory) if isinstance(a, StockItem)]
    assert sorted(i.sku for i in items) == sorted(p.sku for p in products)
    assert all(i.available >= 0 and i.on_hand >= 0 for i in items)
    # Reviews: 1-5 stars, by customers, of published products, once each.
    reviews = [a for a in s.aggregates(s.reviews) if isinstance(a, Review)]
    assert len(reviews) == report.reviews
    pairs = [(r.product_id, r.author_id) for r in reviews]
    assert len(set(pairs)) == len(pairs)
    for r in reviews:
        assert 1 <= r.rating <= 5
        assert by_id[r.product_id].is_published
        assert r.author_id in users and r.author_id != by_id[r.product_id].seller_id
    # Accounts: verified, so they can log in.
    assert all(u.email_verified for u in users.values())


def test_a_seed_makes_the_same_catalog_and_a_rerun_adds_only_what_is_missing() -> None:
    plan = SeedPlan(products=40, seed=42, sellers=3, customers=10)
    first, second = stores(), stores()
    first.seed(plan)
    second.seed(SeedPlan(products=25, seed=42, sellers=3, customers=10))
    again = second.seed(plan)
    assert (again.products, again.existing_products, again.accounts, again.categories) == (
        15,
        25,
        0,
        0,
    )

    def fingerprint(s: Stores) -> set[tuple[Any, ...]]:
        return {
            (p.id, p.sku, p.name, p.price_data["amount"] if p.price_data else None, p.status)
            for p in s.aggregates(s.catalog)
            if isinstance(p, Product)
        }

    assert fingerprint(first) == fingerprint(second)
    assert event_count(first) == event_count(second)
    unchanged = second.seed(plan)
    assert (unchanged.events, unchanged.products) == (0, 0)
    assert unchanged.existing_products == 40


def test_the_catalog_looks_like_a_shop() -> None:
    s = stores()
    s.seed(SeedPlan(products=400, seed=1, sellers=5, customers=50))
    products = [a for a in s.aggregates(s.catalog) if isinstance(a, Product)]
    statuses = Counter(p.status for p in products)
    assert 0.8 < statuses["published"] / len(products) < 0.97
    assert {"draft", "unpublished"} <= set(statuses)
    currencies = Counter(p.price_data["currency"] for p in products if p.price_data)
    assert currencies.most_common(1)[0][0] == "EUR" and len(currencies) >= 3
    assert any(len(p.category_ids) > 1 for p in products)
    assert all({"brand", "colour", "material"} <= set(p.attributes) for p in products)
    assert all(p.images and p.description for p in products)
    items = [a for a in s.aggregates(s.inventory) if isinstance(a, StockItem)]
    assert any(i.available == 0 for i in items)
    assert any(i.low_stock_alerted for i in items)
    reviews = [a for a in s.aggregates(s.reviews) if isinstance(a, Review)]
    assert len({r.product_id for r in reviews}) > 50
    assert {r.rating for r in reviews} == {1, 2, 3, 4, 5}


def test_every_seeded_event_names_who_ran_the_seed() -> None:
    """The writer threads act as the thread that runs the seed (``shop seed catalog``:
    the command line), not as nobody."""
    s = stores()
    command_line = Actor.system("cli:shop seed catalog")
    with acting_as(command_line):
        s.seed(SeedPlan(products=30, seed=7, sellers=2, customers=10))
    actors = {
        actor_of(app.mapper.to_domain_event(n))
        for app in (s.users, s.catalog, s.inventory, s.reviews)
        for n in app.recorder.select_notifications(start=1, limit=10**6)
    }
    assert actors == {command_line}
