"""A user's data export over HTTP against ``shop run``: ``GET /users/me/data-export``
and an admin's ``GET /admin/users/{id}/data-export``. A shopper with a profile
(phone, address, a preference), a push device, two orders (one shipped and partly
refunded by an admin), two reviews (one replied to by the seller) and the
notifications those brought downloads everything the read models hold of them, as
the shop's own views show it, and nothing of a second shopper who did the same on
the same products (nor the acting admin's identity). Read a page of one row at a
time, the document is the same. Refusals: 401, 403, 404, 422."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from read_api.data_export import UserDataExport
from read_api.data_export_models import DataExport
from tests.support.api import CONSISTENCY, refused, written
from tests.support.catalog_client import Cast, listed_product
from tests.support.ordering_client import decided_order, place_order
from tests.support.polling import eventually
from tests.support.server import Server
from tests.support.users_client import Account, verified_account

pytestmark = pytest.mark.e2e

ADDRESS = {
    "label": "home",
    "line1": "12 Export Lane",
    "city": "Datatown",
    "postal_code": "D4 7AX",
    "country": "GB",
}


@dataclass
class Shopper:
    account: Account
    orders: list[str]
    reviews: list[str]
    device: str
    token: str
    """A consistency token of the shopper's last writes in every log."""


def _shopper_with_history(
    server: Server,
    client: httpx.Client,
    cast: Cast,
    products: list[str],
    label: str,
    phone: str,
    refund: bool,
) -> Shopper:
    account = verified_account(server, client, label)
    headers = account.headers
    patched = client.patch(
        "/users/me",
        json={
            "phone": phone,
            "addresses": [ADDRESS],
            "notification_preferences": {"marketing_email": True},
        },
        headers=headers,
    )
    assert patched.status_code == 200, patched.text
    device = client.post(
        "/me/devices",
        json={"platform": "fcm", "token": f"fcm-{uuid.uuid4().hex}"},
        headers=headers,
    )
    assert device.status_code == 201, device.text

    orders, tokens = [], [patched.headers[CONSISTENCY]]
    for product_id in products:
        order_id, position = place_order(client, headers, product_id)
        assert decided_order(client, headers, order_id, position)["status"] == "confirmed"
        orders.append(order_id)
    if refund:
        shipped = client.post(
            f"/admin/orders/{orders[0]}/ship",
            json={"carrier": "UPS", "tracking_number": "1Z999AA10123456784"},
            headers=cast.admin,
        )
        written(shipped, context="ordering,payments")
        delivered = client.post(f"/admin/orders/{orders[0]}/deliver", headers=cast.admin)
        written(delivered, context="ordering")
        refunded = client.post(
            f"/admin/orders/{orders[0]}/refunds",
            json={"amount": {"amount": "5.00", "currency": "EUR"}, "reason": "goodwill"},
            headers={**cast.admin, "Idempotency-Key": uuid.uuid4().hex},
        )
        written(refunded, 201, context="ordering,payments")
        tokens.append(refunded.json()["position"])

    reviews = []
    for n, product_id in enumerate(products):
        review = client.post(
            f"/products/{product_id}/reviews",
            json={"rating": 4 - n, "title": f"{label} title {n}", "body": f"{label} body {n}"},
            headers=headers,
        )
        reviews.append(written(review, 201, context="reviews"))
        tokens.append(review.json()["position"])
    return Shopper(account, orders, reviews, device.json()["id"], ",".join(tokens))


@pytest.fixture(scope="module")
def shoppers(server: Server, cast: Cast) -> tuple[Shopper, Shopper]:
    """The shopper whose data is exported, and a bystander who did the same."""
    with server.client() as client:
        products = [listed_product(client, cast, "30.00", stock=10)[0] for _ in range(2)]
        shopper = _shopper_with_history(
            server, client, cast, products, "exporter", "+441632960961", refund=True
        )
        bystander = _shopper_with_history(
            server, client, cast, products, "bystander", "+441632960962", refund=False
        )
        replied = client.post(
            f"/reviews/{shopper.reviews[0]}/reply",
            json={"body": "Thank you, exporter!"},
            headers=cast.seller.headers,
        )
        written(replied, context="reviews")
        shopper.token += "," + replied.json()["position"]
        for who in (shopper, bystander):
            _settle(client, cast, who)
        return shopper, bystander


FINAL = {"sent", "failed", "suppressed"}


def _settle(client: httpx.Client, cast: Cast, shopper: Shopper) -> None:
    """Wait until every notification of the shopper's writes is decided and each of
    its deliveries done (the in-app ones in the inbox): two downloads then agree."""

    def settled() -> bool:
        answer = client.get(
            "/admin/notifications",
            params={"user_id": shopper.account.id, "limit": 100},
            headers={**cast.admin, CONSISTENCY: shopper.token},
        )
        assert answer.status_code == 200, answer.text
        items = answer.json()["items"]
        orders = {n["order_id"] for n in items if n["order_id"]}
        done = all(d["state"] in FINAL for n in items for d in n["deliveries"])
        return done and orders == set(shopper.orders)

    eventually(settled, f"the notifications of {shopper.account.email} delivered")
    assert len(_inbox(client, shopper.account)) >= 2  # an in-app one per order at least


def _inbox(client: httpx.Client, account: Account) -> list[dict[str, Any]]:
    answer = client.get("/me/notifications", params={"limit": 100}, headers=account.headers)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def _download(client: httpx.Client, path: str, headers: dict[str, str]) -> dict[str, Any]:
    answer = client.get(path, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["cache-control"] == "no-store"
    document: dict[str, Any] = answer.json()
    DataExport.model_validate(document)  # exactly the documented shape
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="eventshop-data-{document["user_id"]}.json"'
    )
    return document


def _without(answer: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k not in keys}


def test_a_shopper_downloads_everything_held_about_them_and_nothing_of_others(
    client: httpx.Client, cast: Cast, shoppers: tuple[Shopper, Shopper]
) -> None:
    shopper, bystander = shoppers
    me = shopper.account
    headers = me.headers
    document = _download(client, "/users/me/data-export", {**headers, CONSISTENCY: shopper.token})

    assert document["format"] == "eventshop-data-export/1"
    assert document["user_id"] == me.id
    assert datetime.fromisoformat(document["generated_at"]).tzinfo is not None

    profile = document["profile"]
    assert profile["user_id"] == me.id
    assert (profile["email"], profile["name"]) == (me.email, me.name)
    assert profile["phone"] == "+441632960961"
    assert profile["roles"] == ["customer"]
    assert profile["email_verified"] is True and profile["active"] is True
    assert profile["login_count"] >= 1 and profile["last_login_at"] is not None
    assert profile["notification_preferences"]["marketing_email"] is True
    assert document["addresses"] == [{**ADDRESS, "line2": None, "region": None}]

    # Orders: as the shopper's own order view shows each (no 3-D Secure secret),
    # newest first; the admin who shipped and refunded named by kind only.
    assert [o["order_id"] for o in document["orders"]] == shopper.orders[::-1]
    for exported in document["orders"]:
        seen = client.get(f"/orders/{exported['order_id']}", headers=headers).json()
        assert exported == _without(seen, "customer_id", "authentication")
        assert exported["lines"] and exported["shipping_address"]["city"] == "Lyon"
    first = next(o for o in document["orders"] if o["order_id"] == shopper.orders[0])
    assert first["refunded"] == "5.00" and first["carrier"] == "UPS"
    admin_steps = [s for s in first["timeline"] if s["actor"]["kind"] == "user"]
    assert admin_steps and all(s["actor"]["id"] in (None, me.id) for s in admin_steps)

    # Payments: one per order, as the order's payments view shows it, with the refund.
    assert sorted(p["order_id"] for p in document["payments"]) == sorted(shopper.orders)
    for exported in document["payments"]:
        seen = client.get(f"/orders/{exported['order_id']}/payments", headers=headers).json()
        assert _without(exported, "refunds") == _without(seen["items"][0], "customer_id")
        assert exported["gateway"] == "sandbox"
    refunded = next(p for p in document["payments"] if p["order_id"] == shopper.orders[0])
    assert [r["amount"] for r in refunded["refunds"]] == ["5.00"]
    assert refunded["refunded"] == "5.00" and refunded["captured"] == "30.00"

    # Reviews: both of theirs, with the seller's reply; never the bystander's.
    assert sorted(r["review_id"] for r in document["reviews"]) == sorted(shopper.reviews)
    replied = next(r for r in document["reviews"] if r["review_id"] == shopper.reviews[0])
    assert replied["title"] == "exporter title 0" and replied["body"] == "exporter body 0"
    assert replied["rating"] == 4 and replied["reply"] == "Thank you, exporter!"
    assert replied["replied_at"] is not None and replied["hidden"] is False

    # Notifications: the inbox as /me/notifications answers it, the decisions as
    # support's delivery log lists them, the device as /me/devices lists it.
    notifications = document["notifications"]
    inbox = _inbox(client, me)
    assert len(inbox) >= 2
    assert notifications["inbox"] == inbox
    logged = client.get(
        "/admin/notifications", params={"user_id": me.id, "limit": 100}, headers=cast.admin
    ).json()["items"]
    assert [n["id"] for n in notifications["deliveries"]] == [n["id"] for n in logged]
    assert all(n["user_id"] == me.id for n in notifications["deliveries"])
    order_notes = {n["order_id"] for n in notifications["deliveries"] if n["order_id"]}
    assert order_notes == set(shopper.orders)
    channels = {d["channel"] for n in notifications["deliveries"] for d in n["deliveries"]}
    assert {"email", "in_app"} <= channels
    devices = client.get("/me/devices", headers=headers).json()["items"]
    assert notifications["devices"] == devices
    assert [d["id"] for d in devices] == [shopper.device]

    # Nothing of anyone else: not the bystander's, not the acting admin's.
    admin_id = client.get("/users/me", headers=cast.admin).json()["user_id"]
    other = bystander.account
    text = json.dumps(document)
    for foreign in (
        other.id,
        other.email,
        other.name,
        "+441632960962",
        bystander.device,
        admin_id,
        *bystander.orders,
        *bystander.reviews,
        "bystander",
    ):
        assert foreign not in text, foreign


def test_the_bystander_gets_their_own(
    client: httpx.Client, shoppers: tuple[Shopper, Shopper]
) -> None:
    shopper, bystander = shoppers
    document = _download(
        client,
        "/users/me/data-export",
        {**bystander.account.headers, CONSISTENCY: bystander.token},
    )
    assert document["user_id"] == bystander.account.id
    assert [o["order_id"] for o in document["orders"]] == bystander.orders[::-1]
    assert sorted(r["review_id"] for r in document["reviews"]) == sorted(bystander.reviews)
    assert [r["reply"] for r in document["reviews"]] == [None, None]
    assert all(p["refunds"] == [] for p in document["payments"])
    text = json.dumps(document)
    for foreign in (shopper.account.id, shopper.account.email, *shopper.orders, *shopper.reviews):
        assert foreign not in text, foreign


def _stable(document: dict[str, Any]) -> dict[str, Any]:
    """The document but for what may move between two downloads: its time, and a
    delivery's state while a worker is at it."""
    notifications = document["notifications"]
    return {
        **_without(document, "generated_at", "notifications"),
        "inbox": notifications["inbox"],
        "devices": notifications["devices"],
        "deliveries": [n["id"] for n in notifications["deliveries"]],
    }


def test_an_admin_downloads_a_users_export(
    server: Server, client: httpx.Client, cast: Cast, shoppers: tuple[Shopper, Shopper]
) -> None:
    shopper, _ = shoppers
    own = _download(
        client, "/users/me/data-export", {**shopper.account.headers, CONSISTENCY: shopper.token}
    )
    for_them = _download(client, f"/admin/users/{shopper.account.id}/data-export", cast.admin)
    assert for_them["user_id"] == shopper.account.id
    assert _stable(for_them) == _stable(own)


def test_a_page_of_one_row_gives_the_same_document(
    server: Server, client: httpx.Client, shoppers: tuple[Shopper, Shopper]
) -> None:
    """The lists are read page by page: with pages of one row every list takes
    several, and the document is the one the API answers."""
    shopper, _ = shoppers
    answered = _download(
        client, "/users/me/data-export", {**shopper.account.headers, CONSISTENCY: shopper.token}
    )
    for key in ("orders", "payments", "reviews"):
        assert len(answered[key]) == 2, key
    assert len(answered["notifications"]["inbox"]) >= 2

    async def paged() -> dict[str, Any]:
        pool = AsyncConnectionPool(server.database_url, min_size=1, max_size=1, open=False)
        async with pool:
            export = UserDataExport(pool, page_size=1)
            profile = await export.profile(uuid.UUID(shopper.account.id))
            when = datetime.fromisoformat(answered["generated_at"])
            pieces = [piece async for piece in export.document(profile, when)]
        assert len(pieces) > 20  # a piece per page: many pages
        found: dict[str, Any] = json.loads(b"".join(pieces))
        return found

    assert _stable(asyncio.run(paged())) == _stable(answered)


def test_refusals(client: httpx.Client, cast: Cast, shoppers: tuple[Shopper, Shopper]) -> None:
    shopper, _ = shoppers
    mine, theirs = "/users/me/data-export", f"/admin/users/{shopper.account.id}/data-export"
    for path in (mine, theirs):
        refused(client.get(path), 401, "unauthenticated")
        refused(
            client.get(path, headers={"Authorization": "Bearer nonsense"}), 401, "unauthenticated"
        )
    refused(client.get(theirs, headers=shopper.account.headers), 403, "not-permitted")
    refused(
        client.get(f"/admin/users/{uuid.uuid4()}/data-export", headers=cast.admin),
        404,
        "not-found",
    )
    refused(
        client.get("/admin/users/not-a-uuid/data-export", headers=cast.admin),
        422,
        "validation-failed",
    )
    refused(
        client.get(mine, headers={**shopper.account.headers, CONSISTENCY: "nonsense"}),
        400,
        "bad-query",
    )
