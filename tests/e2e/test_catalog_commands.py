"""The catalog, inventory and reviews write API over HTTP against ``shop run``: sellers
manage their products and stock, admins the category tree and reviews, customers
review; who may do what is enforced (403); creation is idempotent; bad input is a
clean 4xx with nothing written (the event stores' row counts do not change)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.support.api import problem_type, refused, written
from tests.support.catalog_client import Cast, listed_product, new_sku, product_body
from tests.support.server import Server
from tests.support.side_door import nothing_written

pytestmark = pytest.mark.e2e

MAX_BODY = 64 * 1024


# --- products ---------------------------------------------------------------------------


def test_a_seller_manages_their_product(server: Server, client: httpx.Client, cast: Cast) -> None:
    seller = cast.seller.headers
    product_id = written(client.post("/products", json=product_body(), headers=seller), 201)

    # A draft needs a price and a category before it can be published.
    refused(
        client.post(f"/products/{product_id}/publish", headers=seller),
        409,
        "product-not-publishable",
    )
    written(
        client.put(
            f"/products/{product_id}/price",
            json={"amount": "24.50", "currency": "eur"},
            headers=seller,
        )
    )
    written(
        client.put(
            f"/products/{product_id}/categories",
            json={"category_ids": [cast.category_id]},
            headers=seller,
        )
    )
    published = client.post(f"/products/{product_id}/publish", headers=seller)
    assert written(published) == product_id
    again = client.post(f"/products/{product_id}/publish", headers=seller)
    assert again.json() == {"id": product_id, "position": None}  # nothing changed

    # A JSON number without exponent is exact too (never a float).
    written(
        client.put(
            f"/products/{product_id}/price",
            json={"amount": 19.99, "currency": "EUR"},
            headers=seller,
        )
    )
    updated = client.patch(
        f"/products/{product_id}",
        json={"name": "Trail Running Shoe II", "attributes": {"colour": "red"}},
        headers=seller,
    )
    written(updated)

    # Nobody else's product to edit: another seller, a customer (403).
    with nothing_written(server):
        for method, path, body in [
            ("PATCH", f"/products/{product_id}", {"name": "Mine now"}),
            ("PUT", f"/products/{product_id}/price", {"amount": "0.01", "currency": "EUR"}),
            ("POST", f"/products/{product_id}/unpublish", None),
            ("POST", f"/products/{product_id}/archive", None),
        ]:
            for intruder in (cast.other_seller, cast.customer):
                response = client.request(method, path, json=body, headers=intruder.headers)
                refused(response, 403, "not-permitted")
        refused(
            client.patch(f"/products/{uuid.uuid4()}", json={"name": "x"}, headers=seller),
            404,
            "not-found",
        )
        refused(client.post(f"/products/{product_id}/publish"), 401, "unauthenticated")

    # An admin manages every product.
    written(client.post(f"/products/{product_id}/unpublish", headers=cast.admin))
    written(client.post(f"/products/{product_id}/archive", headers=seller))
    with nothing_written(server):
        refused(
            client.patch(f"/products/{product_id}", json={"name": "Back"}, headers=seller),
            409,
            "product-archived",
        )


def test_who_creates_products(server: Server, client: httpx.Client, cast: Cast) -> None:
    with nothing_written(server):
        refused(
            client.post("/products", json=product_body(), headers=cast.customer.headers),
            403,
            "not-permitted",
        )
        on_behalf = product_body(seller_id=cast.other_seller.id)
        refused(
            client.post("/products", json=on_behalf, headers=cast.seller.headers),
            403,
            "not-permitted",
        )
    # An admin creates for any seller; that seller then manages it.
    product_id = written(
        client.post("/products", json=product_body(seller_id=cast.seller.id), headers=cast.admin),
        201,
    )
    written(
        client.patch(
            f"/products/{product_id}", json={"description": "Mine"}, headers=cast.seller.headers
        )
    )
    # SKUs are unique (case-insensitively).
    sku = new_sku()
    written(client.post("/products", json=product_body(sku), headers=cast.seller.headers), 201)
    with nothing_written(server):
        refused(
            client.post(
                "/products", json=product_body(sku.lower()), headers=cast.other_seller.headers
            ),
            409,
            "sku-taken",
        )


def test_product_creation_is_idempotent(server: Server, client: httpx.Client, cast: Cast) -> None:
    headers = {**cast.seller.headers, "Idempotency-Key": f"create-{uuid.uuid4()}"}
    body = product_body(price={"amount": "10.00", "currency": "EUR"})
    first = client.post("/products", json=body, headers=headers)
    product_id = written(first, 201)
    assert "Idempotent-Replayed" not in first.headers
    with nothing_written(server):
        replay = client.post("/products", json=body, headers=headers)
        assert written(replay, 201) == product_id
        assert replay.json() == first.json()
        assert replay.headers["Idempotent-Replayed"] == "true"
        refused(
            client.post("/products", json={**body, "name": "Other"}, headers=headers),
            422,
            "idempotency-key-reused",
        )


# --- categories -------------------------------------------------------------------------


def test_admins_shape_the_category_tree(server: Server, client: httpx.Client, cast: Cast) -> None:
    admin = cast.admin
    key = {**admin, "Idempotency-Key": f"cat-{uuid.uuid4()}"}
    parent = written(client.post("/categories", json={"name": "Outdoor"}, headers=key), 201)
    replay = client.post("/categories", json={"name": "Outdoor"}, headers=key)
    assert written(replay, 201) == parent
    assert replay.headers["Idempotent-Replayed"] == "true"
    child = written(
        client.post("/categories", json={"name": "Tents", "parent_id": parent}, headers=admin), 201
    )
    written(client.patch(f"/categories/{child}", json={"name": "Tents & Shelters"}, headers=admin))

    with nothing_written(server):
        refused(
            client.post(f"/categories/{parent}/move", json={"parent_id": child}, headers=admin),
            409,
            "category-cycle",
        )
        refused(
            client.post(f"/categories/{parent}/archive", headers=admin),
            409,
            "category-has-children",
        )
        for who in (cast.seller, cast.customer):
            refused(
                client.post("/categories", json={"name": "Mine"}, headers=who.headers),
                403,
                "not-permitted",
            )
            refused(
                client.patch(f"/categories/{child}", json={"name": "x"}, headers=who.headers),
                403,
                "not-permitted",
            )

    written(client.post(f"/categories/{child}/move", json={"parent_id": None}, headers=admin))
    written(client.post(f"/categories/{parent}/archive", headers=admin))
    with nothing_written(server):
        refused(
            client.post("/categories", json={"name": "Late", "parent_id": parent}, headers=admin),
            409,
            "category-archived",
        )


# --- inventory --------------------------------------------------------------------------


def test_sellers_receive_and_adjust_their_stock(
    server: Server, client: httpx.Client, cast: Cast
) -> None:
    _, sku = listed_product(client, cast, "59.90", stock=0)
    seller = cast.seller.headers
    key = {**seller, "Idempotency-Key": f"receipt-{uuid.uuid4()}"}
    received = client.post(f"/inventory/{sku}/receipts", json={"quantity": 10}, headers=key)
    item_id = written(received, context="inventory")
    with nothing_written(server):
        replay = client.post(f"/inventory/{sku}/receipts", json={"quantity": 10}, headers=key)
        assert replay.json() == received.json()
        assert replay.headers["Idempotent-Replayed"] == "true"
        # The same key on another SKU is another request, not a replay.
        refused(
            client.post(f"/inventory/{new_sku()}/receipts", json={"quantity": 10}, headers=key),
            422,
            "idempotency-key-reused",
        )

    adjusted = client.post(
        f"/inventory/{sku.lower()}/adjustments",
        json={"delta": -3, "reason": "damaged in the warehouse"},
        headers=seller,
    )
    assert written(adjusted, context="inventory") == item_id  # SKUs are case-insensitive
    threshold = client.put(
        f"/inventory/{sku}/low-stock-threshold", json={"threshold": 5}, headers=seller
    )
    written(threshold, context="inventory")
    written(
        client.put(
            f"/inventory/{sku}/low-stock-threshold", json={"threshold": None}, headers=seller
        ),
        context="inventory",
    )
    written(
        client.post(f"/inventory/{sku}/receipts", json={"quantity": 1}, headers=cast.admin),
        context="inventory",
    )

    with nothing_written(server):
        refused(
            client.post(
                f"/inventory/{sku}/adjustments",
                json={"delta": -9, "reason": "stocktake"},
                headers=seller,
            ),
            409,
            "insufficient-stock",
        )
        for intruder in (cast.other_seller, cast.customer):
            refused(
                client.post(
                    f"/inventory/{sku}/receipts", json={"quantity": 5}, headers=intruder.headers
                ),
                403,
                "not-permitted",
            )
        # A SKU no product has: only an admin may stock it.
        refused(
            client.post(f"/inventory/{new_sku()}/receipts", json={"quantity": 5}, headers=seller),
            403,
            "not-permitted",
        )
        # Reservations belong to the checkout saga: no endpoint.
        for path in ("reservations", "reserve", "release", "commit"):
            response = client.post(
                f"/inventory/{sku}/{path}", json={"quantity": 1}, headers=cast.admin
            )
            assert response.status_code in (404, 405), response.text


# --- reviews ----------------------------------------------------------------------------


def test_reviews_replies_and_hiding(server: Server, client: httpx.Client, cast: Cast) -> None:
    product_id, _ = listed_product(client, cast, "59.90", stock=0)
    customer = cast.customer.headers
    key = {**customer, "Idempotency-Key": f"review-{uuid.uuid4()}"}
    review = {"rating": 4, "title": "Comfy", "body": "Ran a marathon in them."}
    first = client.post(f"/products/{product_id}/reviews", json=review, headers=key)
    review_id = written(first, 201, context="reviews")
    replay = client.post(f"/products/{product_id}/reviews", json=review, headers=key)
    assert replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"

    draft = written(client.post("/products", json=product_body(), headers=cast.seller.headers), 201)
    with nothing_written(server):
        refused(
            client.post(f"/products/{product_id}/reviews", json=review, headers=customer),
            409,
            "already-reviewed",
        )
        # Sellers cannot review their own product; drafts cannot be reviewed.
        refused(
            client.post(
                f"/products/{product_id}/reviews", json=review, headers=cast.seller.headers
            ),
            403,
            "not-permitted",
        )
        refused(
            client.post(f"/products/{draft}/reviews", json=review, headers=customer),
            404,
            "not-found",
        )
        # Only the author edits; only the product's seller replies; only admins hide.
        refused(
            client.patch(
                f"/reviews/{review_id}", json={"rating": 1}, headers=cast.other_seller.headers
            ),
            403,
            "not-permitted",
        )
        refused(
            client.post(
                f"/reviews/{review_id}/reply",
                json={"body": "Thanks!"},
                headers=cast.other_seller.headers,
            ),
            403,
            "not-permitted",
        )
        refused(
            client.post(f"/reviews/{review_id}/hide", json={"reason": "spam"}, headers=customer),
            403,
            "not-permitted",
        )
        refused(
            client.patch(f"/reviews/{uuid.uuid4()}", json={"rating": 1}, headers=customer),
            404,
            "not-found",
        )

    edited = client.patch(f"/reviews/{review_id}", json={"rating": 5}, headers=customer)
    assert written(edited, context="reviews") == review_id
    reply = client.post(
        f"/reviews/{review_id}/reply",
        json={"body": "Thanks for running!"},
        headers=cast.seller.headers,
    )
    written(reply, context="reviews")
    with nothing_written(server):
        refused(
            client.post(
                f"/reviews/{review_id}/reply", json={"body": "Again"}, headers=cast.seller.headers
            ),
            409,
            "already-replied",
        )
    hidden = client.post(
        f"/reviews/{review_id}/hide", json={"reason": "off-topic"}, headers=cast.admin
    )
    written(hidden, context="reviews")
    written(client.post(f"/reviews/{review_id}/unhide", headers=cast.admin), context="reviews")


# --- bad input --------------------------------------------------------------------------

PRODUCT = "{product}"
SKU = "{sku}"


def _price(amount: Any, currency: str = "EUR") -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


BAD_REQUESTS: list[tuple[str, str, str, Any]] = [
    # (id, method, path, JSON body)
    ("negative price", "POST", "/products", product_body(price=_price("-1.00"))),
    ("negative number price", "PUT", f"/products/{PRODUCT}/price", _price(-5)),
    ("unknown currency", "PUT", f"/products/{PRODUCT}/price", _price("10.00", "XYZ")),
    ("exponent string price", "PUT", f"/products/{PRODUCT}/price", _price("1e400")),
    ("exponent number price", "PUT", f"/products/{PRODUCT}/price", _price(1e300)),
    ("too precise float price", "PUT", f"/products/{PRODUCT}/price", _price(19.999)),
    ("too precise yen", "PUT", f"/products/{PRODUCT}/price", _price("100.5", "JPY")),
    ("absurd price", "PUT", f"/products/{PRODUCT}/price", _price("1000000000.01")),
    ("boolean price", "PUT", f"/products/{PRODUCT}/price", _price(True)),
    ("missing currency", "PUT", f"/products/{PRODUCT}/price", {"amount": "1.00"}),
    ("text price", "PUT", f"/products/{PRODUCT}/price", _price("ten")),
    ("huge description", "POST", "/products", product_body(description="x" * 20_001)),
    (
        "huge description patch",
        "PATCH",
        f"/products/{PRODUCT}",
        {"description": "y" * 20_001},
    ),
    ("unknown field", "POST", "/products", product_body(colour="red")),
    ("unknown price field", "PUT", f"/products/{PRODUCT}/price", {**_price("1"), "tax": "0"}),
    ("empty patch", "PATCH", f"/products/{PRODUCT}", {}),
    ("bad sku", "POST", "/products", product_body(sku="-bad sku-")),
    ("control characters", "POST", "/products", product_body(name="Shoe\x00")),
    ("bad attribute name", "PATCH", f"/products/{PRODUCT}", {"attributes": {"Colour!": "x"}}),
    ("bad image URL", "PATCH", f"/products/{PRODUCT}", {"images": ["javascript:alert(1)"]}),
    ("too many images", "PATCH", f"/products/{PRODUCT}", {"images": ["https://a.example/"] * 21}),
    ("bad category id", "PUT", f"/products/{PRODUCT}/categories", {"category_ids": ["nope"]}),
    ("bad product id", "PATCH", "/products/not-a-uuid", {"name": "x"}),
    ("empty category name", "POST", "/categories", {"name": ""}),
    ("category move without parent", "POST", f"/categories/{uuid.uuid4()}/move", {}),
    ("quantity 0", "POST", f"/inventory/{SKU}/receipts", {"quantity": 0}),
    ("quantity 10**9", "POST", f"/inventory/{SKU}/receipts", {"quantity": 10**9}),
    ("negative quantity", "POST", f"/inventory/{SKU}/receipts", {"quantity": -1}),
    ("fractional quantity", "POST", f"/inventory/{SKU}/receipts", {"quantity": 1.5}),
    ("text quantity", "POST", f"/inventory/{SKU}/receipts", {"quantity": "5"}),
    ("boolean quantity", "POST", f"/inventory/{SKU}/receipts", {"quantity": True}),
    ("zero delta", "POST", f"/inventory/{SKU}/adjustments", {"delta": 0, "reason": "count"}),
    ("absurd delta", "POST", f"/inventory/{SKU}/adjustments", {"delta": 10**7, "reason": "x"}),
    ("no reason", "POST", f"/inventory/{SKU}/adjustments", {"delta": 1}),
    ("blank reason", "POST", f"/inventory/{SKU}/adjustments", {"delta": 1, "reason": "  "}),
    ("negative threshold", "PUT", f"/inventory/{SKU}/low-stock-threshold", {"threshold": -1}),
    ("malformed sku path", "POST", "/inventory/--/receipts", {"quantity": 1}),
    ("rating 0", "POST", f"/products/{PRODUCT}/reviews", {"rating": 0}),
    ("rating 6", "POST", f"/products/{PRODUCT}/reviews", {"rating": 6}),
    ("rating 4.5", "POST", f"/products/{PRODUCT}/reviews", {"rating": 4.5}),
    ("long title", "POST", f"/products/{PRODUCT}/reviews", {"rating": 3, "title": "t" * 201}),
    ("unknown review field", "POST", f"/products/{PRODUCT}/reviews", {"rating": 3, "stars": 3}),
]


@pytest.fixture(scope="module")
def target(server: Server, cast: Cast) -> dict[str, str]:
    with server.client() as client:
        product_id, sku = listed_product(client, cast, "59.90", stock=0)
    return {PRODUCT: product_id, SKU: sku}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [pytest.param(m, p, b, id=i) for i, m, p, b in BAD_REQUESTS],
)
def test_bad_input_is_refused_and_writes_nothing(
    server: Server,
    client: httpx.Client,
    cast: Cast,
    target: dict[str, str],
    method: str,
    path: str,
    body: Any,
) -> None:
    for placeholder, value in target.items():
        path = path.replace(placeholder, value)
    # Reviews are the customer's to write; everything else the seller's or an admin's.
    who = cast.customer.headers if path.endswith("/reviews") else cast.admin
    with nothing_written(server):
        response = client.request(method, path, json=body, headers=who)
        assert 400 <= response.status_code < 500, (response.status_code, response.text)
        assert response.status_code == 422, response.text
        assert problem_type(response) in {
            "validation-failed",
            "invalid-money",
            "invalid-product",
            "invalid-sku",
            "invalid-quantity",
        }


def test_malformed_and_oversized_bodies(
    server: Server, client: httpx.Client, cast: Cast, target: dict[str, str]
) -> None:
    price_path = f"/products/{target[PRODUCT]}/price"
    json_headers = {**cast.admin, "content-type": "application/json"}
    with nothing_written(server):
        for raw in (
            b'{"amount": NaN, "currency": "EUR"}',
            b'{"amount": Infinity, "currency": "EUR"}',
            b'{"amount": "1.00", "currency": "EUR"',
        ):
            response = client.put(price_path, content=raw, headers=json_headers)
            refused(response, 400, "malformed-json")
        huge = json.dumps(product_body(description="z" * MAX_BODY)).encode()
        refused(client.post("/products", content=huge, headers=json_headers), 413, "body-too-large")
