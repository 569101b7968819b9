"""The operators' side of notifications over HTTP: the delivery log per user and per
order (``GET /admin/notifications``) and the resend of a failed delivery, admins
only. The app is the whole one (``create_app``), in this process: the rows are
written as the notifier and the workers write them, on SMS, which this shop does
not deliver (``SHOP_NOTIFY_SMS=off``), so no worker races the test for them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from commands.notifications.decisions import Decision
from domain.notifications import Channel, Kind
from domain.users import Role
from infra.postgres.notifications import PostgresDeliveryLog
from infra.wiring.process import Container
from tests.support.api import bearer, refused
from tests.support.in_process import in_process_app
from tests.support.notify_rows import attempted, decided, delivery_on
from tests.support.polling import eventually
from tests.support.users_client import STRONG_PASSWORD, unique_email

pytestmark = pytest.mark.e2e

SMS = frozenset({Channel.SMS})
PHONE = "+447700900123"


@dataclass
class Shop:
    client: TestClient
    container: Container
    admin: dict[str, str]
    customer: dict[str, str]
    """A logged-in account without the admin role."""


@pytest.fixture(scope="module")
def shop(
    make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shop]:
    with (
        in_process_app(make_database(), tmp_path_factory.mktemp("shop-data")) as (app, container),
        TestClient(app) as client,
    ):
        commands = container.user_commands
        admin_email, customer_email = unique_email("admin"), unique_email("customer")
        admin_id = commands.create_admin(admin_email, STRONG_PASSWORD, "Admin").id
        customer_id = commands.create_admin(customer_email, STRONG_PASSWORD, "Customer").id
        commands.revoke_role(customer_id, Role.ADMIN, admin_id)
        yield Shop(
            client, container, logged_in(client, admin_email), logged_in(client, customer_email)
        )


def logged_in(client: TestClient, email: str) -> dict[str, str]:
    answer = client.post("/auth/login", json={"email": email, "password": STRONG_PASSWORD})
    assert answer.status_code == 200, answer.text
    headers = bearer(answer.json()["access_token"])

    def works() -> bool:  # once the session has reached the access view
        return bool(client.get("/users/me", headers=headers).status_code == 200)

    eventually(works, f"the session of {email}")
    return headers


def sms_to(shop: Shop, user_id: UUID, order_id: UUID | None = None) -> tuple[Decision, UUID]:
    decision = decided(
        shop.container.pool,
        Kind.ORDER_SHIPPED,
        user_id,
        datetime.now(UTC),
        order_id=order_id,
        channels=SMS,
        phone=PHONE,
    )
    return decision, delivery_on(decision, Channel.SMS)


def log(shop: Shop, **query: Any) -> Any:
    answer = shop.client.get("/admin/notifications", params=query, headers=shop.admin)
    assert answer.status_code == 200, answer.text
    return answer.json()


def resend(shop: Shop, delivery_id: UUID | str, headers: dict[str, str] | None = None) -> Any:
    return shop.client.post(
        f"/admin/notifications/deliveries/{delivery_id}/resend", headers=headers or shop.admin
    )


def test_the_log_per_user_and_per_order(shop: Shop) -> None:
    user, order = uuid4(), uuid4()
    decision, sms = sms_to(shop, user, order)
    attempted(shop.container.pool, sms, datetime.now(UTC), "failed", error="invalid number")

    (by_user,) = log(shop, user_id=str(user))["items"]
    assert log(shop, order_id=str(order))["items"] == [by_user]
    assert by_user["id"] == str(decision.notification.id)
    assert (by_user["kind"], by_user["order_id"]) == ("order_shipped", str(order))
    (delivery,) = by_user["deliveries"]
    assert (delivery["id"], delivery["channel"], delivery["address"]) == (str(sms), "sms", PHONE)
    assert (delivery["state"], delivery["last_error"]) == ("failed", "invalid number")
    assert [(a["number"], a["outcome"]) for a in delivery["history"]] == [(1, "failed")]


def test_pages_of_the_log(shop: Shop) -> None:
    user = uuid4()
    made = {str(sms_to(shop, user)[0].notification.id) for _ in range(3)}

    first = log(shop, user_id=str(user), limit=2)
    rest = log(shop, user_id=str(user), limit=2, cursor=first["next_cursor"])

    assert len(first["items"]) == 2 and rest["next_cursor"] is None
    assert {n["id"] for n in first["items"] + rest["items"]} == made


@pytest.mark.parametrize(
    "query", [{}, {"user_id": str(uuid4()), "order_id": str(uuid4())}], ids=["neither", "both"]
)
def test_the_log_needs_exactly_one_of_user_or_order(shop: Shop, query: dict[str, str]) -> None:
    answer = shop.client.get("/admin/notifications", params=query, headers=shop.admin)

    body = refused(answer, 422, "validation-failed")
    assert "exactly one of user_id or order_id" in str(body["errors"])


def test_a_cursor_it_did_not_issue_is_refused(shop: Shop) -> None:
    answer = shop.client.get(
        "/admin/notifications",
        params={"user_id": str(uuid4()), "cursor": "bm90LWEtY3Vyc29y"},
        headers=shop.admin,
    )

    refused(answer, 400, "bad-query")


def test_only_admins(shop: Shop) -> None:
    _, sms = sms_to(shop, uuid4())
    attempted(shop.container.pool, sms, datetime.now(UTC), "failed", error="invalid number")
    listing = "/admin/notifications"

    refused(shop.client.get(listing, params={"user_id": str(uuid4())}), 401, "unauthenticated")
    refused(
        shop.client.get(listing, params={"user_id": str(uuid4())}, headers=shop.customer),
        403,
        "not-permitted",
    )
    refused(resend(shop, sms, headers=shop.customer), 403, "not-permitted")
    assert PostgresDeliveryLog(shop.container.pool).pending([sms]) == []  # still failed


def test_a_failed_delivery_is_queued_again(shop: Shop) -> None:
    user = uuid4()
    _, sms = sms_to(shop, user)
    attempted(shop.container.pool, sms, datetime.now(UTC), "failed", error="invalid number")

    answer = resend(shop, sms)

    assert answer.status_code == 202, answer.text
    assert answer.json() == {"delivery_id": str(sms), "state": "queued"}
    (delivery,) = log(shop, user_id=str(user))["items"][0]["deliveries"]
    assert (delivery["state"], delivery["attempts"]) == ("queued", 1)
    assert [a["outcome"] for a in delivery["history"]] == ["failed"]  # its history kept
    refused(resend(shop, sms), 409, "delivery-not-failed")  # queued already


def test_a_sent_delivery_is_not_sent_again(shop: Shop) -> None:
    _, sms = sms_to(shop, uuid4())
    attempted(shop.container.pool, sms, datetime.now(UTC), "sent", provider_message_id="sns-1")

    body = refused(resend(shop, sms), 409, "delivery-not-failed")
    assert "sent" in body["detail"]


def test_an_unknown_delivery(shop: Shop) -> None:
    refused(resend(shop, uuid4()), 404, "not-found")
    refused(resend(shop, "not-a-uuid"), 422, "validation-failed")


@pytest.mark.parametrize(("environment", "mounted"), [("production", False), ("development", True)])
def test_the_local_mailbox_is_not_served_in_production(
    make_database: Callable[[], str],
    tmp_path: Any,
    environment: Literal["development", "production"],
    mounted: bool,
) -> None:
    chosen = {"notify_email": "smtp", "notify_sms": "off", "notify_push": "off"}
    with in_process_app(make_database(), tmp_path, environment=environment, **chosen) as (app, _):
        client = TestClient(app)  # routing only: no start-up
        mailbox = client.get("/admin/mailbox").status_code
        log = client.get("/admin/notifications").status_code
    assert mailbox == (401 if mounted else 404)  # mounted: asks who is asking
    assert log == 401
