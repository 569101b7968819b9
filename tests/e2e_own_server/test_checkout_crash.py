"""``shop run`` killed (SIGKILL) while the checkout saga is busy, then started again
on the same database: every order ends confirmed or rejected, the stock reserved
equals the confirmed orders' units, and no order was authorized twice."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from threading import Thread

import psycopg
import pytest

from tests.support.api import written
from tests.support.catalog_client import listed_product, make_cast
from tests.support.ordering_client import add_to_cart, checkout, decided_order, stock_level
from tests.support.server import Server, launch, start_server, stop
from tests.support.users_client import Account, verified_account

pytestmark = pytest.mark.e2e

ORDERS = 30
UNITS = 20


def test_a_killed_saga_completes_or_compensates_on_restart(
    make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    database = make_database()
    data = Path(tmp_path_factory.mktemp("shop-crash"))
    limits = {"SHOP_LOGIN_ATTEMPTS_PER_ADDRESS": "100000"}
    process, server = start_server(database, data, limits)
    try:
        cast = make_cast(server)
        with server.client() as client:
            product_id, sku = listed_product(client, cast, "8.00", stock=UNITS)
            shoppers: list[Account] = []
            for n in range(ORDERS):
                shopper = verified_account(server, client, f"crash{n}")
                add_to_cart(client, shopper.headers, product_id)
                shoppers.append(shopper)
            placed: list[str] = []

            def place(shopper: Account) -> None:
                with server.client() as own:
                    placed.append(written(checkout(own, shopper.headers), 202, context="ordering"))

            threads = [Thread(target=place, args=(s,)) for s in shoppers]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        process.send_signal(signal.SIGKILL)  # mid-saga: most orders are still undecided
        process.wait(timeout=10)
        with psycopg.connect(database) as conn:
            row = conn.execute(
                "SELECT count(*) FROM public.ordering_events WHERE topic LIKE '%Order.Confirmed' "
                "OR topic LIKE '%Order.Rejected'"
            ).fetchone()
        assert row is not None
        decided_before = int(row[0])
        assert decided_before < ORDERS, "the saga finished before the kill: nothing tested"
    finally:
        stop(process)

    process = restart(server)  # the same store, the same settings
    try:
        with server.client() as client:
            owners = {}
            for shopper in shoppers:
                mine = client.get("/orders", headers=shopper.headers).json()
                owners.update({o["order_id"]: shopper for o in mine["items"]})
            assert sorted(owners) == sorted(placed)
            outcomes = [decided_order(client, owners[o].headers, o)["status"] for o in placed]
            assert outcomes.count("confirmed") == UNITS
            assert outcomes.count("rejected") == ORDERS - UNITS
            level = stock_level(client, cast, sku)
            assert (level["on_hand"], level["reserved"]) == (UNITS, UNITS)
        with psycopg.connect(database) as conn:
            calls = conn.execute(
                "SELECT split_part(key, ':', 2), count(*) FROM public.payment_gateway_requests "
                "WHERE operation = 'authorize' GROUP BY 1"
            ).fetchall()
        assert len(calls) == UNITS and all(count == 1 for _, count in calls)
    finally:
        stop(process)
    print(f"decided before the kill: {decided_before} of {ORDERS}")


def restart(server: Server) -> subprocess.Popen[bytes]:
    return launch(server.env, server.base_url.rsplit(":", 1)[1], server.log_path)
