"""An order whose 3-D Secure authentication the shopper abandons, against a ``shop run``
with a short authentication timeout: the running process's sweep rejects it (reading
the orders view), voids the authorization and gives the stock back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.catalog_support import make_cast
from tests.e2e.conftest import start_server, stop
from tests.e2e.ordering_support import decided_order, eventually, stock_becomes
from tests.e2e.test_checkout_3ds import awaiting_checkout

pytestmark = pytest.mark.e2e


def test_an_abandoned_authentication_is_rejected_and_its_stock_released(
    make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = Path(tmp_path_factory.mktemp("shop-abandoned-3ds"))
    process, server = start_server(
        make_database(), data, {"SHOP_PAYMENT_AUTHENTICATION_TIMEOUT": "2"}
    )
    try:
        cast = make_cast(server)
        with server.client() as client:
            shopper, order_id, sku, _ = awaiting_checkout(server, client, cast, "abandoned")
            decided = decided_order(client, shopper.headers, order_id)
            assert decided["status"] == "rejected"
            assert decided["rejection_reason"] == (
                "the payment was not authenticated within 2 seconds"
            )
            assert decided["authentication"] is None
            stock_becomes(client, cast, sku, on_hand=3, reserved=0)

            def voided() -> list[str] | None:
                items = client.get("/payments", headers=shopper.headers).json()["items"]
                kinds = [entry["kind"] for entry in items[0]["history"]]
                return kinds if kinds[-1] == "voided" else None

            kinds = eventually(voided, "the authorization voided in the payment history")
            assert kinds == ["requested", "action_required", "voided"]
    finally:
        stop(process)
