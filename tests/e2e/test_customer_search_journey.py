"""A shopper's journey over HTTP against ``shop run``: sellers create, price, stock and
publish products; a customer who is not logged in finds them by search with filters
and facets, pages through the results, survives a typo, opens a product and, once
logged in, reviews it; the review shows in the product's rating. A seller cannot
touch another seller's product.

Every search word here carries a token unique to the run, so the products other
tests create on the same server never match."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.api import CONSISTENCY, refused, written
from tests.support.catalog_client import Cast, new_sku, product_body
from tests.support.server import Server
from tests.support.side_door import nothing_written

pytestmark = pytest.mark.e2e


def _brand() -> str:
    """A made-up word no other test uses (letters only: search splits on the rest)."""
    return "zq" + "".join(random.choices(string.ascii_lowercase, k=8))


@dataclass(frozen=True)
class Listing:
    name: str
    price: str
    colour: str
    stock: int
    category: str  # "boots" or "sandals"


@dataclass
class Shop:
    brand: str
    boots: str
    sandals: str
    footwear: str
    ids: dict[str, str]  # product name -> id
    token: str  # consistency token covering every write


def _create_listed_products(
    client: httpx.Client, cast: Cast, brand: str, listings: list[Listing]
) -> Shop:
    admin = cast.admin
    footwear = written(
        client.post("/categories", json={"name": f"Footwear {brand}"}, headers=admin), 201
    )
    categories = {
        kind: written(
            client.post(
                "/categories",
                json={"name": f"{kind.title()} {brand}", "parent_id": footwear},
                headers=admin,
            ),
            201,
        )
        for kind in ("boots", "sandals")
    }
    seller = cast.seller.headers
    ids: dict[str, str] = {}
    positions: list[str] = []
    for listing in listings:
        sku = new_sku()
        body = product_body(
            sku,
            name=f"{brand.title()} {listing.name}",
            attributes={"colour": listing.colour, "material": "leather"},
            price={"amount": listing.price, "currency": "EUR"},
        )
        product_id = written(client.post("/products", json=body, headers=seller), 201)
        written(
            client.put(
                f"/products/{product_id}/categories",
                json={"category_ids": [categories[listing.category]]},
                headers=seller,
            )
        )
        if listing.stock:
            received = client.post(
                f"/inventory/{sku}/receipts", json={"quantity": listing.stock}, headers=seller
            )
            positions.append(received.json()["position"])
            written(received, context="inventory")
        published = client.post(f"/products/{product_id}/publish", headers=seller)
        written(published)
        positions.append(published.json()["position"])
        ids[listing.name] = product_id
    latest: dict[str, int] = {}
    for position in positions:
        log, number = position.split(":")
        latest[log] = max(latest.get(log, 0), int(number))
    token = ",".join(f"{log}:{n}" for log, n in latest.items())
    return Shop(brand, categories["boots"], categories["sandals"], footwear, ids, token)


LISTINGS = [
    Listing("Hiking Boot", "129.00", "brown", 5, "boots"),
    Listing("Winter Boot", "189.50", "black", 0, "boots"),
    Listing("Ankle Boot", "89.90", "black", 3, "boots"),
    Listing("Trail Sandal", "45.00", "brown", 10, "sandals"),
    Listing("Beach Sandal", "19.99", "blue", 7, "sandals"),
]


@pytest.fixture(scope="module")
def shop(server: Server, cast: Cast) -> Shop:
    with server.client() as client:
        return _create_listed_products(client, cast, _brand(), LISTINGS)


def search(client: httpx.Client, shop: Shop, **params: Any) -> dict[str, Any]:
    response = client.get("/search", params=params, headers={CONSISTENCY: shop.token})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def names(body: dict[str, Any], shop: Shop) -> set[str]:
    return {item["name"].removeprefix(shop.brand.title() + " ") for item in body["items"]}


def test_a_customer_finds_products_by_prefix_filters_and_facets(
    client: httpx.Client, shop: Shop
) -> None:
    everything = search(client, shop, q=shop.brand)
    assert names(everything, shop) == {listing.name for listing in LISTINGS}
    assert everything["total"] == len(LISTINGS)
    # Prefixes of every word; all words must match.
    assert names(search(client, shop, q=f"{shop.brand[:6]} boo"), shop) == {
        "Hiking Boot",
        "Winter Boot",
        "Ankle Boot",
    }
    assert names(search(client, shop, q=f"{shop.brand} trail sand"), shop) == {"Trail Sandal"}

    filtered = search(
        client,
        shop,
        q=shop.brand,
        category=shop.footwear,
        currency="EUR",
        min_price="40",
        max_price="150",
        in_stock="true",
        attr="colour:brown",
        sort="price_asc",
    )
    assert [item["name"] for item in filtered["items"]] == [
        f"{shop.brand.title()} Trail Sandal",
        f"{shop.brand.title()} Hiking Boot",
    ]
    assert all(item["stock"]["in_stock"] for item in filtered["items"])

    facets = everything["facets"]
    by_category = {c["id"]: c["count"] for c in facets["categories"]}
    assert by_category[shop.footwear] == 5  # a parent counts its children's products
    assert by_category[shop.boots] == 3
    assert by_category[shop.sandals] == 2
    (eur,) = facets["price"]
    buckets = {(b["min"], b["max"]): b["count"] for b in eur["buckets"]}
    assert buckets[("10", "25")] == 1
    assert buckets[("25", "50")] == 1
    assert buckets[("50", "100")] == 1
    assert buckets[("100", "250")] == 2


def test_pages_cover_every_match_once_in_order(client: httpx.Client, shop: Shop) -> None:
    seen: list[dict[str, Any]] = []
    page = search(client, shop, q=shop.brand, sort="price_desc", limit=2)
    while True:
        seen.extend(page["items"])
        if page["next_cursor"] is None:
            break
        page = search(
            client, shop, q=shop.brand, sort="price_desc", limit=2, cursor=page["next_cursor"]
        )
    prices = [float(item["price"]["amount"]) for item in seen]
    assert prices == sorted(prices, reverse=True)
    assert len({item["id"] for item in seen}) == len(LISTINGS) == len(seen)


def test_a_typo_still_finds_the_product(client: httpx.Client, shop: Shop) -> None:
    typo = search(client, shop, q=f"{shop.brand} hikking")
    assert typo["mode"] == "fuzzy"
    assert names(typo, shop) == {"Hiking Boot"}


def test_a_customer_opens_and_reviews_a_product(
    server: Server, client: httpx.Client, cast: Cast, shop: Shop
) -> None:
    product_id = shop.ids["Trail Sandal"]
    detail = client.get(f"/products/{product_id}", headers={CONSISTENCY: shop.token})
    assert detail.status_code == 200, detail.text
    product = detail.json()
    assert product["stock"]["available"] == 10
    assert product["rating"] == {
        "count": 0,
        "average": None,
        "histogram": dict.fromkeys("12345", 0),
    }

    reviewed = client.post(
        f"/products/{product_id}/reviews",
        json={"rating": 5, "title": "Great grip", "body": "Wore them on wet rocks."},
        headers=cast.customer.headers,
    )
    written(reviewed, 201, context="reviews")
    token = reviewed.headers[CONSISTENCY]

    rated = client.get(f"/products/{product_id}", headers={CONSISTENCY: token}).json()
    assert rated["rating"]["count"] == 1
    assert rated["rating"]["average"] == "5.00"
    reviews = client.get(f"/products/{product_id}/reviews", headers={CONSISTENCY: token}).json()
    assert [r["title"] for r in reviews["items"]] == ["Great grip"]
    assert reviews["summary"]["histogram"]["5"] == 1
    # The rating filter now finds it.
    rated_search = client.get(
        "/search", params={"q": shop.brand, "min_rating": "4"}, headers={CONSISTENCY: token}
    ).json()
    assert names(rated_search, shop) == {"Trail Sandal"}


def test_a_seller_cannot_edit_another_sellers_product(
    server: Server, client: httpx.Client, cast: Cast, shop: Shop
) -> None:
    product_id = shop.ids["Hiking Boot"]
    with nothing_written(server):
        refused(
            client.patch(
                f"/products/{product_id}",
                json={"name": "Stolen"},
                headers=cast.other_seller.headers,
            ),
            403,
            "not-permitted",
        )
    detail = client.get(f"/products/{product_id}").json()
    assert detail["name"] == f"{shop.brand.title()} Hiking Boot"


def test_malformed_searches_are_refused(client: httpx.Client, shop: Shop) -> None:
    for params in (
        {"q": "   "},
        {"q": "!!! ???"},
        {"q": shop.brand, "min_price": "-1", "currency": "EUR"},
        {"q": shop.brand, "min_price": "10"},  # a price range needs a currency
        {"q": shop.brand, "currency": "XXX"},
        {"q": shop.brand, "cursor": "not-a-cursor"},
        {"q": shop.brand, "sort": "cheapest"},
        {"q": "x" * 500},
        {"q": shop.brand, "attr": "no-colon"},
    ):
        response = client.get("/search", params=params)
        assert 400 <= response.status_code < 500, (params, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
