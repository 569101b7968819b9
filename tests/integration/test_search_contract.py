"""The catalog search contract: one suite of behaviours (``CatalogSearchContract``),
run against each adapter of ``projections.catalog.search.CatalogSearch``, like the
per-backend contract tests of ``eventsourcing``:

- ``TestPostgresCatalogSearch``: full-text search over ``read.catalog_products``
  (and ``TestPostgresSearchBeyondItsCandidates``: its bound on the work of a search);
- ``TestOpenSearchCatalogSearch``: an OpenSearch index on osmem-server (over HTTP),
  filled by the indexer from the view's change feed.

The catalog is written through the real command handlers and event stores and
projected by the real projections (``test_catalog_projections``' world); the
expected answers are derived from what the catalog holds, never from the adapter.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any
from uuid import UUID

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import FastAPI

from domain.money import Money
from infra.entrypoints import problems
from infra.settings import Settings
from infra.wiring.process import Container
from projections.catalog.product_queries import list_products
from projections.catalog.search import (
    PRICE_EDGES,
    RATING_BUCKETS,
    BadSearch,
    CatalogSearch,
    ProductFilter,
    SearchResult,
    price_buckets,
)
from projections.catalog.search_postgres import PostgresCatalogSearch
from projections.catalog.views import CATALOG_VIEWS
from projections.cursors import BadCursor
from read_api import catalog as catalog_router
from streams.replay import catch_up
from tests.integration import test_catalog_projections as catalog_world
from tests.integration.test_catalog_projections import (
    NASTY,
    SELLER,
    UPSTREAM,
    World,
    activate,
    build,
)

pytestmark = pytest.mark.integration

world = catalog_world.world  # the fixture: the catalog written through the commands

PARENTS = {"phones": "electronics", "smartphones": "phones", "kitchen": "home"}
SORT_KEYS = catalog_world.SORT_KEYS
DESCENDING = {"price_desc", "newest", "rating"}


@dataclass
class Adapter:
    engine: CatalogSearch
    catch_up: Callable[[], object]
    """Brings the search up to date with the view (nothing to do for Postgres)."""


@dataclass
class Shop:
    """The catalog, a search adapter, and an event loop to call it from tests."""

    world: World
    adapter: Adapter
    portal: BlockingPortal

    def id(self, key: str) -> UUID:
        return self.world.products[key]

    def search(self, text: str, where: ProductFilter | None = None, **kw: Any) -> SearchResult:
        call = partial(self.adapter.engine.search, text, where or ProductFilter(), **kw)
        return self.portal.call(call)

    def ids(self, text: str, where: ProductFilter | None = None, **kw: Any) -> list[UUID]:
        return [p["id"] for p in self.search(text, where, limit=100, **kw).items]

    def pages(
        self, text: str, sort: str, limit: int, where: ProductFilter | None = None
    ) -> list[Any]:
        first = self.search(text, where, sort=sort, limit=limit)
        assert first.total is not None and first.facets is not None
        items, cursor = list(first.items), first.next_cursor
        while cursor is not None:
            page = self.search(text, where, sort=sort, limit=limit, cursor=cursor)
            assert page.total is None and page.facets is None  # the first page only
            assert len(page.items) <= limit
            items += page.items
            cursor = page.next_cursor
        return items

    def project(self) -> None:
        """Catch the catalog views up with the logs, then the search."""
        for view in self.world.views:
            projection = next(p for v, p in CATALOG_VIEWS if v.name == view.name)
            for log in UPSTREAM[view.name]:
                catch_up(self.world.apps[log], view, projection(view))
        self.adapter.catch_up()


def implied_facets(w: World, items: list[dict[str, Any]]) -> dict[str, Any]:
    """The facets a set of matches implies: each product counts under its categories
    and their ancestors; price buckets by the Postgres edges; minimum ratings."""
    names = {w.categories[key]: key.capitalize() for key in w.categories}
    keys = {v: k for k, v in w.categories.items()}
    categories: dict[UUID, int] = {}
    prices: dict[str, dict[int, int]] = {}
    for item in items:
        under: set[UUID] = set()
        for category in item["category_ids"]:
            key: str | None = keys[category]
            while key is not None:
                under.add(w.categories[key])
                key = PARENTS.get(key)
        for category in under:
            categories[category] = categories.get(category, 0) + 1
        amount = Decimal(item["price"]["amount"])
        bucket = sum(1 for edge in PRICE_EDGES if amount >= edge)
        counts = prices.setdefault(item["price"]["currency"], {})
        counts[bucket] = counts.get(bucket, 0) + 1
    ordered = sorted(categories.items(), key=lambda c: (-c[1], str(c[0])))
    return {
        "categories": [{"id": c, "name": names[c], "count": n} for c, n in ordered],
        "price": [price_buckets(currency, n) for currency, n in sorted(prices.items())],
        "rating": [
            {
                "min": stars,
                "count": sum(
                    1
                    for p in items
                    if p["rating"]["count"] and Decimal(p["rating"]["average"]) >= stars
                ),
            }
            for stars in RATING_BUCKETS
        ],
    }


@pytest.fixture
def portal(container: Container) -> Iterator[BlockingPortal]:
    """An event loop in a thread, for the async adapters (and the read pool)."""
    with start_blocking_portal() as portal:
        portal.call(container.read_pool.open)
        try:
            yield portal
        finally:
            portal.call(container.read_pool.close)


@pytest.fixture
def shop(world: World, portal: BlockingPortal, adapter: Adapter) -> Shop:
    """The catalog projected into generation 1 of its views, and searchable."""
    build(world, 1)
    activate(world, 1)
    adapter.catch_up()
    return Shop(world, adapter, portal)


class CatalogSearchContract:
    """What every catalog search adapter does. Subclasses provide ``adapter``."""

    @pytest.fixture
    def adapter(self, container: Container) -> Adapter:
        raise NotImplementedError

    # --- matching --------------------------------------------------------------------

    def test_every_word_must_match_as_a_prefix(self, shop: Shop) -> None:
        s = shop
        assert s.ids("espre") == [s.id("espresso")]
        assert s.ids("Smart PHO") == [s.id("smartphone")]
        assert set(s.ids("aurora")) == {s.id("smartphone"), s.id("case")}
        assert s.ids("aurora cas") == [s.id("case")]
        assert s.ids("aurora kettle") == []
        # Attribute values and descriptions are searched; names weigh most.
        assert s.ids("bellavita") == [s.id("espresso")]
        assert s.ids("frother") == [s.id("espresso")]
        assert s.ids("phone") == [s.id("case"), s.id("smartphone")]  # name, then description
        found = s.search("espre")
        assert found.mode == "exact" and found.total == 1

    def test_a_typo_finds_the_product(self, shop: Shop) -> None:
        s = shop
        typo = s.search("expresso")
        assert typo.mode == "fuzzy"
        assert [p["id"] for p in typo.items] == [s.id("espresso")]
        assert typo.total == 1
        assert s.ids("smartfone") == [s.id("smartphone")]
        assert s.ids("copper ketle") == [s.id("kettle")]
        assert s.search("zzzyqx").items == []

    def test_items_have_the_listing_shape(self, shop: Shop) -> None:
        s = shop
        where = ProductFilter(category_id=s.world.categories["kitchen"])
        listed = catalog_world.query(
            s.world, lambda c: list_products(c, where, "price_asc", None, 100)
        )
        by_id = {p["id"]: p for p in listed.items}
        for text in ("kettle", "espresso", "widget"):
            for item in s.search(text, limit=100).items:
                assert item == by_id[item["id"]]

    def test_unpublished_and_archived_products_never_appear(self, shop: Shop) -> None:
        s = shop
        assert s.ids("secret prototype") == []
        assert s.ids("gadget") == []
        assert s.ids("kettle") == [s.id("kettle")]  # not the archived "Old Kettle"
        s.world.catalog.unpublish(SELLER, s.id("kettle"))
        s.world.catalog.archive(SELLER, s.id("espresso"))
        s.project()
        assert s.ids("kettle") == []
        assert s.ids("espresso") == []
        assert s.ids("expresso") == []
        assert s.search("copper").facets == {
            "categories": [],
            "price": [],
            "rating": [{"min": stars, "count": 0} for stars in RATING_BUCKETS],
        }

    # --- filters and facets ----------------------------------------------------------

    def test_each_filter(self, shop: Shop) -> None:
        s, categories = shop, shop.world.categories
        widgets = s.world.widgets
        assert s.ids("aurora", ProductFilter(category_id=categories["smartphones"])) == [
            s.id("smartphone")
        ]
        in_electronics = ProductFilter(category_id=categories["electronics"])  # an ancestor
        assert set(s.ids("aurora", in_electronics)) == {s.id("smartphone"), s.id("case")}
        assert s.ids("aurora", ProductFilter(category_id=categories["kitchen"])) == []
        price = ProductFilter(currency="EUR", min_price=Decimal(15), max_price=Decimal("20.00"))
        assert set(s.ids("widget", price)) == set(widgets[2:6])  # 15, 15, 20, 20
        odd = ProductFilter(
            currency="EUR", min_price=Decimal("14.995"), max_price=Decimal("15.001")
        )
        assert set(s.ids("widget", odd)) == set(widgets[2:4])
        assert s.ids("widget", ProductFilter(currency="USD")) == []
        assert s.ids("aurora", ProductFilter(min_rating=Decimal(4))) == [s.id("smartphone")]
        assert s.ids("aurora", ProductFilter(min_rating=Decimal("4.51"))) == []
        assert s.ids("aurora", ProductFilter(in_stock=True)) == [s.id("smartphone")]
        assert s.ids("aurora", ProductFilter(in_stock=False)) == [s.id("case")]
        assert set(s.ids("widget", ProductFilter(in_stock=True))) == {
            widgets[n] for n in range(14) if n % 4
        }
        blue = ProductFilter(attributes={"color": "blue"})
        assert set(s.ids("widget", blue)) == {widgets[n] for n in range(14) if n % 2}
        assert s.ids("aurora", ProductFilter(attributes={"color": "red"})) == [s.id("case")]
        mixed = ProductFilter(attributes={"color": "red", "brand": "aurora"})
        assert s.ids("aurora", mixed) == [s.id("case")]
        assert s.ids("aurora", ProductFilter(attributes={"color": "red", "brand": "x"})) == []

    @pytest.mark.parametrize(
        ("text", "where"),
        [
            ("aurora", ProductFilter()),
            ("widget", ProductFilter()),
            ("widget", ProductFilter(in_stock=True, attributes={"color": "green"})),
            ("a", ProductFilter()),
            ("expresso", ProductFilter()),
            ("kettle", ProductFilter(currency="EUR", max_price=Decimal(5))),
        ],
    )
    def test_facets_count_what_the_matches_imply(
        self, shop: Shop, text: str, where: ProductFilter
    ) -> None:
        first = shop.search(text, where, limit=3)
        matches = shop.pages(text, "price_asc", 3, where)
        assert (first.total, first.exhaustive) == (len(matches), True)
        assert first.facets == implied_facets(shop.world, matches)
        assert shop.search(text, where, facets=False).facets is None

    def test_the_facets_of_a_known_search(self, shop: Shop) -> None:
        result = shop.search("aurora")
        assert result.total == 2 and result.facets is not None
        categories = {f["name"]: f["count"] for f in result.facets["categories"]}
        assert categories == {"Electronics": 2, "Phones": 2, "Smartphones": 1}
        (eur,) = result.facets["price"]
        counts = {b["min"]: b["count"] for b in eur["buckets"]}
        assert counts["10"] == 1 and counts["250"] == 1 and sum(counts.values()) == 2
        assert eur["buckets"][-1] == {"min": "1000", "max": None, "count": 0}
        assert {f["min"]: f["count"] for f in result.facets["rating"]} == {4: 1, 3: 1, 2: 1, 1: 1}

    # --- sorts and pages -------------------------------------------------------------

    @pytest.mark.parametrize("sort", ["price_asc", "price_desc", "newest", "rating"])
    def test_each_sort_orders_every_match_and_pages_cover_them_once(
        self, shop: Shop, sort: str
    ) -> None:
        everything = shop.pages("widget", sort, 100)
        assert {p["id"] for p in everything} == set(shop.world.widgets)
        keys = [SORT_KEYS[sort](p) for p in everything]
        assert keys == sorted(keys, reverse=sort in DESCENDING)
        for limit in (1, 3, 5):
            paged = [p["id"] for p in shop.pages("widget", sort, limit)]
            assert paged == [p["id"] for p in everything]

    @pytest.mark.parametrize("text", ["widget", "a", "widgeet"])
    def test_relevance_pages_cover_every_match_once(self, shop: Shop, text: str) -> None:
        everything = [p["id"] for p in shop.pages(text, "relevance", 100)]
        assert len(everything) == len(set(everything)) >= 4
        for limit in (1, 3):
            assert [p["id"] for p in shop.pages(text, "relevance", limit)] == everything
        assert shop.search(text).mode == ("fuzzy" if text == "widgeet" else "exact")

    # --- changes ---------------------------------------------------------------------

    def test_a_price_change_shows_once_caught_up(self, shop: Shop) -> None:
        s = shop
        s.world.catalog.change_price(SELLER, s.id("espresso"), Money.of("99", "EUR"))
        s.project()
        (item,) = s.search("espresso").items
        assert item["price"] == {"amount": "99.00", "currency": "EUR"}
        cheap = ProductFilter(currency="EUR", max_price=Decimal(100))
        assert s.id("espresso") in s.ids("machine", cheap)
        facets = s.search("espresso").facets
        assert facets is not None
        assert {b["min"]: b["count"] for b in facets["price"][0]["buckets"]}["50"] == 1

    def test_read_your_writes_over_http(self, shop: Shop) -> None:
        """``GET /search`` with a consistency token answers only once the search
        holds the write: the adapter catches up meanwhile (here, a moment later)."""
        s = shop
        written = s.world.catalog.change_price(SELLER, s.id("kettle"), Money.of("41", "EUR"))
        token = str(written.position)

        def later() -> None:
            time.sleep(0.3)
            s.project()

        worker = threading.Thread(target=later)
        worker.start()
        try:
            answer = s.portal.call(
                partial(http_get, s, "/search", {"q": "kettle"}, {"X-Consistency-Token": token})
            )
        finally:
            worker.join()
        assert answer.status_code == 200, answer.text
        assert answer.json()["items"][0]["price"]["amount"] == "41.00"
        assert set(answer.json()) == {
            "items",
            "next_cursor",
            "mode",
            "total",
            "facets",
            "exhaustive",
        }

    # --- refusals --------------------------------------------------------------------

    def test_malformed_input_is_refused_cleanly(self, shop: Shop) -> None:
        s = shop
        for text in ("", "   ", "&|!:*()", "___"):
            with pytest.raises(BadSearch):
                s.search(text)
        for text in NASTY:
            try:
                assert isinstance(s.search(text).items, list)
            except BadSearch:
                continue
        page = s.search("widget", sort="price_asc", limit=2)
        assert page.next_cursor is not None
        for sort, cursor in [
            ("price_asc", "garbage!"),
            ("price_asc", "eyJ4IjoxfQ"),
            ("price_desc", page.next_cursor),  # another sort's
            ("cheapest", None),
        ]:
            with pytest.raises(BadCursor):
                s.search("widget", sort=sort, cursor=cursor)
        problems_seen = [
            s.portal.call(partial(http_get, s, "/search", params, {}))
            for params in ({"q": "&&& !!"}, {"q": "kettle", "cursor": "not-a-cursor"})
        ]
        for answer in problems_seen:
            assert answer.status_code == 400, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")


async def http_get(
    s: Shop, path: str, params: dict[str, str], headers: dict[str, str]
) -> httpx.Response:
    """Through the read API as the bootstrap wires it (``ReadServices.search``)."""
    app = FastAPI()
    problems.install(app)
    app.state.read = s.world.container.read_services()
    app.include_router(catalog_router.router)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        return await client.get(path, params=params, headers=headers)


class TestPostgresCatalogSearch(CatalogSearchContract):
    @pytest.fixture
    def adapter(self, container: Container) -> Adapter:
        assert isinstance(container.catalog_search, PostgresCatalogSearch)  # the default
        return Adapter(PostgresCatalogSearch(container.read_pool), lambda: None)


class TestPostgresSearchBeyondItsCandidates:
    """At a million products a common word matches ~90,000: the PostgreSQL adapter
    ranks and counts only its first ``candidates`` matches, and says so. Here 5 of
    the 14 widgets."""

    @pytest.fixture
    def adapter(self, container: Container) -> Adapter:
        return Adapter(PostgresCatalogSearch(container.read_pool, candidates=5), lambda: None)

    def test_the_total_and_facets_are_lower_bounds_and_say_so(self, shop: Shop) -> None:
        first = shop.search("widget", limit=3)
        assert (first.total, first.exhaustive) == (5, False)
        widgets = [
            p for p in shop.pages("widget", "price_asc", 100) if p["id"] in shop.world.widgets
        ]
        every = implied_facets(shop.world, widgets)
        assert first.facets is not None
        counted = {f["id"]: f["count"] for f in first.facets["categories"]}
        assert all(counted.get(f["id"], 0) <= f["count"] for f in every["categories"])
        assert sum(b["count"] for b in first.facets["price"][0]["buckets"]) == 5
        for seen, true in zip(first.facets["rating"], every["rating"], strict=True):
            assert seen["count"] <= true["count"]
        small = shop.search("aurora")
        assert (small.total, small.exhaustive) == (2, True)

    def test_relevance_pages_through_the_candidates_once(self, shop: Shop) -> None:
        paged = [p["id"] for p in shop.pages("widget", "relevance", 2)]
        assert len(paged) == len(set(paged)) == 5
        assert set(paged) <= set(shop.world.widgets)
        assert [p["id"] for p in shop.pages("widget", "relevance", 100)] == paged

    @pytest.mark.parametrize("sort", ["price_asc", "price_desc", "newest", "rating"])
    def test_the_other_sorts_still_order_every_match(self, shop: Shop, sort: str) -> None:
        first = shop.search("widget", sort=sort, limit=3)
        assert first.exhaustive is False
        everything = shop.pages("widget", sort, 3)
        assert {p["id"] for p in everything} == set(shop.world.widgets)
        keys = [SORT_KEYS[sort](p) for p in everything]
        assert keys == sorted(keys, reverse=sort in DESCENDING)
        assert [p["id"] for p in first.items] == [p["id"] for p in everything[:3]]


class TestOpenSearchCatalogSearch(CatalogSearchContract):
    @pytest.fixture
    def settings(self, settings: Settings, osmem_url: str) -> Settings:
        return settings.model_copy(update={"opensearch_url": osmem_url})

    @pytest.fixture
    def adapter(self, container: Container) -> Adapter:
        assert container.catalog_search is not None and container.search_indexer is not None
        return Adapter(container.catalog_search, container.search_indexer.sync)
