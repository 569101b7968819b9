"""The admin analytics over HTTP against the real ``shop run``: a shopper buys three
units of two products, the order is shipped, delivered and partly refunded; the admin's sales,
funnel and the seller's product and stock figures move by exactly that, each read
with the consistency token of the last write. Sellers see their own products only,
shoppers nothing; a bad date range is a 422 problem. (Other e2e tests share the
server, so the sales and funnel checks compare today's figures before and after.)"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.support.api import CONSISTENCY, refused, written
from tests.support.catalog_client import Cast, listed_product
from tests.support.ordering_client import add_to_cart, decided_order, place_order
from tests.support.server import Server
from tests.support.users_client import verified_account

pytestmark = pytest.mark.e2e


def today_sales(client: httpx.Client, admin: dict[str, str], token: str | None = None) -> Any:
    headers = {**admin, **({CONSISTENCY: token} if token else {})}
    answer = client.get("/admin/analytics/sales?currency=EUR", headers=headers)
    assert answer.status_code == 200, answer.text
    today = datetime.now(UTC).date().isoformat()
    rows = [row for row in answer.json()["items"] if row["period"] == today]
    return rows[0] if rows else {"orders": 0, "units": 0, "gross": "0", "refunded": "0"}


def today_funnel(client: httpx.Client, admin: dict[str, str], token: str | None = None) -> Any:
    headers = {**admin, **({CONSISTENCY: token} if token else {})}
    answer = client.get("/admin/analytics/funnel", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["days"][-1]["steps"]


def test_a_sale_and_its_refund_in_the_admin_and_seller_analytics(
    server: Server, client: httpx.Client, cast: Cast
) -> None:
    admin = cast.admin
    before, funnel_before = today_sales(client, admin), today_funnel(client, admin)
    product_id, sku = listed_product(client, cast, "30.00", stock=5)
    other_product, _ = listed_product(client, cast, "1.00", stock=1)
    shopper = verified_account(server, client, "analyst")
    add_to_cart(client, shopper.headers, other_product, 1)  # one order of two lines
    order_id, position = place_order(client, shopper.headers, product_id, 2)
    assert decided_order(client, shopper.headers, order_id, position)["status"] == "confirmed"
    shipment = {"carrier": "UPS", "tracking_number": "1Z999"}
    written(
        client.post(f"/admin/orders/{order_id}/ship", json=shipment, headers=admin),
        context="ordering,payments",
    )
    written(client.post(f"/admin/orders/{order_id}/deliver", headers=admin), context="ordering")
    refund = client.post(
        f"/admin/orders/{order_id}/refunds",
        json={"amount": {"amount": "20.00", "currency": "EUR"}, "reason": "scratched"},
        headers={**admin, "Idempotency-Key": uuid.uuid4().hex},
    )
    token = refund.json()["position"]
    written(refund, 201, context="ordering,payments")

    after = today_sales(client, admin, token)
    assert after["orders"] - before["orders"] == 1
    assert after["units"] - before["units"] == 3
    assert Decimal(after["gross"]) - Decimal(before["gross"]) == Decimal("61.00")
    assert Decimal(after["refunded"]) - Decimal(before["refunded"]) == Decimal("20.00")
    assert Decimal(after["net"]) == Decimal(after["gross"]) - Decimal(after["refunded"])
    steps = today_funnel(client, admin, token)
    for step in ("checkouts_started", "orders_confirmed", "orders_shipped", "orders_delivered"):
        assert steps[step] - funnel_before[step] == 1, step

    # The seller's own products, two pages of one: the sale is exact there.
    seller = {**cast.seller.headers, CONSISTENCY: token}
    first = client.get("/admin/analytics/products?limit=1", headers=seller).json()
    assert first["items"][0] == {
        "key": product_id,
        "name": "Trail Running Shoe",
        "currency": "EUR",
        "orders": 1,
        "units": 2,
        "gross": "60.00",
        "returned_units": 0,
    }
    assert first["next_cursor"] is not None
    rest = client.get(
        f"/admin/analytics/products?limit=1&cursor={first['next_cursor']}", headers=seller
    ).json()
    assert [(r["key"], r["units"], r["gross"]) for r in rest["items"]] == [
        (other_product, 1, "1.00")
    ]
    assert rest["next_cursor"] is None
    rival = client.get("/admin/analytics/products", headers=cast.other_seller.headers)
    assert product_id not in rival.text
    refused(
        client.get(
            f"/admin/analytics/products?seller_id={cast.seller.id}",
            headers=cast.other_seller.headers,
        ),
        403,
        "not-permitted",
    )
    stock = client.get("/admin/analytics/stock?limit=200", headers=seller).json()
    (row,) = [r for r in stock["items"] if r["sku"] == sku]
    assert (row["available"], row["shipped"], row["days_of_cover"]) == (3, 2, "45.0")
    refused(client.get("/admin/analytics/sales", headers=shopper.headers), 403, "not-permitted")


@pytest.mark.parametrize(
    "query",
    ["from=2026-12-10&to=2026-12-01", "from=2000-01-01&to=2026-12-01", "from=yesterday"],
)
def test_a_bad_date_range_is_a_422_problem(client: httpx.Client, cast: Cast, query: str) -> None:
    refused(
        client.get(f"/admin/analytics/sales?{query}", headers=cast.admin), 422, "validation-failed"
    )
