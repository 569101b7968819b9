"""The catalog read models against a real Postgres: products (with stock and ratings
from two other logs), the category tree, inventory levels and reviews; the query
functions the read API calls (filters, sorts, keyset pages, search with prefixes,
typos and facets); redelivery and rebuilds in another log order change nothing.

The write side runs in-process through the real command handlers and event stores.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar
from uuid import UUID, uuid4

import httpx
import psycopg
import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import Tracking
from fastapi import FastAPI
from psycopg.rows import dict_row
from psycopg.sql import SQL, Identifier

from commands.catalog.inventory import InventoryApplication, InventoryCommands
from commands.catalog.products import CatalogApplication, CatalogCommands
from commands.catalog.reviews import ReviewCommands, ReviewsApplication
from domain.access import Principal
from domain.inventory import StockItem, stock_item_id
from domain.money import Money
from infra.entrypoints import problems
from infra.entrypoints.rebuild import rebuild
from infra.wiring.process import Container
from infra.wiring.views import make_view
from projections import generations
from projections.catalog.category_queries import category_tree
from projections.catalog.product_queries import list_products, product_detail
from projections.catalog.products import CatalogProductsProjection, CatalogProductsView
from projections.catalog.review_queries import product_reviews
from projections.catalog.search import BadSearch, ProductFilter, SearchResult
from projections.catalog.search_queries import search_products
from projections.catalog.stock_queries import inventory_levels
from projections.catalog.views import CATALOG_VIEWS
from projections.cursors import BadCursor
from projections.engine import View, ViewProjection, followed_logs, generation_schema
from read_api import catalog as catalog_router
from streams.replay import catch_up

pytestmark = pytest.mark.integration

ADMIN = Principal(uuid4(), uuid4(), frozenset({"customer", "admin"}))
SELLER = Principal(uuid4(), uuid4(), frozenset({"customer", "seller"}))
OTHER_SELLER = Principal(uuid4(), uuid4(), frozenset({"customer", "seller"}))
CUSTOMERS = [Principal(uuid4(), uuid4(), frozenset({"customer"})) for _ in range(3)]

T = TypeVar("T")


@dataclass
class World:
    container: Container
    catalog_app: CatalogApplication
    inventory_app: InventoryApplication
    reviews_app: ReviewsApplication
    catalog: CatalogCommands
    inventory: InventoryCommands
    reviews: ReviewCommands
    categories: dict[str, UUID] = field(default_factory=dict)
    products: dict[str, UUID] = field(default_factory=dict)
    widgets: list[UUID] = field(default_factory=list)
    views: list[View] = field(default_factory=list)

    @property
    def apps(self) -> dict[str, Application[Any]]:
        return {
            "catalog": self.catalog_app,
            "inventory": self.inventory_app,
            "reviews": self.reviews_app,
        }


UPSTREAM = {view.name: followed_logs(view) for view, _ in CATALOG_VIEWS}
"""The logs each catalog view follows, as the views declare them."""


def product(
    world: World,
    key: str,
    name: str,
    price: str,
    category: str,
    *,
    seller: Principal = SELLER,
    attributes: dict[str, str] | None = None,
    description: str = "",
    stock: int = 0,
    publish: bool = True,
) -> UUID:
    product_id = uuid4()
    sku = f"SKU-{len(world.products) + 1:04d}"
    world.catalog.create_product(
        seller,
        product_id,
        seller.user_id,
        sku,
        name,
        description=description,
        attributes=attributes or {},
        price=Money.of(price, "EUR"),
    )
    world.catalog.categorise(seller, product_id, [world.categories[category]])
    if publish:
        world.catalog.publish(seller, product_id)
    if stock:
        world.inventory.receive(seller, sku, stock)
    world.products[key] = product_id
    return product_id


def sku_of(world: World, key: str) -> str:
    return world.catalog.get_product(world.products[key]).sku


@pytest.fixture
def world(container: Container) -> Iterator[World]:
    env = {**container.app_env, "CREATE_TABLE": "true"}
    catalog_app = CatalogApplication(env=env)
    inventory_app = InventoryApplication(env=env)
    reviews_app = ReviewsApplication(env=env)
    catalog = CatalogCommands(catalog_app)
    w = World(
        container,
        catalog_app,
        inventory_app,
        reviews_app,
        catalog,
        InventoryCommands(inventory_app, catalog),
        ReviewCommands(reviews_app, catalog),
    )
    try:
        write_catalog(w)
        yield w
    finally:
        for view in w.views:
            view.datastore.close()
        for app in (catalog_app, inventory_app, reviews_app):
            app.close()


def write_catalog(w: World) -> None:
    c = w.catalog
    for key, name, parent in [
        ("electronics", "Electronics", None),
        ("phones", "Phones", "electronics"),
        ("smartphones", "Smartphones", "phones"),
        ("home", "Home", None),
        ("kitchen", "Kitchen", "home"),
    ]:
        w.categories[key] = uuid4()
        c.create_category(ADMIN, w.categories[key], name, w.categories[parent] if parent else None)
    # An admin receives stock for a SKU before its product exists: the product row
    # must pick it up whatever order the logs are projected in.
    w.inventory.receive(ADMIN, "SKU-0001", 4)
    product(
        w,
        "smartphone",
        "Aurora Smartphone X",
        "499.00",
        "smartphones",
        attributes={"brand": "aurora", "color": "black"},
        description="A fast phone with a bright screen.",
        stock=6,
    )
    product(
        w,
        "case",
        "Aurora Phone Case",
        "19.99",
        "phones",
        attributes={"brand": "aurora", "color": "red"},
        stock=5,
    )
    product(
        w,
        "kettle",
        "Copper Kettle",
        "45.00",
        "kitchen",
        attributes={"material": "copper", "color": "red"},
        description="Boils water on any stove.",
        stock=3,
    )
    product(
        w,
        "espresso",
        "Espresso Machine Deluxe",
        "250.00",
        "kitchen",
        attributes={"brand": "bellavita"},
        description="Pulls a rich shot; includes a milk frother.",
        stock=7,
    )
    product(w, "draft", "Secret Prototype Gadget", "999.00", "electronics", publish=False)
    product(w, "archived", "Old Kettle", "5.00", "kitchen")
    c.archive(SELLER, w.products["archived"])
    for n in range(14):  # equal prices in pairs: the id must break ties
        w.widgets.append(
            product(
                w,
                f"widget-{n}",
                f"Kitchen Widget {n}",
                f"{10 + (n // 2) * 5}.00",
                "kitchen",
                seller=OTHER_SELLER if n % 3 == 0 else SELLER,
                attributes={"color": "blue" if n % 2 else "green"},
                stock=n % 4,
            )
        )
    # A later edit, price change and rename: the rows show the latest.
    c.update_details(SELLER, w.products["kettle"], description="Boils water on any stove, fast.")
    c.change_price(SELLER, w.products["espresso"], Money.of("229.00", "EUR"))
    # Stock: reserve all of the case (out of stock), a released and a committed
    # reservation on the phone, a low-stock threshold on the kettle.
    w.inventory.reserve(sku_of(w, "case"), "order-1", 5)
    phone = sku_of(w, "smartphone")
    w.inventory.reserve(phone, "order-2", 2)
    w.inventory.reserve(phone, "order-3", 1)
    w.inventory.release(phone, "order-2")
    w.inventory.commit(phone, "order-3")  # on hand 10 - 1 = 9, reserved 0
    w.inventory.set_low_stock_threshold(SELLER, sku_of(w, "kettle"), 5)
    # Reviews: 5 and 4 visible, a 1 hidden by an admin, an edited one on the kettle.
    phone_id = w.products["smartphone"]
    w.reviews.write(CUSTOMERS[0], phone_id, 5, "Great", "Love it")
    w.reviews.write(CUSTOMERS[1], phone_id, 4, "Good")
    hidden = w.reviews.write(CUSTOMERS[2], phone_id, 1, "spam", "buy followers")
    w.reviews.hide(ADMIN, hidden.id, "spam")
    edited = w.reviews.write(CUSTOMERS[0], w.products["kettle"], 3, "ok")
    w.reviews.edit(CUSTOMERS[0], edited.id, 2, "meh", "it rusts")
    w.reviews.reply(SELLER, edited.id, "Sorry to hear that")
    w.reviews.write(CUSTOMERS[1], w.products["espresso"], 5)


# --- building views ----------------------------------------------------------------------


def build(w: World, generation: int, order: list[str] | None = None) -> None:
    """Every catalog view at ``generation``, each log caught up in ``order``."""
    for view_class, projection_class in CATALOG_VIEWS:
        view = make_view(w.container.conninfo, view_class, generation)
        w.views.append(view)
        projection = projection_class(view)
        logs = UPSTREAM[view_class.name]
        for log in sorted(logs, key=(order or logs).index):
            catch_up(w.apps[log], view, projection)


def activate(w: World, generation: int) -> None:
    with w.container.pool.connection() as conn:
        for view_class, _ in CATALOG_VIEWS:
            generations.activate(conn, view_class.name, list(view_class.tables), generation)


def contents(w: World, name: str, generation: int) -> dict[str, list[dict[str, Any]]]:
    tables = next(vc.tables for vc, _ in CATALOG_VIEWS if vc.name == name)
    schema = generation_schema(name, generation)
    out = {}
    with w.container.pool.connection() as conn:
        cursor = conn.cursor(row_factory=dict_row)
        for table in tables:
            cursor.execute(SQL("SELECT * FROM {0}").format(Identifier(schema, table)))
            # A revision numbers a row's changes in commit order: bookkeeping of the
            # change feed, which differs with the order the logs were replayed in.
            rows = [{k: v for k, v in r.items() if k != "revision"} for r in cursor.fetchall()]
            out[table] = sorted(rows, key=lambda r: [str(v) for v in r.values()])
    return out


def query(w: World, call: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
    async def run() -> T:
        async with await psycopg.AsyncConnection.connect(
            w.container.conninfo, autocommit=True
        ) as conn:
            return await call(conn)

    return asyncio.run(run())


@pytest.fixture
def served(world: World) -> World:
    build(world, 1)
    activate(world, 1)
    return world


# --- the rows ------------------------------------------------------------------------------


def test_product_rows_carry_stock_and_rating_whatever_the_log_order(served: World) -> None:
    w = served
    phone = query(w, lambda c: product_detail(c, w.products["smartphone"]))
    assert phone is not None
    assert phone["price"] == {"amount": "499.00", "currency": "EUR"}
    assert phone["stock"] == {"available": 9, "in_stock": True, "on_hand": 9, "reserved": 0}
    assert phone["rating"] == {
        "count": 2,
        "average": "4.50",
        "histogram": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1},
    }
    assert phone["attributes"] == {"brand": "aurora", "color": "black"}
    case = query(w, lambda c: product_detail(c, w.products["case"]))
    assert case is not None and case["stock"]["in_stock"] is False
    kettle = query(w, lambda c: product_detail(c, w.products["kettle"]))
    assert kettle is not None
    assert kettle["description"] == "Boils water on any stove, fast."
    assert kettle["rating"]["average"] == "2.00"
    espresso = query(w, lambda c: product_detail(c, w.products["espresso"]))
    assert espresso is not None and espresso["price"]["amount"] == "229.00"

    # Drafts and archived products: only their seller and admins see them.
    draft = w.products["draft"]
    assert query(w, lambda c: product_detail(c, draft)) is None
    assert query(w, lambda c: product_detail(c, draft, viewer_id=OTHER_SELLER.user_id)) is None
    seen = query(w, lambda c: product_detail(c, draft, viewer_id=SELLER.user_id))
    assert seen is not None and seen["status"] == "draft"
    assert query(w, lambda c: product_detail(c, w.products["archived"], admin=True))

    # Another log order (reviews, inventory, catalog) gives identical rows.
    build(w, 2, order=["reviews", "inventory", "catalog"])
    for view_class, _ in CATALOG_VIEWS:
        assert contents(w, view_class.name, 2) == contents(w, view_class.name, 1), view_class.name


def test_redelivered_events_change_nothing(served: World) -> None:
    w = served
    before = {vc.name: contents(w, vc.name, 1) for vc, _ in CATALOG_VIEWS}
    for view in w.views:
        projection: ViewProjection[Any] = next(
            pc for vc, pc in CATALOG_VIEWS if vc.name == view.name
        )(view)
        for log in UPSTREAM[view.name]:
            app = w.apps[log]
            for n in app.recorder.select_notifications(start=1, limit=10_000):
                projection.process_event(app.mapper.to_domain_event(n), Tracking(log, n.id))
            catch_up(app, view, projection)
    assert {vc.name: contents(w, vc.name, 1) for vc, _ in CATALOG_VIEWS} == before


def test_a_rebuild_from_zero_gives_identical_rows_and_follows_moves(served: World) -> None:
    w = served
    # Move Smartphones (with its product) from Electronics to Home, then catch up.
    w.catalog.move_category(ADMIN, w.categories["smartphones"], w.categories["home"])
    for view in w.views:
        projection = next(pc for vc, pc in CATALOG_VIEWS if vc.name == view.name)(view)
        for log in UPSTREAM[view.name]:
            catch_up(w.apps[log], view, projection)
    home = ProductFilter(category_id=w.categories["home"])
    electronics = ProductFilter(category_id=w.categories["electronics"])
    in_home = query(w, lambda c: list_products(c, home, "newest", None, 100))
    in_electronics = query(w, lambda c: list_products(c, electronics, "newest", None, 100))
    assert w.products["smartphone"] in {p["id"] for p in in_home.items}
    assert {p["id"] for p in in_electronics.items} == {w.products["case"]}
    tree = query(w, category_tree)
    names = {node["name"]: node for node in tree}
    assert set(names) == {"Electronics", "Home"}
    home_children = {child["name"] for child in names["Home"]["children"]}
    assert home_children == {"Kitchen", "Smartphones"}
    smartphones = next(ch for ch in names["Home"]["children"] if ch["name"] == "Smartphones")
    assert smartphones["path"] == [w.categories["home"], w.categories["smartphones"]]

    build(w, 3, order=["inventory", "reviews", "catalog"])
    for view_class, _ in CATALOG_VIEWS:
        assert contents(w, view_class.name, 3) == contents(w, view_class.name, 1), view_class.name


# --- listing ---------------------------------------------------------------------------------


def all_pages(w: World, where: ProductFilter, sort: str, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = query(w, partial(list_products, where=where, sort=sort, after=cursor, limit=limit))
        items += page.items
        assert len(page.items) <= limit
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor


SORT_KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "price_asc": lambda p: (Decimal(p["price"]["amount"]), p["id"]),
    "price_desc": lambda p: (Decimal(p["price"]["amount"]), p["id"]),
    "newest": lambda p: (p["created_at"], p["id"]),
    "rating": lambda p: (Decimal(p["rating"]["average"] or 0), p["rating"]["count"], p["id"]),
}


def test_keyset_pages_cover_every_row_once_in_order(served: World) -> None:
    for sort in SORT_KEYS:
        check_keyset_pages(served, sort)


def check_keyset_pages(w: World, sort: str) -> None:
    kitchen = ProductFilter(category_id=w.categories["kitchen"])
    everything = all_pages(w, kitchen, sort, 100)
    expected = {w.products["kettle"], w.products["espresso"], *w.widgets}
    assert {p["id"] for p in everything} == expected  # no draft, no archived product
    for limit in (1, 3, 4):
        paged = all_pages(w, kitchen, sort, limit)
        ids = [p["id"] for p in paged]
        assert len(ids) == len(set(ids)) == len(expected)
        assert ids == [p["id"] for p in everything]
    keys = [SORT_KEYS[sort](p) for p in everything]
    assert keys == sorted(keys, reverse=sort != "price_asc")


def test_filters(served: World) -> None:
    w = served

    def ids(where: ProductFilter) -> set[UUID]:
        return {p["id"] for p in all_pages(w, where, "price_asc", 50)}

    widgets = set(w.widgets)
    assert ids(ProductFilter(category_id=w.categories["electronics"])) == {
        w.products["smartphone"],
        w.products["case"],
    }
    assert ids(
        ProductFilter(currency="EUR", min_price=Decimal("40.01"), max_price=Decimal("250"))
    ) == {
        w.products["kettle"],
        w.products["espresso"],
    }
    assert ids(ProductFilter(min_rating=Decimal(4))) == {
        w.products["smartphone"],
        w.products["espresso"],
    }
    in_stock = ids(ProductFilter(in_stock=True))
    assert w.products["case"] not in in_stock
    assert w.products["smartphone"] in in_stock
    assert {w.widgets[n] for n in range(14) if n % 4} <= in_stock
    assert not {w.widgets[n] for n in range(14) if n % 4 == 0} & in_stock
    assert ids(ProductFilter(attributes={"color": "red"})) == {
        w.products["case"],
        w.products["kettle"],
    }
    assert ids(ProductFilter(attributes={"color": "blue", "brand": "x"})) == set()
    assert ids(ProductFilter(attributes={"color": "blue"})) == {
        w.widgets[n] for n in range(14) if n % 2
    }
    assert widgets <= ids(ProductFilter(category_id=w.categories["home"]))
    with pytest.raises(BadCursor):
        query(w, lambda c: list_products(c, ProductFilter(), "newest", "garbage!", 5))
    page = query(w, lambda c: list_products(c, ProductFilter(), "newest", None, 2))
    assert page.next_cursor is not None
    with pytest.raises(BadCursor):  # a cursor of another sort
        query(w, lambda c: list_products(c, ProductFilter(), "price_asc", page.next_cursor, 2))


# --- search ------------------------------------------------------------------------------------


def search(w: World, text: str, where: ProductFilter | None = None, **kw: Any) -> SearchResult:
    return query(w, lambda c: search_products(c, text, where or ProductFilter(), **kw))


def test_search_by_word_prefix_and_typo(served: World) -> None:
    w = served
    by_word = search(w, "kettle")
    assert by_word.mode == "exact"
    assert [p["id"] for p in by_word.items] == [w.products["kettle"]]  # not the archived one
    assert [p["id"] for p in search(w, "espre").items] == [w.products["espresso"]]
    assert [p["id"] for p in search(w, "Smart PHO").items] == [w.products["smartphone"]]
    # Attribute values and descriptions are searched too, names weigh most.
    assert {p["id"] for p in search(w, "bellavita").items} == {w.products["espresso"]}
    assert {p["id"] for p in search(w, "frother").items} == {w.products["espresso"]}
    aurora = search(w, "aurora")
    assert {p["id"] for p in aurora.items} == {w.products["smartphone"], w.products["case"]}
    # Typos: nothing matches exactly, trigram similarity finds the name.
    typo = search(w, "expresso")
    assert typo.mode == "fuzzy"
    assert [p["id"] for p in typo.items] == [w.products["espresso"]]
    assert [p["id"] for p in search(w, "smartfone").items] == [w.products["smartphone"]]
    assert search(w, "zzzyqx").items == []
    # Drafts are never found.
    assert search(w, "secret").items == []


NASTY = ["'", "foo & bar | !baz", "a:*", "(((", "'; DROP TABLE x; --", "\\", "é" * 500, "x <-> y"]


def test_any_search_text_is_answered_or_refused_cleanly(served: World) -> None:
    for text in NASTY:
        try:
            result = search(served, text)
        except BadSearch:
            continue
        assert isinstance(result.items, list)


def test_search_without_words_is_refused(served: World) -> None:
    for text in ("", "   ", "&|!:*()", "___"):
        with pytest.raises(BadSearch):
            search(served, text)


def test_search_facets_count_every_match(served: World) -> None:
    w = served
    result = search(w, "aurora")
    assert result.total == 2
    assert result.facets is not None
    categories = {f["name"]: f["count"] for f in result.facets["categories"]}
    assert categories == {"Electronics": 2, "Phones": 2, "Smartphones": 1}
    (eur,) = result.facets["price"]
    assert eur["currency"] == "EUR"
    counts = {b["min"]: b["count"] for b in eur["buckets"]}
    assert counts["10"] == 1 and counts["250"] == 1 and sum(counts.values()) == 2
    assert eur["buckets"][-1] == {"min": "1000", "max": None, "count": 0}
    assert {f["min"]: f["count"] for f in result.facets["rating"]} == {4: 1, 3: 1, 2: 1, 1: 1}

    widgets = search(w, "widget", limit=5)
    assert widgets.total == 14 and len(widgets.items) == 5
    assert widgets.facets is not None
    assert sum(b["count"] for b in widgets.facets["price"][0]["buckets"]) == 14
    # Paging a search: every match once, facets only with the first page.
    seen = [p["id"] for p in widgets.items]
    cursor = widgets.next_cursor
    while cursor is not None:
        page = search(w, "widget", limit=5, after=cursor)
        assert page.facets is None
        seen += [p["id"] for p in page.items]
        cursor = page.next_cursor
    assert sorted(seen) == sorted(w.widgets) and len(seen) == 14
    # Sorted by price within a filtered search.
    cheap = search(w, "widget", ProductFilter(max_price=Decimal("20")), sort="price_desc")
    prices = [Decimal(p["price"]["amount"]) for p in cheap.items]
    assert prices == sorted(prices, reverse=True) and max(prices) == Decimal("20.00")


# --- inventory and reviews -------------------------------------------------------------------


def test_inventory_levels_for_sellers_and_admins(served: World) -> None:
    w = served
    mine = query(w, lambda c: inventory_levels(c, SELLER.user_id, limit=100))
    skus = {row["sku"]: row for row in mine.items}
    assert sku_of(w, "smartphone") in skus and sku_of(w, "draft") in skus
    assert all(row["seller_id"] == SELLER.user_id for row in mine.items)
    case = skus[sku_of(w, "case")]
    assert (case["on_hand"], case["reserved"], case["available"]) == (5, 5, 0)
    phone = skus[sku_of(w, "smartphone")]
    assert (phone["on_hand"], phone["reserved"], phone["available"]) == (9, 0, 9)
    kettle = skus[sku_of(w, "kettle")]
    assert kettle["low_stock"] and kettle["low_since"] is not None
    low = query(w, lambda c: inventory_levels(c, SELLER.user_id, low_only=True))
    assert {row["sku"] for row in low.items} == {sku_of(w, "kettle")}
    # Admins page through every SKU.
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = query(w, partial(inventory_levels, seller_id=None, after=cursor, limit=4))
        seen += [row["sku"] for row in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == len(w.products)


def test_review_lists_with_histograms(served: World) -> None:
    w = served
    phone = w.products["smartphone"]
    listed = query(w, lambda c: product_reviews(c, phone))
    assert [r["rating"] for r in listed["items"]] == [4, 5]  # newest first, hidden left out
    assert listed["summary"] == {
        "count": 2,
        "average": "4.50",
        "histogram": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1},
    }
    everything = query(w, lambda c: product_reviews(c, phone, include_hidden=True, limit=2))
    assert len(everything["items"]) == 2 and everything["next_cursor"]
    cursor = everything["next_cursor"]
    rest = query(w, lambda c: product_reviews(c, phone, include_hidden=True, after=cursor))
    assert [r["hidden"] for r in rest["items"]] == [False]
    assert rest["summary"] is None
    kettle = query(w, lambda c: product_reviews(c, w.products["kettle"]))
    (review,) = kettle["items"]
    assert (review["rating"], review["title"], review["reply"]) == (2, "meh", "Sorry to hear that")


def test_catalog_products_view_is_exported_for_wiring() -> None:
    assert (CatalogProductsView, CatalogProductsProjection) in CATALOG_VIEWS
    # Stock and reviews are part of a product row: their logs feed the product view.
    assert UPSTREAM["catalog_products"] == ("catalog", "inventory", "reviews")


# --- the router over HTTP (a minimal app; the real one is in infra/entrypoints/http.py) ---


def catalog_api(w: World) -> FastAPI:
    app = FastAPI()
    problems.install(app)
    app.state.read = dataclasses.replace(
        w.container.read_services(),
        read_your_writes_timeout=0.5,
        followed_logs={name: frozenset(logs) for name, logs in UPSTREAM.items()},
    )
    app.include_router(catalog_router.router)
    return app


def test_the_read_api_answers_and_refuses_cleanly(served: World) -> None:
    w = served
    head = w.catalog_app.recorder.max_notification_id() or 0
    asyncio.run(check_read_api(w, head))


async def check_read_api(w: World, head: int) -> None:
    transport = httpx.ASGITransport(app=catalog_api(w), raise_app_exceptions=False)
    await w.container.read_pool.open()
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
            await read_api_checks(w, head, client)
    finally:
        await w.container.read_pool.close()


async def read_api_checks(w: World, head: int, client: httpx.AsyncClient) -> None:
    found = await client.get(
        "/search", params={"q": "kettle", "currency": "eur", "max_price": "50"}
    )
    assert found.status_code == 200, found.text
    assert [p["name"] for p in found.json()["items"]] == ["Copper Kettle"]
    assert found.json()["facets"]["price"][0]["currency"] == "EUR"
    listed = await client.get(
        "/products",
        params={"category": str(w.categories["kitchen"]), "attr": "color:red", "limit": 5},
        headers={"X-Consistency-Token": f"catalog:{head}"},
    )
    assert listed.status_code == 200, listed.text
    assert [p["name"] for p in listed.json()["items"]] == ["Copper Kettle"]
    detail = await client.get(f"/products/{w.products['smartphone']}")
    assert detail.status_code == 200 and detail.json()["rating"]["average"] == "4.50"
    assert (await client.get(f"/products/{w.products['draft']}")).status_code == 404
    assert (await client.get("/categories")).json()["items"][0]["name"] == "Electronics"
    reviews = await client.get(f"/products/{w.products['smartphone']}/reviews")
    assert reviews.status_code == 200 and reviews.json()["summary"]["count"] == 2
    refusals = [
        ("/search", {"q": "&&& !!"}, 400),
        ("/search", {"q": "x" * 201}, 422),
        ("/search", {"q": ""}, 422),
        ("/search", {"q": "kettle", "cursor": "not-a-cursor"}, 400),
        ("/products", {"cursor": "eyJ4IjoxfQ"}, 400),
        ("/products", {"min_price": "5"}, 400),
        ("/products", {"currency": "XXX"}, 400),
        ("/products", {"currency": "EUR", "min_price": "-1"}, 422),
        ("/products", {"currency": "EUR", "min_price": "NaN"}, 422),
        ("/products", {"currency": "EUR", "min_price": "9", "max_price": "1"}, 400),
        ("/products", {"attr": "no-colon"}, 400),
        ("/products", {"sort": "relevance"}, 422),
        ("/products", {"limit": "1000"}, 422),
        ("/inventory", {}, 401),
        (f"/products/{w.products['smartphone']}/reviews", {"include_hidden": "true"}, 403),
    ]
    for path, params, status in refusals:
        answer = await client.get(path, params=params)
        assert answer.status_code == status, (path, params, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    lagging = await client.get("/products", headers={"X-Consistency-Token": f"catalog:{head + 99}"})
    assert lagging.status_code == 503
    # A log the view does not follow is not waited for (nor refused): only its own.
    other_log = await client.get("/products", params={"after": f"users:{head + 99},catalog:{head}"})
    assert other_log.status_code == 200, other_log.text


def test_live_runners_of_three_logs_at_once_give_the_same_rows(served: World) -> None:
    """As the embedded runner does live: one thread per upstream log, each event in
    its own transaction, the logs racing each other on the same rows."""
    w = served
    for view_class, projection_class in CATALOG_VIEWS:
        view = make_view(w.container.conninfo, view_class, 5)
        w.views.append(view)
        projection = projection_class(view)
        errors: list[BaseException] = []

        def deliver(
            log: str,
            projection: ViewProjection[Any] = projection,
            errors: list[BaseException] = errors,
        ) -> None:
            try:
                app = w.apps[log]
                for n in app.recorder.select_notifications(start=1, limit=10_000):
                    projection.process_event(app.mapper.to_domain_event(n), Tracking(log, n.id))
            except BaseException as error:
                errors.append(error)
                raise

        threads = [threading.Thread(target=deliver, args=(log,)) for log in UPSTREAM[view.name]]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not errors
        assert contents(w, view_class.name, 5) == contents(w, view_class.name, 1), view.name


def test_a_product_created_while_its_stock_changes_sees_the_change(served: World) -> None:
    """The race the side-row locks close: the inventory runner's transaction has
    changed the stock but not committed when the catalog runner creates the product
    row. Without the lock the product row would keep the stock it read before."""
    w = served
    view = make_view(w.container.conninfo, CatalogProductsView, 6)
    w.views.append(view)
    projection = CatalogProductsProjection(view)  # type: ignore[arg-type]
    kettle = w.products["kettle"]
    item = stock_item_id(sku_of(w, "kettle"))

    def events(log: str, originator: UUID) -> list[tuple[Any, Tracking]]:
        app = w.apps[log]
        found = []
        for n in app.recorder.select_notifications(start=1, limit=10_000):
            if n.originator_id == originator:
                found.append((app.mapper.to_domain_event(n), Tracking(log, n.id)))
        return found

    (opened, opened_at), (received, received_at), *_ = events("inventory", item)
    created, created_at = events("catalog", kettle)[0]
    assert isinstance(received, StockItem.StockReceived) and received.quantity == 3
    projection.process_event(opened, opened_at)
    creator = threading.Thread(target=projection.process_event, args=(created, created_at))
    with view.changes(received_at) as cursor:
        assert cursor is not None
        projection.apply(received, cursor)
        creator.start()
        creator.join(0.5)  # blocked on the stock row until this commits
    creator.join(10)
    with w.container.pool.connection() as conn:
        row = conn.execute(
            SQL("SELECT on_hand, available FROM {0} WHERE id = %s").format(
                Identifier(generation_schema("catalog_products", 6), "catalog_products")
            ),
            (kettle,),
        ).fetchone()
    assert row == (3, 3)


def test_a_stock_change_leaves_the_text_alone_but_advances_the_revision(served: World) -> None:
    """Stock moves far more often than text: its update of the product row adds no
    index entry (HOT: no indexed column changes, the search vector is not
    recomputed), yet the change feed still sees the product change. A rename
    recomputes the search vector."""
    w = served
    view = make_view(w.container.conninfo, CatalogProductsView, 1)
    w.views.append(view)
    projection = CatalogProductsProjection(view)  # type: ignore[arg-type]
    kettle = w.products["kettle"]
    products = Identifier(generation_schema("catalog_products", 1), "catalog_products")
    revisions = Identifier(generation_schema("catalog_products", 1), "catalog_products_revisions")

    def apply_last(log: str, cursor_check: Callable[[psycopg.Cursor[Any]], None]) -> None:
        app = w.apps[log]
        last = app.recorder.select_notifications(start=1, limit=10_000)[-1]
        with view.changes(Tracking(log, last.id)) as cursor:
            assert cursor is not None
            projection.apply(app.mapper.to_domain_event(last), cursor)
            cursor_check(cursor)

    def state(cursor: psycopg.Cursor[Any]) -> tuple[Any, ...]:
        cursor.execute(
            SQL(
                "SELECT p.search::text AS search, r.revision, p.on_hand FROM {0} p "
                "JOIN {1} r ON r.product_id = p.id WHERE p.id = %s"
            ).format(products, revisions),
            (kettle,),
        )
        row = cursor.fetchone()
        assert row is not None
        return row["search"], row["revision"], row["on_hand"]

    with w.container.pool.connection() as conn:
        text, revision, on_hand = state(conn.cursor(row_factory=dict_row))

    def stock_checks(cursor: psycopg.Cursor[Any]) -> None:
        assert state(cursor)[0] == text
        assert state(cursor)[1] > revision and state(cursor)[2] == on_hand + 2
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
            "WHERE relid = %s::regclass",
            (view.schema + ".catalog_products",),
        )
        assert cursor.fetchone() == {"n_tup_upd": 1, "n_tup_hot_upd": 1}

    w.inventory.receive(SELLER, sku_of(w, "kettle"), 2)
    apply_last("inventory", stock_checks)

    def rename_checks(cursor: psycopg.Cursor[Any]) -> None:
        renamed = state(cursor)[0]
        assert "'samovar':1A" in renamed and "'copper':1A" not in renamed

    w.catalog.update_details(SELLER, kettle, name="Samovar")
    apply_last("catalog", rename_checks)
    assert [p["id"] for p in search(w, "samovar").items] == [kettle]


def search_copy_differences(w: World, generation: int) -> list[tuple[Any, ...]]:
    """Rows of ``catalog_products_matches`` that differ from what the product rows
    imply (every published product, its terms, rank terms, filter and facet
    columns): missing, extra or stale."""
    schema = generation_schema("catalog_products", generation)
    with w.container.pool.connection() as conn:
        cursor = conn.execute(
            SQL(
                "WITH expected AS (SELECT id, strip(search), ts_filter(search, '{{a,b}}'), "
                "price_amount, currency, rating_count, rating_avg, "
                "available > 0, created_at, category_path FROM {0} "
                "WHERE status = 'published') "
                "(SELECT 'missing', * FROM (TABLE expected EXCEPT TABLE {1}) a) UNION ALL "
                "(SELECT 'unexpected', * FROM (TABLE {1} EXCEPT TABLE expected) b)"
            ).format(
                Identifier(schema, "catalog_products"),
                Identifier(schema, "catalog_products_matches"),
            )
        )
        return cursor.fetchall()


def test_the_search_copy_follows_every_published_product(served: World) -> None:
    """What search scans (``catalog_products_matches``) is kept by triggers in the
    transaction that writes the product row: it holds every published product and
    only those, through unpublishing, price, stock, text and rating changes."""
    w = served
    kettle, phone = w.products["kettle"], w.products["smartphone"]
    assert search_copy_differences(w, 1) == []
    with w.container.pool.connection() as conn:
        count = conn.execute(
            SQL("SELECT count(*) FROM {0}").format(
                Identifier(generation_schema("catalog_products", 1), "catalog_products_matches")
            )
        ).fetchone()
    assert count is not None and count[0] > 10
    w.catalog.unpublish(SELLER, phone)
    w.catalog.change_price(SELLER, kettle, Money.of("12.5", "EUR"))
    w.inventory.adjust(SELLER, sku_of(w, "kettle"), -3, "lost")  # out of stock
    w.catalog.update_details(SELLER, kettle, name="Samovar", attributes={"color": "gold"})
    w.reviews.write(CUSTOMERS[1], kettle, 5, "Lovely")
    build(w, 1)
    assert search_copy_differences(w, 1) == []
    assert phone not in [p["id"] for p in search(w, "phone").items]
    (found,) = search(
        w, "samovar", ProductFilter(in_stock=False, attributes={"color": "gold"})
    ).items
    assert found["id"] == kettle and found["price"]["amount"] == "12.50"
    w.catalog.publish(SELLER, phone)
    w.catalog.archive(SELLER, kettle)
    build(w, 1)
    assert search_copy_differences(w, 1) == []
    assert search(w, "samovar").total == 0


def test_a_generation_made_before_the_search_copy_gets_it_filled(served: World) -> None:
    """Upgrading: a generation whose search copy is missing (made by earlier code)
    gets it filled from its product rows when the view's tables are created again,
    as ``shop migrate`` does."""
    w = served
    schema = generation_schema("catalog_products", 1)
    with w.container.pool.connection() as conn:
        conn.execute(
            SQL("DROP TABLE {0} CASCADE").format(Identifier(schema, "catalog_products_matches"))
        )
    (spec,) = [s for s in w.container.specs if s.name == "catalog_products"]
    assert w.container.ensure_generation(spec) == 1
    assert search_copy_differences(w, 1) == []
    assert search(w, "widget").total == len(w.widgets)


def test_a_rebuilt_generation_is_compacted_and_analysed_before_it_is_served(
    served: World,
) -> None:
    tables = list(CatalogProductsView.tables)
    generation = rebuild(served.container, "catalog_products")
    schema = generation_schema("catalog_products", generation)
    with served.container.pool.connection() as conn:
        # Rewritten by VACUUM FULL: a new file, without the replay's dead versions.
        for table in tables:
            found = conn.execute(
                "SELECT c.relfilenode <> c.oid, s.n_dead_tup FROM pg_class c "
                "JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = %s::regclass",
                (f"{schema}.{table}",),
            ).fetchone()
            assert found == (True, 0), table
        rows = conn.execute(
            "SELECT relname, last_vacuum IS NOT NULL, last_analyze IS NOT NULL "
            "FROM pg_stat_user_tables WHERE schemaname = %s AND relname = ANY(%s)",
            (schema, tables),
        ).fetchall()
    assert sorted(rows) == sorted((t, True, True) for t in tables)
