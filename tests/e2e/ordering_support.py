"""What the carts, checkout and orders e2e tests share: listed products, shoppers,
waiting for the checkout saga's decision, and the side door counting what was
written (event rows, gateway calls)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx
import psycopg

from tests.e2e.catalog_support import CONSISTENCY, Cast, new_sku, product_body, written
from tests.e2e.conftest import Server

T = TypeVar("T")
SAGA_SECONDS = 20.0
ADDRESS = {"name": "Ada Lovelace", "line1": "1 Main St", "city": "Lyon", "country": "FR"}
ORDERING_TABLES = ("ordering_events", "payments_events", "inventory_events")
DECIDED = {"confirmed", "rejected"}


def listed_product(client: httpx.Client, cast: Cast, price: str, stock: int) -> tuple[str, str]:
    """A published product of the cast's seller with ``stock`` units: (id, SKU)."""
    seller = cast.seller.headers
    sku = new_sku()
    body = product_body(sku, price={"amount": price, "currency": "EUR"})
    product_id = written(client.post("/products", json=body, headers=seller), 201)
    written(
        client.put(
            f"/products/{product_id}/categories",
            json={"category_ids": [cast.category_id]},
            headers=seller,
        )
    )
    if stock:
        received = client.post(
            f"/inventory/{sku}/receipts", json={"quantity": stock}, headers=seller
        )
        written(received, context="inventory")
    written(client.post(f"/products/{product_id}/publish", headers=seller))
    return product_id, sku


def eventually(check: Callable[[], T | None], what: str, seconds: float = SAGA_SECONDS) -> T:
    """Poll ``check`` until it answers something (the saga works after the answer)."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not after {seconds} s: {what}")
        time.sleep(0.05)


def checkout(
    client: httpx.Client,
    headers: dict[str, str],
    token: str = "pm_card_visa",
    key: str | None = None,
) -> httpx.Response:
    return client.post(
        "/checkout",
        json={"shipping_address": ADDRESS, "payment_method": token},
        headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex},
    )


def decided_order(
    client: httpx.Client, headers: dict[str, str], order_id: str, token: str | None = None
) -> dict[str, Any]:
    """The order once the saga confirmed or rejected it."""
    return _order_once(
        client, headers, order_id, token, lambda status: status in DECIDED, "confirmed or rejected"
    )


def awaiting_order(
    client: httpx.Client, headers: dict[str, str], order_id: str, token: str | None = None
) -> dict[str, Any]:
    """The order once the saga has it awaiting the shopper's authentication (never
    decided on the way)."""

    def awaiting(status: str) -> bool:
        assert status not in DECIDED, status
        return status == "awaiting_authentication"

    return _order_once(client, headers, order_id, token, awaiting, "awaiting authentication")


def _order_once(
    client: httpx.Client,
    headers: dict[str, str],
    order_id: str,
    token: str | None,
    reached: Callable[[str], bool],
    what: str,
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        extra = {CONSISTENCY: token} if token else {}
        response = client.get(f"/orders/{order_id}", headers={**headers, **extra})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body if reached(body["status"]) else None

    return eventually(check, f"order {order_id} {what}")


def order_status(
    client: httpx.Client, headers: dict[str, str], order_id: str, token: str
) -> dict[str, Any]:
    response = client.get(f"/orders/{order_id}", headers={**headers, CONSISTENCY: token})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def stock_level(client: httpx.Client, cast: Cast, sku: str) -> dict[str, Any]:
    page = client.get("/inventory", headers=cast.seller.headers, params={"limit": 200})
    assert page.status_code == 200, page.text
    found = [row for row in page.json()["items"] if row["sku"] == sku]
    cursor = page.json()["next_cursor"]
    while not found and cursor:
        page = client.get(
            "/inventory", headers=cast.seller.headers, params={"limit": 200, "cursor": cursor}
        )
        found = [row for row in page.json()["items"] if row["sku"] == sku]
        cursor = page.json()["next_cursor"]
    assert found, sku
    row: dict[str, Any] = found[0]
    return row


def stock_becomes(client: httpx.Client, cast: Cast, sku: str, **expected: int) -> None:
    def check() -> bool | None:
        row = stock_level(client, cast, sku)
        return True if all(row[k] == v for k, v in expected.items()) else None

    eventually(check, f"stock of {sku} is {expected}")


def counts(server: Server) -> dict[str, int]:
    found: dict[str, int] = {}
    with psycopg.connect(server.database_url) as conn:
        for table in ORDERING_TABLES:
            row = conn.execute(f"SELECT count(*) FROM public.{table}").fetchone()
            assert row is not None
            found[table] = int(row[0])
        row = conn.execute("SELECT count(*) FROM public.payment_gateway_requests").fetchone()
        assert row is not None
        found["gateway_calls"] = int(row[0])
    return found


def settled_counts(server: Server) -> dict[str, int]:
    """The counts once the saga has finished what earlier tests started."""
    previous = counts(server)
    while True:
        time.sleep(0.3)
        now = counts(server)
        if now == previous:
            return now
        previous = now


@contextmanager
def nothing_written(server: Server) -> Iterator[None]:
    before = settled_counts(server)
    yield
    assert counts(server) == before, "a refused request wrote something"


def gateway_calls(server: Server, operation: str, key_part: str) -> int:
    with psycopg.connect(server.database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM public.payment_gateway_requests "
            "WHERE operation = %s AND key LIKE %s",
            (operation, f"%{key_part}%"),
        ).fetchone()
    assert row is not None
    return int(row[0])
