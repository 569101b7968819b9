"""What the e2e tests of idempotency keys and consistency tokens share: a second
admin, an order confirmed by the saga, and every event table's row count."""

from __future__ import annotations

import httpx

from tests.e2e.catalog_support import Cast, event_counts, written
from tests.e2e.conftest import Account, Server, verified_account
from tests.e2e.ordering_support import checkout, decided_order, listed_product, settled_counts


def make_admin(server: Server, client: httpx.Client, label: str) -> Account:
    account = verified_account(server, client, label)
    granted = client.post(
        f"/admin/users/{account.id}/roles",
        json={"role": "admin"},
        headers=server.admin_headers(client),
    )
    assert granted.status_code == 200, granted.text
    return account


def confirmed_order(
    client: httpx.Client, cast: Cast, shopper: Account, price: str = "30.00"
) -> tuple[str, str]:
    """An order of one unit of a new product, confirmed by the saga: (order id, SKU)."""
    product_id, sku = listed_product(client, cast, price, stock=5)
    added = client.post(
        "/cart/lines", json={"product_id": product_id, "quantity": 1}, headers=shopper.headers
    )
    written(added, context="ordering")
    placed = checkout(client, shopper.headers)
    order_id = written(placed, 202, context="ordering")
    order = decided_order(client, shopper.headers, order_id, placed.json()["position"])
    assert order["status"] == "confirmed", order
    return order_id, sku


def all_counts(server: Server) -> dict[str, int]:
    """Rows of every event store and the gateway calls, once the saga has settled:
    what a refused request leaves as it was."""
    return {**settled_counts(server), **event_counts(server)}
