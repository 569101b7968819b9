"""120 shoppers check out the last 30 units of one product at the same moment,
through HTTP: exactly 30 orders are confirmed, 90 rejected for stock, no unit is
oversold, every confirmed order was authorized once, and nothing was captured."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from tests.support.api import written
from tests.support.catalog_client import Cast, listed_product
from tests.support.ordering_client import add_to_cart, checkout, decided_order, stock_becomes
from tests.support.server import Server
from tests.support.users_client import Account, verified_account

pytestmark = pytest.mark.e2e

SHOPPERS = 120
UNITS = 30


def test_the_last_units_are_never_oversold_nor_charged_twice(
    server: Server, client: httpx.Client, cast: Cast
) -> None:
    product_id, sku = listed_product(client, cast, "99.00", stock=UNITS)

    def shopper(index: int) -> Account:
        with server.client() as own:
            account = verified_account(server, own, f"rush{index}")
            add_to_cart(own, account.headers, product_id)
            return account

    with ThreadPoolExecutor(8) as pool:
        shoppers = list(pool.map(shopper, range(SHOPPERS)))

    start = threading.Barrier(SHOPPERS)

    def rush(account: Account) -> tuple[str, str]:
        with server.client() as own:
            start.wait()
            placed = checkout(own, account.headers)
            return written(placed, 202, context="ordering"), placed.json()["position"]

    with ThreadPoolExecutor(SHOPPERS) as pool:
        placed = list(pool.map(rush, shoppers))
    order_ids = [order_id for order_id, _ in placed]
    assert len(set(order_ids)) == SHOPPERS

    outcomes = [
        decided_order(client, a.headers, order_id, token)
        for a, (order_id, token) in zip(shoppers, placed, strict=True)
    ]
    confirmed = [o for o in outcomes if o["status"] == "confirmed"]
    rejected = [o for o in outcomes if o["status"] == "rejected"]
    assert len(confirmed) == UNITS
    assert len(rejected) == SHOPPERS - UNITS
    assert all(o["rejection_reason"].startswith("not enough stock") for o in rejected)
    stock_becomes(client, cast, sku, on_hand=UNITS, reserved=UNITS, available=0)

    with psycopg.connect(server.database_url) as conn:
        calls = conn.execute(
            "SELECT operation, count(*) FROM public.payment_gateway_requests "
            "WHERE split_part(key, ':', 2) = ANY(%s) GROUP BY operation",
            (order_ids,),
        ).fetchall()
    assert dict(calls) == {"authorize": UNITS}  # once per confirmed order, no capture
