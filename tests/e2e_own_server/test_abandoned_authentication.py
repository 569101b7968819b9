"""An order whose 3-D Secure authentication the shopper abandons, against a ``shop run``
with a short authentication timeout: the running process's sweep rejects it (reading
the orders view), voids the authorization and gives the stock back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.catalog_client import make_cast
from tests.support.ordering_client import awaiting_checkout, decided_order, stock_becomes
from tests.support.polling import eventually
from tests.support.server import running_server

pytestmark = pytest.mark.e2e


def test_an_abandoned_authentication_is_rejected_and_its_stock_released(
    make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = Path(tmp_path_factory.mktemp("shop-abandoned-3ds"))
    settings = {"SHOP_PAYMENT_AUTHENTICATION_TIMEOUT": "2"}
    with running_server(make_database(), data, settings) as server:
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
