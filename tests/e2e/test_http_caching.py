"""HTTP caching over HTTP (``read_api.http_caching``): the catalog's public reads carry
a weak ETag and a short public Cache-Control, answer If-None-Match with a bodiless
304, and change their tag when what they show changes, read-your-writes included;
personal answers carry neither."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.api import CONSISTENCY, written
from tests.support.catalog_client import Cast, listed_product, product_body

pytestmark = pytest.mark.e2e

PUBLIC = "public, max-age=5, stale-while-revalidate=30"


def cacheable(response: httpx.Response, status: int = 200) -> str:
    """The answer's ETag, after checking the caching headers (a 304 has the 200's)."""
    assert response.status_code == status, (response.status_code, response.text)
    tag = response.headers["etag"]
    assert tag.startswith('W/"') and tag.endswith('"'), tag
    assert response.headers["cache-control"] == PUBLIC
    vary = {v.strip().lower() for v in response.headers["vary"].split(",")}
    assert {"authorization", "x-consistency-token"} <= vary
    if status == 304:
        assert response.content == b""
    return tag


def revalidate(
    client: httpx.Client, path: str, tag: str, params: Any = None, **headers: str
) -> httpx.Response:
    return client.get(path, params=params, headers={"If-None-Match": tag, **headers})


def test_product_detail_304_until_the_seller_changes_the_price(
    client: httpx.Client, cast: Cast
) -> None:
    product_id, _ = listed_product(client, cast, "20.00", 3)
    path = f"/products/{product_id}"
    first = client.get(path)
    tag = cacheable(first)
    assert first.json()["price"]["amount"] == "20.00"

    assert cacheable(revalidate(client, path, tag), 304) == tag
    # Weak comparison, lists and *.
    assert revalidate(client, path, tag.removeprefix("W/")).status_code == 304
    assert revalidate(client, path, f'"nope", {tag}').status_code == 304
    two_lines = [("If-None-Match", '"a"'), ("If-None-Match", tag)]
    assert client.get(path, headers=two_lines).status_code == 304
    assert revalidate(client, path, "*").status_code == 304
    other = revalidate(client, path, '"nope", W/"nope either"')
    assert cacheable(other) == tag and other.json() == first.json()

    repriced = client.put(
        f"{path}/price", json={"amount": "17.50", "currency": "EUR"}, headers=cast.seller.headers
    )
    written(repriced)
    token = repriced.headers[CONSISTENCY]
    # Read-your-writes: the old tag with the write's token is never a stale 304.
    fresh = revalidate(client, path, tag, **{CONSISTENCY: token})
    new_tag = cacheable(fresh)
    assert new_tag != tag and fresh.json()["price"]["amount"] == "17.50"
    assert revalidate(client, path, new_tag, **{CONSISTENCY: token}).status_code == 304
    # And without a token (the view has the change now): the old tag gets the new page.
    after = revalidate(client, path, tag)
    assert cacheable(after) == new_tag and after.json()["price"]["amount"] == "17.50"
    assert revalidate(client, path, new_tag).status_code == 304


def test_listing_304_until_the_catalog_changes(client: httpx.Client, cast: Cast) -> None:
    product_id, _ = listed_product(client, cast, "31.00", 1)
    params = {"category": cast.category_id, "sort": "price_asc"}
    first = client.get("/products", params=params)
    tag = cacheable(first)
    assert product_id in {item["id"] for item in first.json()["items"]}
    assert revalidate(client, "/products", tag, params).status_code == 304
    assert revalidate(client, "/products", f'W/"x", {tag}', params).status_code == 304

    repriced = client.put(
        f"/products/{product_id}/price",
        json={"amount": "30.00", "currency": "EUR"},
        headers=cast.seller.headers,
    )
    written(repriced)
    fresh = revalidate(
        client, "/products", tag, params, **{CONSISTENCY: repriced.json()["position"]}
    )
    assert cacheable(fresh) != tag
    (item,) = [item for item in fresh.json()["items"] if item["id"] == product_id]
    assert item["price"]["amount"] == "30.00"


def test_category_tree_304_until_a_category_is_added(client: httpx.Client, cast: Cast) -> None:
    first = client.get("/categories")
    tag = cacheable(first)
    assert revalidate(client, "/categories", tag).status_code == 304
    created = client.post("/categories", json={"name": "Hats"}, headers=cast.admin)
    category_id = written(created, 201)
    fresh = revalidate(client, "/categories", tag, **{CONSISTENCY: created.json()["position"]})
    assert cacheable(fresh) != tag
    assert category_id in {item["id"] for item in fresh.json()["items"]}


def test_search_304_for_the_same_answer(client: httpx.Client, cast: Cast) -> None:
    product_id, _ = listed_product(client, cast, "12.00", 2, name="Quokka Lantern")
    params = {"q": "quokka"}
    first = client.get("/search", params=params)
    tag = cacheable(first)
    assert product_id in {item["id"] for item in first.json()["items"]}
    assert revalidate(client, "/search", tag, params).status_code == 304
    assert revalidate(client, "/search", "*", params).status_code == 304
    repriced = client.put(
        f"/products/{product_id}/price",
        json={"amount": "11.00", "currency": "EUR"},
        headers=cast.seller.headers,
    )
    written(repriced)
    fresh = revalidate(client, "/search", tag, params, **{CONSISTENCY: repriced.json()["position"]})
    assert cacheable(fresh) != tag
    (item,) = [item for item in fresh.json()["items"] if item["id"] == product_id]
    assert item["price"]["amount"] == "11.00"


def test_personal_answers_carry_no_validator_and_no_public_caching(
    client: httpx.Client, cast: Cast
) -> None:
    seller = cast.seller.headers
    product_id, _ = listed_product(client, cast, "9.00", 1)
    public_tag = cacheable(client.get(f"/products/{product_id}"))
    created = client.post("/products", json=product_body(), headers=seller)
    draft = written(created, 201)
    seen = {CONSISTENCY: created.json()["position"]}
    answers = {
        # The catalog asked with a bearer: its answer may depend on who asks.
        "a published product, to its seller": client.get(
            f"/products/{product_id}", headers={**seller, "If-None-Match": public_tag}
        ),
        "a draft, to its seller": client.get(f"/products/{draft}", headers={**seller, **seen}),
        "the listing, with a bearer": client.get("/products", headers=seller),
        "a cart holder's search": client.get(
            "/search", params={"q": "shoe"}, headers={"X-Cart-Token": "x" * 40}
        ),
        "the profile": client.get("/users/me", headers=cast.customer.headers),
        "the cart": client.get("/cart", headers=cast.customer.headers),
        "the orders": client.get("/orders", headers=cast.customer.headers),
        "the inbox": client.get("/me/notifications", headers=cast.customer.headers),
        "the stock levels": client.get("/inventory", headers=seller),
        "the users, to an admin": client.get("/admin/users", headers=cast.admin),
    }
    for what, response in answers.items():
        assert response.status_code == 200, (what, response.status_code, response.text)
        assert "etag" not in response.headers, what
        assert response.headers.get("cache-control") == "no-store", what
    # Anonymous answers that are not a catalog page carry no validator either.
    missing = client.get(f"/products/{draft}")
    assert missing.status_code == 404 and "etag" not in missing.headers
    assert "public" not in missing.headers.get("cache-control", "")
