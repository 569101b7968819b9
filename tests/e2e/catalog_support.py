"""What the catalog e2e tests share: the cast of accounts, request helpers, and
proof that a refused request wrote nothing (the event stores' row counts)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg

from tests.e2e.conftest import Account, Server, problem_type, verified_account

CONSISTENCY = "X-Consistency-Token"
EVENT_TABLES = ("catalog_events", "inventory_events", "reviews_events", "users_events")


def event_counts(server: Server) -> dict[str, int]:
    counts: dict[str, int] = {}
    with psycopg.connect(server.database_url) as conn:
        for table in EVENT_TABLES:
            row = conn.execute(f"SELECT count(*) FROM public.{table}").fetchone()
            assert row is not None
            counts[table] = int(row[0])
    return counts


@contextmanager
def nothing_written(server: Server) -> Iterator[None]:
    before = event_counts(server)
    yield
    assert event_counts(server) == before, "a refused request wrote events"


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert problem_type(response) == code, response.text
    body: dict[str, Any] = response.json()
    return body


def written(response: httpx.Response, status: int = 200, context: str = "catalog") -> str:
    """The id of a write, after checking the answer carries its position (in each
    of the comma-separated logs of ``context``)."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"id", "position"}, body
    if body["position"] is not None:
        expected = ",".join(rf"{log}:\d+" for log in context.split(","))
        assert re.fullmatch(expected, body["position"]), body
        assert response.headers[CONSISTENCY] == body["position"]
    return str(uuid.UUID(body["id"]))


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


def make_seller(server: Server, client: httpx.Client, label: str) -> Account:
    account = verified_account(server, client, label)
    granted = client.post(
        f"/admin/users/{account.id}/roles",
        json={"role": "seller"},
        headers=server.admin_headers(client),
    )
    assert granted.status_code == 200, granted.text
    return account


def make_cast(server: Server) -> Cast:
    with server.client() as client:
        admin = server.admin_headers(client)
        category = client.post("/categories", json={"name": "Shoes"}, headers=admin)
        return Cast(
            admin=admin,
            seller=make_seller(server, client, "seller"),
            other_seller=make_seller(server, client, "rival"),
            customer=verified_account(server, client, "customer"),
            category_id=written(category, 201),
        )
