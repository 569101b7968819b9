"""Idempotency keys are each caller's own, on every route that honours them: another
caller sending the same key and body makes its own request (never a replay of
someone else's answer); two key headers or an empty one are refused, writing
nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.api import CONSISTENCY, refused, written
from tests.support.catalog_client import Cast, listed_product, new_sku, product_body
from tests.support.ordering_client import ADDRESS, confirmed_order, order_status, stock_level
from tests.support.server import Server
from tests.support.side_door import nothing_written
from tests.support.users_client import (
    STRONG_PASSWORD,
    account_with_role,
    unique_email,
    verified_account,
)

pytestmark = pytest.mark.e2e
Headers = list[tuple[str, str]]


def _with_key(headers: dict[str, str], *keys: str) -> Headers:
    return [*headers.items(), *(("Idempotency-Key", k) for k in keys)]


def _fresh(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert "Idempotent-Replayed" not in response.headers
    body: dict[str, Any] = response.json()
    return body


def _guest_token(client: httpx.Client, cast: Cast) -> str:
    product_id, _ = listed_product(client, cast, "5.00", stock=1)
    added = client.post("/cart/lines", json={"product_id": product_id, "quantity": 1})
    assert added.status_code == 200, added.text
    return str(added.json()["cart_token"])


def test_register_from_another_caller_is_its_own_registration(
    client: httpx.Client, cast: Cast
) -> None:
    key = uuid.uuid4().hex
    body = {"email": unique_email("idem"), "password": STRONG_PASSWORD, "name": "Idem Tester"}
    first = _fresh(client.post("/auth/register", json=body, headers=_with_key({}, key)), 201)
    # The same client again: a replay of its own registration.
    again = client.post("/auth/register", json=body, headers=_with_key({}, key))
    assert again.json() == first and again.headers["Idempotent-Replayed"] == "true"
    # A guest (its cart) and a logged-in user are other callers: their own request,
    # which finds the address taken, and is not told the first account's id.
    guest = {"X-Cart-Token": _guest_token(client, cast)}
    for caller in (guest, cast.customer.headers):
        other = client.post("/auth/register", json=body, headers=_with_key(caller, key))
        assert "Idempotent-Replayed" not in other.headers
        refused(other, 409, "email-taken")


def test_products_from_another_caller_are_its_own(client: httpx.Client, cast: Cast) -> None:
    key, body = uuid.uuid4().hex, product_body()
    mine = _fresh(
        client.post("/products", json=body, headers=_with_key(cast.seller.headers, key)), 201
    )
    # The rival's request with the same key and body is its own: the SKU is taken.
    rival = client.post("/products", json=body, headers=_with_key(cast.other_seller.headers, key))
    assert "Idempotent-Replayed" not in rival.headers
    refused(rival, 409, "sku-taken")
    other = {**body, "sku": new_sku()}
    theirs = client.post("/products", json=other, headers=_with_key(cast.other_seller.headers, key))
    assert _fresh(theirs, 201)["id"] != mine["id"]


def test_categories_from_another_admin_are_its_own(
    server: Server, client: httpx.Client, cast: Cast
) -> None:
    other_admin = account_with_role(server, client, "idemcats", "admin")
    key, body = uuid.uuid4().hex, {"name": f"Idem {uuid.uuid4().hex[:6]}"}
    first = _fresh(client.post("/categories", json=body, headers=_with_key(cast.admin, key)), 201)
    second = client.post("/categories", json=body, headers=_with_key(other_admin.headers, key))
    assert "Idempotent-Replayed" not in second.headers
    assert second.status_code != 201 or second.json()["id"] != first["id"], second.text


@pytest.mark.parametrize(
    ("route", "body"),
    [("receipts", {"quantity": 3}), ("adjustments", {"delta": 3, "reason": "found"})],
)
def test_stock_changes_from_two_callers_are_two_changes(
    client: httpx.Client, cast: Cast, route: str, body: dict[str, Any]
) -> None:
    _, sku = listed_product(client, cast, "9.00", stock=1)
    key, path = uuid.uuid4().hex, f"/inventory/{sku}/{route}"
    _fresh(client.post(path, json=body, headers=_with_key(cast.seller.headers, key)), 200)
    last = _fresh(client.post(path, json=body, headers=_with_key(cast.admin, key)), 200)
    replay = client.post(path, json=body, headers=_with_key(cast.admin, key))
    assert replay.headers["Idempotent-Replayed"] == "true"
    seen = client.get("/inventory", headers={**cast.seller.headers, CONSISTENCY: last["position"]})
    assert seen.status_code == 200, seen.text
    assert stock_level(client, cast, sku)["on_hand"] == 7


def test_reviews_from_two_callers_are_two_reviews(
    server: Server, client: httpx.Client, cast: Cast
) -> None:
    product_id, _ = listed_product(client, cast, "9.00", stock=1)
    alice, bob = (verified_account(server, client, label) for label in ("idemra", "idemrb"))
    key, body = uuid.uuid4().hex, {"rating": 5, "title": "Good", "body": "Really."}
    path = f"/products/{product_id}/reviews"
    first = _fresh(client.post(path, json=body, headers=_with_key(alice.headers, key)), 201)
    second = _fresh(client.post(path, json=body, headers=_with_key(bob.headers, key)), 201)
    assert first["id"] != second["id"]


def test_checkouts_with_the_same_key_order_each_shoppers_cart(
    server: Server, client: httpx.Client, cast: Cast
) -> None:
    alice, bob = (verified_account(server, client, label) for label in ("idemca", "idemcb"))
    placed: dict[str, str] = {}
    key, body = uuid.uuid4().hex, {"shipping_address": ADDRESS, "payment_method": "pm_card_visa"}
    for shopper in (alice, bob):
        product_id, _ = listed_product(client, cast, "11.00", stock=2)
        added = client.post(
            "/cart/lines", json={"product_id": product_id, "quantity": 1}, headers=shopper.headers
        )
        written(added, context="ordering")
        answer = _fresh(
            client.post("/checkout", json=body, headers=_with_key(shopper.headers, key)), 202
        )
        placed[shopper.id] = answer["id"]
        order = order_status(client, shopper.headers, answer["id"], answer["position"])
        assert order["customer_id"] == shopper.id
        assert [line["product_id"] for line in order["lines"]] == [product_id]
    assert placed[alice.id] != placed[bob.id]


def test_refunds_from_two_admins_are_two_refunds(
    server: Server, client: httpx.Client, cast: Cast
) -> None:
    other_admin = account_with_role(server, client, "idemrefund", "admin")
    shopper = verified_account(server, client, "idemrefunded")
    order_id, _ = confirmed_order(client, cast, shopper)
    shipped = client.post(
        f"/admin/orders/{order_id}/ship",
        json={"carrier": "UPS", "tracking_number": "1Z1"},
        headers=cast.admin,
    )
    written(shipped, context="ordering,payments")
    written(
        client.post(f"/admin/orders/{order_id}/deliver", headers=cast.admin), context="ordering"
    )
    key = uuid.uuid4().hex
    body = {"amount": {"amount": "10.00", "currency": "EUR"}, "reason": "goodwill"}
    path = f"/admin/orders/{order_id}/refunds"
    first = _fresh(client.post(path, json=body, headers=_with_key(cast.admin, key)), 201)
    second = _fresh(client.post(path, json=body, headers=_with_key(other_admin.headers, key)), 201)
    seen = order_status(client, shopper.headers, order_id, second["position"])
    assert seen["refunded"] == "20.00", (first, second, seen)


def _routes(client: httpx.Client, cast: Cast) -> dict[str, Callable[[Headers], httpx.Response]]:
    """Every route that honours Idempotency-Key, each as a call with given headers."""
    order_id, sku = confirmed_order(client, cast, cast.customer, "8.00")
    product_id = written(
        client.post("/products", json=product_body(), headers=cast.seller.headers), 201
    )
    checkout_body = {"shipping_address": ADDRESS, "payment_method": "pm_card_visa"}
    refund = {"amount": {"amount": "1.00", "currency": "EUR"}, "reason": "goodwill"}
    registration = {"email": unique_email("dup"), "password": STRONG_PASSWORD, "name": "Dup"}
    seller, admin, customer = cast.seller.headers, cast.admin, cast.customer.headers
    return {
        "register": lambda h: client.post("/auth/register", json=registration, headers=h),
        "products": lambda h: client.post(
            "/products", json=product_body(), headers=[*seller.items(), *h]
        ),
        "categories": lambda h: client.post(
            "/categories", json={"name": "Dup"}, headers=[*admin.items(), *h]
        ),
        "receipts": lambda h: client.post(
            f"/inventory/{sku}/receipts", json={"quantity": 1}, headers=[*seller.items(), *h]
        ),
        "adjustments": lambda h: client.post(
            f"/inventory/{sku}/adjustments",
            json={"delta": 1, "reason": "found"},
            headers=[*seller.items(), *h],
        ),
        "reviews": lambda h: client.post(
            f"/products/{product_id}/reviews", json={"rating": 3}, headers=[*customer.items(), *h]
        ),
        "checkout": lambda h: client.post(
            "/checkout", json=checkout_body, headers=[*customer.items(), *h]
        ),
        "refunds": lambda h: client.post(
            f"/admin/orders/{order_id}/refunds", json=refund, headers=[*admin.items(), *h]
        ),
    }


def test_two_key_headers_or_an_empty_one_are_refused_writing_nothing(
    server: Server, client: httpx.Client, cast: Cast
) -> None:
    routes = _routes(client, cast)
    with nothing_written(server):
        for name, call in routes.items():
            for keys in (["a", "b"], ["same", "same"], [""]):
                answer = call([("Idempotency-Key", k) for k in keys])
                assert answer.status_code == 400, (name, keys, answer.text)
                refused(answer, 400, "idempotency-key-invalid")


def test_every_route_honouring_keys_is_covered(client: httpx.Client) -> None:
    """The routes above are all those that document the Idempotency-Key header."""
    spec = client.get("/openapi.json").json()
    honouring = {
        f"{method.upper()} {path}"
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
    }
    assert honouring == {
        "POST /auth/register",
        "POST /products",
        "POST /categories",
        "POST /inventory/{sku}/receipts",
        "POST /inventory/{sku}/adjustments",
        "POST /products/{product_id}/reviews",
        "POST /checkout",
        "POST /admin/orders/{order_id}/refunds",
    }
