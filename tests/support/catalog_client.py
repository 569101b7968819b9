"""The catalog area over HTTP: the cast of accounts a catalog test needs (an admin,
two sellers, a customer, a category), product bodies, and a product listed for sale
(priced, categorised, in stock, published)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from tests.support.api import CONSISTENCY, written
from tests.support.users_client import Account, account_with_role, verified_account

if TYPE_CHECKING:
    from tests.support.server import Server


def new_sku() -> str:
    return f"SKU-{uuid.uuid4().hex[:12].upper()}"


def product_body(sku: str | None = None, **overrides: Any) -> dict[str, Any]:
    return {
        "sku": sku or new_sku(),
        "name": "Trail Running Shoe",
        "description": "Light, grippy and\nwaterproof.",
        "attributes": {"colour": "blue", "size": "42"},
        "images": ["https://img.example.com/shoe.jpg"],
        **overrides,
    }


@dataclass
class Cast:
    admin: dict[str, str]
    seller: Account
    other_seller: Account
    customer: Account
    category_id: str


def make_cast(server: Server) -> Cast:
    with server.client() as client:
        admin = server.admin_headers(client)
        category = client.post("/categories", json={"name": "Shoes"}, headers=admin)
        return Cast(
            admin=admin,
            seller=account_with_role(server, client, "seller", "seller"),
            other_seller=account_with_role(server, client, "rival", "seller"),
            customer=verified_account(server, client, "customer"),
            category_id=written(category, 201),
        )


def listed_product(
    client: httpx.Client, cast: Cast, price: str, stock: int, currency: str = "EUR", **details: Any
) -> tuple[str, str]:
    """A published product of the cast's seller in the cast's category, with
    ``stock`` units: (id, SKU)."""
    seller = cast.seller.headers
    sku = new_sku()
    body = product_body(sku, price={"amount": price, "currency": currency}, **details)
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
    published = client.post(f"/products/{product_id}/publish", headers=seller)
    written(published)
    # Seen by the product view before it is handed out: a caller then holding only
    # another log's token (a receipt's) still finds the product.
    seen = client.get(
        f"/products/{product_id}", headers={CONSISTENCY: published.json()["position"]}
    )
    assert seen.status_code == 200, seen.text
    return product_id, sku
