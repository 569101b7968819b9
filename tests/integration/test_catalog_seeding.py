"""``shop seed catalog`` against real Postgres: a small seed through the real event
stores, the projections caught up from those events, and the read models showing
what was seeded, with every invariant of the command path holding; a rerun adds only
what is missing; a SKU taken by another product is refused as the command path
refuses it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from psycopg.rows import dict_row

from commands.seeding.catalog import CatalogSeeder, SeedPlan, SeedReport
from commands.users.passwords import PasswordHasher
from domain.access import Principal
from domain.inventory import StockItem
from domain.money import Money
from infra.postgres.existing_aggregates import existing_aggregates
from infra.settings import Settings
from infra.wiring.process import Container, bootstrap
from projections.catalog.search import ProductFilter, SearchResult
from projections.catalog.search_queries import search_products
from projections.engine import View
from streams.replay import catch_up
from tests.conftest import TEST_SECRET

pytestmark = pytest.mark.integration

CATALOG_VIEWS = ("catalog_products", "catalog_categories", "inventory_levels", "product_reviews")


def seed(container: Container, plan: SeedPlan) -> SeedReport:
    seeder = CatalogSeeder(
        container.users_app,
        container.catalog_app,
        container.inventory_app,
        container.reviews_app,
        existing_aggregates,
        PasswordHasher(time_cost=1, memory_kib=8).hash("seeded-password-1"),
        lambda: datetime.now(UTC),
    )
    return seeder.run(plan)


def catch_up_views(container: Container) -> None:
    """What ``shop run`` does at start: every catalog view, every log it follows."""
    for spec in container.specs:
        if spec.name not in CATALOG_VIEWS:
            continue
        view = spec.make_view(container.ensure_generation(spec))
        assert isinstance(view, View)
        projection = spec.make_projection(view)
        try:
            for app_class in spec.upstream:
                app = app_class(container.app_env)
                try:
                    catch_up(app, view, projection)
                finally:
                    app.close()
        finally:
            view.datastore.close()


def rows(container: Container, sql: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(container.conninfo, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def count_events(container: Container) -> int:
    tables = ("users_events", "catalog_events", "inventory_events", "reviews_events")
    return sum(rows(container, f"SELECT count(*) AS n FROM {t}")[0]["n"] for t in tables)


def test_a_seeded_catalog_reaches_every_read_model(container: Container) -> None:
    plan = SeedPlan(products=200, seed=3, sellers=4, customers=40)
    report = seed(container, plan)
    assert (report.products, report.stock_items, report.categories) == (200, 200, 149)
    assert report.accounts == 1 + 4 + 40
    assert report.events == count_events(container)
    catch_up_views(container)

    products = rows(container, "SELECT * FROM read.catalog_products")
    assert len(products) == 200
    # SKUs unique; stock never negative and equal to the event-sourced stock items.
    assert len({p["sku"] for p in products}) == 200
    for p in products:
        item: object = container.inventory_app.repository.get(p["stock_item_id"])
        assert isinstance(item, StockItem)
        assert p["available"] == item.available >= 0
    levels = rows(container, "SELECT * FROM read.inventory_levels")
    assert len(levels) == 200 and all(lv["product_id"] is not None for lv in levels)
    assert all(lv["available"] >= 0 for lv in levels)
    assert any(lv["low_since"] is not None for lv in levels)
    # The tree: every product's categories exist, and its path reaches a department.
    categories = {c["id"]: c for c in rows(container, "SELECT * FROM read.catalog_categories")}
    assert len(categories) == 149
    assert max(len(c["path"]) for c in categories.values()) == 3
    for p in products:
        assert set(p["category_ids"]) <= set(categories)
        assert any(categories[c]["parent_id"] is None for c in p["category_path"])
    published = [p for p in products if p["status"] == "published"]
    assert 150 < len(published) < 200
    # Reviews: 1-5 stars, one per customer and product, summaries that add up.
    reviews = rows(container, "SELECT * FROM read.product_reviews")
    assert len(reviews) == report.reviews > 0
    assert all(1 <= r["rating"] <= 5 for r in reviews)
    assert len({(r["product_id"], r["author_id"]) for r in reviews}) == len(reviews)
    by_product: dict[Any, list[int]] = {}
    for r in reviews:
        by_product.setdefault(r["product_id"], []).append(r["rating"])
    for p in products:
        ratings = by_product.get(p["id"], [])
        assert p["rating_count"] == len(ratings) and p["rating_sum"] == sum(ratings)

    # The read API's queries find them: search by brand, facets, a listing.
    brand = published[0]["attributes"]["brand"]

    async def search() -> SearchResult:
        async with await psycopg.AsyncConnection.connect(
            container.conninfo, autocommit=True
        ) as conn:
            return await search_products(conn, brand.lower(), ProductFilter())

    found = asyncio.run(search())
    assert found.total == sum(1 for p in published if p["attributes"]["brand"] == brand)
    assert found.facets is not None and found.facets["categories"]


def test_a_rerun_adds_only_what_is_missing(container: Container) -> None:
    first = seed(container, SeedPlan(products=60, seed=5, sellers=3, customers=20))
    events = count_events(container)
    again = seed(container, SeedPlan(products=60, seed=5, sellers=3, customers=20))
    assert (again.events, again.products, again.existing_products) == (0, 0, 60)
    assert count_events(container) == events
    more = seed(container, SeedPlan(products=90, seed=5, sellers=3, customers=20))
    assert (more.products, more.existing_products, more.accounts, more.categories) == (30, 60, 0, 0)
    assert more.stock_items == 30
    catch_up_views(container)
    assert len(rows(container, "SELECT id FROM read.catalog_products")) == 90
    assert first.events + more.events == count_events(container)


def test_a_sku_taken_by_another_product_is_refused(
    make_database: Callable[[], str], tmp_path: Path
) -> None:
    def fresh() -> Container:
        c = bootstrap(
            Settings(
                database_url=make_database(),
                data_dir=tmp_path / "var",
                secret_key=TEST_SECRET,  # type: ignore[arg-type]
            )
        )
        c.migrate()
        return c

    plan = SeedPlan(products=5, seed=9, sellers=2, customers=10)
    probe, target = fresh(), fresh()
    try:
        seed(probe, plan)
        created = rows(
            probe,
            "SELECT originator_id FROM catalog_events WHERE topic LIKE %s",
            "%Product.Created",
        )
        taken = sorted(probe.catalog_commands.get_product(r["originator_id"]).sku for r in created)[
            2
        ]
        seller = Principal(uuid4(), uuid4(), frozenset({"customer", "seller"}))
        target.catalog_commands.create_product(
            seller, uuid4(), seller.user_id, taken, "Someone else's", price=Money.of("5", "EUR")
        )
        report = seed(target, plan)
        assert report.refused_skus == [taken]
        assert report.products == 4 and report.stock_items == 4
        # No stock or reviews for the refused product: its SKU has no stock item.
        assert target.inventory_commands.find(taken) is None
    finally:
        probe.close()
        target.close()
