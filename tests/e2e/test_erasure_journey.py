"""Erasure end to end over HTTP (issue 17, item 5; ADR 0024): a shopper with a
phone and an address buys, is partly refunded and asks for erasure. Afterwards the
admin's sales figures and the order's amounts and history are what they were, and
not one table of the database, event store state, or fresh export holds the
shopper's name, email, phone or address; the shopper can no longer log in, nor use
the tokens they held."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pyarrow.parquet as pq
import pytest
from psycopg import sql

from tests.e2e.test_analytics_api import today_sales
from tests.support.api import CONSISTENCY, refused, written
from tests.support.catalog_client import Cast, listed_product
from tests.support.ordering_client import add_to_cart, decided_order
from tests.support.polling import eventually
from tests.support.server import Server
from tests.support.side_door import stored_states
from tests.support.users_client import Account, login, verified_account

pytestmark = pytest.mark.e2e


def _personal(shopper: Account, tag: str) -> dict[str, str]:
    return {
        "name": shopper.name,
        "email": shopper.email,
        "phone": f"+3361{int(tag[:7], 16) % 10**7:07d}",
        "street": f"{tag} Rue des Oubliettes",
        "recipient": f"Oublie {tag}",
    }


def _tables_holding(database_url: str, needles: list[str]) -> dict[str, list[str]]:
    """Every table (all schemas but the system's) with a row whose text holds one of
    ``needles``, and which."""
    found: dict[str, list[str]] = {}
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        for schema, table in tables:
            name = sql.Identifier(schema, table)
            for needle in needles:
                hit = conn.execute(
                    sql.SQL("SELECT 1 FROM {} t WHERE t::text ILIKE %s LIMIT 1").format(name),
                    (f"%{needle}%",),
                ).fetchone()
                if hit:
                    found.setdefault(f"{schema}.{table}", []).append(needle)
    return found


def _exported_text(directory: Path) -> str:
    return "\n".join(
        str(pq.read_table(path).to_pylist()) for path in sorted(directory.rglob("*.parquet"))
    )


def test_an_erased_shopper_is_nowhere_and_the_books_still_balance(
    server: Server, client: httpx.Client, cast: Cast, tmp_path: Path
) -> None:
    admin = cast.admin
    shopper = verified_account(server, client, "erasable")
    personal = _personal(shopper, uuid.uuid4().hex[:10])
    address = {
        "label": personal["recipient"],
        "line1": personal["street"],
        "city": "Lyon",
        "postal_code": "69001",
        "country": "FR",
    }
    shipping = {
        "name": personal["recipient"],
        "line1": personal["street"],
        "city": "Lyon",
        "country": "FR",
    }
    written(
        client.patch(
            "/users/me",
            json={"phone": personal["phone"], "addresses": [address]},
            headers=shopper.headers,
        ),
        context="users",
    )
    product_id, _ = listed_product(client, cast, "30.00", stock=5)
    add_to_cart(client, shopper.headers, product_id, 2)
    placed = client.post(
        "/checkout",
        json={"shipping_address": shipping, "payment_method": "pm_card_visa"},
        headers={**shopper.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    order_id = written(placed, 202, context="ordering")
    order = decided_order(client, shopper.headers, order_id, str(placed.json()["position"]))
    assert order["status"] == "confirmed"
    written(
        client.post(
            f"/admin/orders/{order_id}/ship",
            json={"carrier": "UPS", "tracking_number": "1Z999"},
            headers=admin,
        ),
        context="ordering,payments",
    )
    written(client.post(f"/admin/orders/{order_id}/deliver", headers=admin), context="ordering")
    refund = client.post(
        f"/admin/orders/{order_id}/refunds",
        json={"amount": {"amount": "12.50", "currency": "EUR"}, "reason": "dented box"},
        headers={**admin, "Idempotency-Key": uuid.uuid4().hex},
    )
    written(refund, 201, context="ordering,payments")
    token = refund.json()["position"]
    sales_before = today_sales(client, admin, token)
    order_before = client.get(f"/orders/{order_id}", headers={**admin, CONSISTENCY: token}).json()
    # The probe can fail: before erasure the shopper's data is in the views.
    assert set(_tables_holding(server.database_url, list(personal.values())))

    refused(
        client.post("/users/me/erasure", json={"password": "wrong"}, headers=shopper.headers),
        401,
        "invalid-credentials",
    )
    erased = client.post(
        "/users/me/erasure", json={"password": shopper.password}, headers=shopper.headers
    )
    written(erased, context="users")
    erasure_token = erased.json()["position"]

    # Logged out for good: the tokens held stop working, a login answers as for an
    # unknown address.
    assert client.get("/users/me", headers=shopper.headers).status_code == 401
    refused(login(client, shopper.email, shopper.password), 401, "invalid-credentials")

    # The books: the same figures and amounts as before the erasure.
    assert today_sales(client, admin, erasure_token) == sales_before
    seen = {**admin, CONSISTENCY: f"{erasure_token},{token}"}

    def blanked() -> dict[str, Any] | None:
        answer = client.get(f"/orders/{order_id}", headers=seen).json()
        return answer if personal["street"] not in str(answer) else None

    order_after = eventually(blanked, "the order's shipping address to be erased")
    for figure in ("status", "total", "captured", "refunded", "lines", "updated_at"):
        assert order_after[figure] == order_before[figure], figure
    assert (Decimal(order_after["total"]), Decimal(order_after["refunded"])) == (
        Decimal("60.00"),
        Decimal("12.50"),
    )
    assert order_after["shipping_address"] == {}
    assert [step["status"] for step in order_after["timeline"]] == [
        step["status"] for step in order_before["timeline"]
    ]

    # Nowhere: no table, no stored event, no export.
    needles = list(personal.values())

    eventually(
        lambda: _tables_holding(server.database_url, needles) == {} or None,
        "every read model to drop the shopper's data",
    )
    download = client.get(f"/admin/users/{shopper.id}/data-export", headers=seen)
    assert download.status_code == 200, download.text
    (exported_order,) = download.json()["orders"]  # the order is still theirs, amounts kept
    assert (exported_order["order_id"], Decimal(exported_order["refunded"])) == (
        order_id,
        Decimal("12.50"),
    )
    assert [n for n in needles if n.lower() in download.text.lower()] == []
    states = stored_states(server.database_url)
    assert [n for n in needles if any(n.encode() in s for s in states)] == []
    exported = server.shop("export", "events", "--dir", str(tmp_path / "export"))
    assert exported.returncode == 0, exported.stderr
    text = _exported_text(tmp_path / "export")
    assert shopper.id in text  # the export holds the shopper's events, erased
    assert [n for n in needles if n.lower() in text.lower()] == []


def test_erasure_refused_changes_nothing(server: Server, client: httpx.Client, cast: Cast) -> None:
    """Another shopper, an unknown or malformed id, an admin erasing their own
    account, an empty body: each refused with its problem, no event written."""
    victim = verified_account(server, client, "victim")
    intruder = verified_account(server, client, "intruder")
    admin_id = client.get("/users/me", headers=cast.admin).json()["user_id"]
    before = server.event_count()
    attempts = [
        (f"/admin/users/{victim.id}/erasure", intruder.headers, None, 403, "not-permitted"),
        (f"/admin/users/{uuid.uuid4()}/erasure", cast.admin, None, 404, "not-found"),
        ("/admin/users/not-an-id/erasure", cast.admin, None, 422, "validation-failed"),
        (f"/admin/users/{admin_id}/erasure", cast.admin, None, 403, "not-permitted"),
        ("/users/me/erasure", victim.headers, {}, 422, "validation-failed"),
        ("/users/me/erasure", {}, {"password": victim.password}, 401, "unauthenticated"),
    ]
    for path, headers, body, status, code in attempts:
        refused(client.post(path, json=body, headers=headers), status, code)
    assert server.event_count() == before
    assert client.get("/users/me", headers=victim.headers).json()["email"] == victim.email
