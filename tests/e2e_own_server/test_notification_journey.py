"""A shopper's notifications over every real channel, against ``shop run`` configured
as a deployment is: email over SMTP (aiosmtpd on loopback), SMS and mobile push
through SNS (moto server, an FCM platform application), Web Push to a push service
that checks VAPID and decrypts, and the in-app inbox's live stream (SSE).

The journey: the verification link from the real MIME mail verifies the account;
phone, preferences and two devices are set over HTTP; the order confirmation is
mailed and arrives on a stream opened before checkout; the shipment is texted and
pushed with its tracking number; a stream closed before the delivery gets, once
reopened with the last id it saw, exactly the notification it missed.

And, first, the confirmation in the scaled mode (``shop serve all``: both APIs in one
process, the relay and a stream worker as its children, on a Tansu broker): the
notifier and the delivery loops run in the worker, off Kafka; the stream is served
by the read API, nudged through Postgres. Its deployment is stopped before ``shop
run`` starts: the two do not fit in the database's 100 connections together."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.webpush.sender import new_vapid_keys
from tests.integration.kafka.conftest import Broker, Roles, broker, scaled_settings, settings_env
from tests.support import moto_server
from tests.support.api import CONSISTENCY, problem_type, written
from tests.support.catalog_client import Cast, listed_product
from tests.support.notifications_client import (
    LiveInbox,
    at_least,
    children_of,
    gone,
    html_of,
    inbox_page,
    link_in,
    live_inbox,
    logged_in,
    mails_to,
    path_of,
    pushed_to,
    sms_to,
    smtp_verified_account,
    stop_processes,
    stream_ticket,
    text_of,
)
from tests.support.ordering_client import DECIDED, place_order
from tests.support.polling import eventually
from tests.support.server import (
    NO_ADDRESS_LIMITS,
    VERIFY_SUBJECT,
    Server,
    create_admin,
    free_port,
    running_server,
)
from tests.support.smtp_server import SmtpCapture, smtp_server
from tests.support.users_client import STRONG_PASSWORD, Account, login, register
from tests.support.users_client import unique_email as new_email
from tests.support.webpush_service import WebPushService, webpush_service

pytestmark = pytest.mark.e2e
__all__ = ["broker"]  # the session's Tansu broker, for the scaled mode

SCALED_READY_SECONDS = 90.0
SENDER = "orders@eventshop.example"
VAPID_SUBJECT = "mailto:ops@eventshop.example"
PHONE = "+447700900123"  # moto's SNS treats numbers ending in 99 as opted out
DELIVERY_SECONDS = 20.0
"""A send happens after the notifier's decision, itself after the event's commit."""
AWS_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


@dataclass
class Channels:
    """The servers the shop delivers to, and what the test needs of them."""

    smtp: SmtpCapture
    moto: str
    push: WebPushService
    vapid_public_key: str


@dataclass
class Shop:
    server: Server
    channels: Channels
    client: httpx.Client


@pytest.fixture(scope="module")
def channels() -> Iterator[tuple[Channels, dict[str, str]]]:
    """The delivery servers, and the settings that point ``shop run`` at them."""
    with (
        smtp_server() as smtp,
        moto_server.moto_server() as moto,
        webpush_service() as push,
    ):
        sns = moto_server.client(moto, "sns")
        fcm = sns.create_platform_application(
            Name="eventshop-fcm", Platform="GCM", Attributes={"PlatformCredential": "key"}
        )["PlatformApplicationArn"]
        private_key, public_key = new_vapid_keys()
        env = {
            **NO_ADDRESS_LIMITS,
            **AWS_CREDENTIALS,
            # Fewer connections: tests/e2e's shared server may be running beside this one.
            "SHOP_CHECKOUT_SAGA_PARTITIONS": "1",
            "SHOP_NOTIFY_EMAIL": "smtp",
            "SHOP_SMTP_HOST": "127.0.0.1",
            "SHOP_SMTP_PORT": str(smtp.port),
            "SHOP_SMTP_SENDER": SENDER,
            "SHOP_NOTIFY_SMS": "sns",
            "SHOP_NOTIFY_PUSH": "sns",
            "SHOP_AWS_ENDPOINT_URL": moto,
            "SHOP_AWS_REGION": moto_server.REGION,
            "SHOP_SNS_PLATFORM_APPLICATIONS": json.dumps({"fcm": fcm}),
            "SHOP_VAPID_PRIVATE_KEY": private_key,
            "SHOP_VAPID_SUBJECT": VAPID_SUBJECT,
        }
        yield Channels(smtp, moto, push, public_key), env


@pytest.fixture(scope="module")
def shop(
    channels: tuple[Channels, dict[str, str]],
    make_database: Callable[[], str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Shop]:
    delivery, env = channels
    with (
        running_server(make_database(), tmp_path_factory.mktemp("shop-data"), env) as server,
        server.client() as client,
    ):
        yield Shop(server, delivery, client)


@pytest.fixture
def scaled_shop(
    channels: tuple[Channels, dict[str, str]],
    make_database: Callable[[], str],
    tmp_path: Path,
    broker: Broker,
) -> Iterator[Shop]:
    """``shop serve all`` delivering email over SMTP and in-app (SMS and push off):
    three processes, the fewest the scaled mode runs in."""
    delivery, _ = channels
    port = free_port()
    database = make_database()
    overrides: dict[str, object] = {
        "login_attempts_per_address": 100000,
        "public_url": f"http://127.0.0.1:{port}",
        "read_your_writes_timeout": 15,  # the first events wait for the worker's group
        "checkout_saga_partitions": 1,  # the worker's connections: one saga view
        "notify_email": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": delivery.smtp.port,
        "smtp_sender": SENDER,
        "notify_sms": "off",
        "notify_push": "off",
    }
    settings = scaled_settings(database, tmp_path / "var", broker)
    env = settings_env(settings, **overrides)
    create_admin(env)
    roles = Roles(settings, tmp_path)
    children: list[int] = []
    try:
        # (no smaller pool: the relay and the worker inherit the environment of `all`)
        role = roles.start("all", port=port, **overrides)
        server = Server(f"http://127.0.0.1:{port}", env, database, role.log_path)
        with server.client() as client:

            def ready() -> bool:
                if role.process.poll() is not None:
                    raise RuntimeError(f"shop serve all exited:\n{role.log()}")
                children[:] = children_of(role.process.pid)
                if len(children) < 2 or client.get("/health").status_code != 200:
                    return False
                # the admin's session works once the worker has built the access view
                me = client.get("/users/me", headers=server.admin_headers(client))
                return me.status_code == 200

            eventually(
                ready,
                f"shop serve all ready (log: {role.log_path})",
                timeout=SCALED_READY_SECONDS,
                interval=0.2,
                retry_on=(httpx.TransportError,),
            )
            yield Shop(server, delivery, client)
    finally:
        for started in roles.started:
            started.stop()  # SIGTERM: `shop serve all` stops its relay and worker first
        left = [pid for pid in children if not gone(pid)]
        stop_processes(left)  # whatever the check below says, nothing is left running
    assert not left, "shop serve all left its children running after SIGTERM"
    for started in roles.started:
        assert "unhandled error" not in started.log(), started.log_path


@pytest.mark.integration  # as the Kafka tests: it needs the broker
def test_the_confirmation_is_mailed_and_streamed_from_a_stream_worker(scaled_shop: Shop) -> None:
    """First in the module: its deployment is stopped before ``shop`` starts (the two
    would not fit in the database's 100 connections together)."""
    shop = scaled_shop
    shopper = smtp_verified_account(shop.server, shop.client, shop.channels.smtp, "scaled")
    cast = seller_with_a_category(shop)
    product_id, _ = listed_product(shop.client, cast, "42.50", stock=5)

    with live_inbox(shop.server.base_url, stream_ticket(shop.client, shopper.headers)) as stream:
        confirmed_order_mailed_and_streamed(shop, shopper, product_id, stream)


def test_every_channel_from_registration_to_delivery(shop: Shop) -> None:
    shopper = registered_through_the_mailed_link(shop)
    subscription, fcm_token = phone_preferences_and_devices(shop, shopper)
    cast = seller_with_a_category(shop)
    product_id, _ = listed_product(shop.client, cast, "42.50", stock=5)

    first_ticket = stream_ticket(shop.client, shopper.headers)
    with live_inbox(shop.server.base_url, first_ticket) as stream:
        order_id = confirmed_order_mailed_and_streamed(shop, shopper, product_id, stream)
        shipped_texted_and_pushed(shop, shopper, order_id, stream, subscription, fcm_token)
    assert [event.json()["kind"] for event in stream.seen] == ["order_confirmed", "order_shipped"]
    confirmed_key, shipped_key = (event.id for event in stream.seen)
    assert confirmed_key is not None and shipped_key is not None

    missed_notification_replayed(shop, shopper, order_id, confirmed_key, shipped_key)
    # The ticket of the first stream was used: it opens nothing again.
    again = shop.client.get("/me/notifications/stream", params={"ticket": first_ticket})
    assert again.status_code == 401, again.text


# --- the steps ---------------------------------------------------------------------------


def decided(
    client: httpx.Client, headers: dict[str, str], order_id: str, position: str
) -> dict[str, Any]:
    """The order once the saga decided it. A read API whose view is behind the
    position answers 503 ``projection-lagging`` (a worker may lag a loaded machine
    longer than the read-your-writes wait): that is "not yet" here, any other
    refusal fails at once."""

    def check() -> dict[str, Any] | None:
        answer = client.get(f"/orders/{order_id}", headers={**headers, CONSISTENCY: position})
        if answer.status_code == 503 and problem_type(answer) == "projection-lagging":
            return None
        assert answer.status_code == 200, answer.text
        order: dict[str, Any] = answer.json()
        return order if order["status"] in DECIDED else None

    return eventually(check, f"order {order_id} decided", timeout=60.0, retry_on=())


def registered_through_the_mailed_link(shop: Shop) -> Account:
    """Registered; verified by the link in the text part of the mail the SMTP server
    received (the page's form, as a person uses it); logged in."""
    client, base_url = shop.client, shop.server.base_url
    email, name = new_email("journey"), "Journey Tester"
    registered = register(client, email, STRONG_PASSWORD, name)
    assert registered.status_code == 201, registered.text

    [mail] = mails_to(shop.channels.smtp, email, VERIFY_SUBJECT)
    assert mail["From"] == SENDER
    assert mail.get_content_type() == "multipart/alternative"
    text = text_of(mail)
    assert f"Hello {name}," in text
    link = link_in(text, base_url, "/verify-email")
    token = link.split("token=", 1)[1]
    assert f"token={token}" in html_of(mail)  # the html part links the same page
    assert login(client, email, STRONG_PASSWORD).status_code == 403  # not verified yet

    page = client.get(path_of(link))
    assert page.status_code == 200, page.text
    assert '<form method="post" action="/verify-email">' in page.text
    assert f'value="{token}"' in page.text
    done = client.post("/verify-email", data={"token": token})
    assert done.status_code == 200, done.text
    assert "Your address is verified" in done.text

    tokens = logged_in(client, email)
    return Account(
        str(registered.json()["id"]),
        email,
        STRONG_PASSWORD,
        name,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
    )


def phone_preferences_and_devices(shop: Shop, shopper: Account) -> tuple[dict[str, Any], str]:
    """A phone number, SMS and push turned on for order updates, an Android phone
    (an FCM token) and a browser (a Web Push subscription to the local service):
    (the subscription, the FCM token)."""
    client = shop.client
    changed = client.patch(
        "/users/me",
        json={
            "phone": PHONE,
            "notification_preferences": {"order_updates_sms": True, "order_updates_push": True},
        },
        headers=shopper.headers,
    )
    written(changed, context="users")
    me = client.get(
        "/users/me", headers={**shopper.headers, CONSISTENCY: changed.json()["position"]}
    )
    assert me.status_code == 200, me.text
    assert me.json()["phone"] == PHONE
    preferences = me.json()["notification_preferences"]
    assert preferences["order_updates_sms"] is True
    assert preferences["order_updates_push"] is True

    fcm_token = f"fcm-{uuid.uuid4().hex}:APA91b"
    subscription = shop.channels.push.subscribe(shop.channels.vapid_public_key)
    for platform, token in (("fcm", fcm_token), ("webpush", json.dumps(subscription))):
        device = client.post(
            "/me/devices", json={"platform": platform, "token": token}, headers=shopper.headers
        )
        assert device.status_code == 201, device.text
        assert device.json()["platform"] == platform
    listed = client.get("/me/devices", headers=shopper.headers)
    assert sorted(d["platform"] for d in listed.json()["items"]) == ["fcm", "webpush"]
    return subscription, fcm_token


def seller_with_a_category(shop: Shop) -> Cast:
    """A seller (verified through SMTP too) and a category, for ``listed_product``."""
    admin = shop.server.admin_headers(shop.client)
    seller = smtp_verified_account(
        shop.server, shop.client, shop.channels.smtp, "seller", role="seller"
    )
    category = written(shop.client.post("/categories", json={"name": "Tents"}, headers=admin), 201)
    return Cast(admin, seller, seller, seller, category)


def confirmed_order_mailed_and_streamed(
    shop: Shop, shopper: Account, product_id: str, stream: LiveInbox
) -> str:
    """Two units checked out: the confirmation mailed with its total, and the
    in-app notification on the stream already open."""
    order_id, position = place_order(shop.client, shopper.headers, product_id, quantity=2)
    order = decided(shop.client, shopper.headers, order_id, position)
    assert order["status"] == "confirmed", order
    assert order["total"] == "85.00"

    [mail] = mails_to(shop.channels.smtp, shopper.email, "Order confirmed: €85.00")
    text = text_of(mail)
    assert f"your order {order_id} is confirmed" in text
    assert "Total: €85.00" in text
    assert f"{shop.server.base_url}/orders/{order_id}" in text
    assert mail["From"] == SENDER
    assert "List-Unsubscribe" not in mail  # an order update, not marketing

    [event] = stream.notifications(1, within=DELIVERY_SECONDS)
    item = event.json()
    assert item["kind"] == "order_confirmed"
    assert item["title"] == "Order confirmed"
    assert item["body"] == "Your order of €85.00 is confirmed."
    assert item["link"] == f"{shop.server.base_url}/orders/{order_id}"
    assert item["read"] is False
    assert event.id == item["key"]
    return order_id


def shipped_texted_and_pushed(
    shop: Shop,
    shopper: Account,
    order_id: str,
    stream: LiveInbox,
    subscription: dict[str, Any],
    fcm_token: str,
) -> None:
    """The admin ships with a tracking number: an SMS through SNS, a push to each
    device (both also had the confirmation), a mail, and the stream's next item."""
    tracking = f"1Z{uuid.uuid4().hex[:16].upper()}"
    shipped = shop.client.post(
        f"/admin/orders/{order_id}/ship",
        json={"carrier": "UPS", "tracking_number": tracking},
        headers=shop.server.admin_headers(shop.client),
    )
    written(shipped, context="ordering,payments")
    channels = shop.channels

    [sms] = eventually(
        lambda: sms_to(channels.moto, PHONE), "the shipment's SMS", timeout=DELIVERY_SECONDS
    )
    assert sms["message"] == f"eventshop: your order is on its way with UPS, tracking {tracking}."

    # The confirmation and the shipment, to the Android phone through its SNS endpoint
    pushes = eventually(
        at_least(2, lambda: pushed_to(channels.moto, fcm_token)),
        "two pushes to the FCM endpoint",
        timeout=DELIVERY_SECONDS,
    )
    by_title = {json.loads(p["GCM"])["notification"]["title"]: p for p in pushes}
    assert sorted(by_title) == ["Order confirmed", "Shipped"], pushes
    android = json.loads(by_title["Shipped"]["GCM"])
    assert android["notification"]["body"] == f"Your order is on its way with UPS ({tracking})."
    assert android["data"]["link"] == f"{shop.server.base_url}/orders/{order_id}"
    assert by_title["Shipped"]["default"] == android["notification"]["body"]

    # ... and to the browser, signed with the shop's VAPID key and decrypted by the service
    name = subscription["endpoint"].rsplit("/", 1)[1]
    received = eventually(
        at_least(2, lambda: [p for p in channels.push.received if p.subscription == name]),
        "two Web Pushes",
        timeout=DELIVERY_SECONDS,
    )
    payloads = {json.loads(p.payload)["title"]: json.loads(p.payload) for p in received}
    assert sorted(payloads) == ["Order confirmed", "Shipped"]
    assert payloads["Shipped"]["body"] == f"Your order is on its way with UPS ({tracking})."
    assert payloads["Shipped"]["link"] == f"{shop.server.base_url}/orders/{order_id}"
    assert {p.claims["sub"] for p in received} == {VAPID_SUBJECT}

    [mail] = mails_to(channels.smtp, shopper.email, "Your order is on its way")
    assert f"Tracking number: {tracking}" in text_of(mail)

    [event] = stream.notifications(1, within=DELIVERY_SECONDS)
    assert event.json()["kind"] == "order_shipped"
    assert event.json()["body"] == f"Shipped with UPS, tracking number {tracking}."


def missed_notification_replayed(
    shop: Shop, shopper: Account, order_id: str, confirmed_key: str, shipped_key: str
) -> None:
    """Delivered while no stream was open: a new stream resuming after the last id
    seen (the Last-Event-ID header) gets it and nothing else; one resuming after
    the first (``?last_event_id=``, as a new EventSource passes it) gets both."""
    client = shop.client
    delivered = client.post(
        f"/admin/orders/{order_id}/deliver", headers=shop.server.admin_headers(client)
    )
    written(delivered, context="ordering")

    def in_the_inbox() -> list[dict[str, Any]] | None:
        items = inbox_page(client, shopper.headers)
        return items if items and items[0]["kind"] == "order_delivered" else None

    items = eventually(in_the_inbox, "the delivery in the inbox", timeout=DELIVERY_SECONDS)
    assert [i["kind"] for i in items] == ["order_delivered", "order_shipped", "order_confirmed"]
    assert [i["key"] for i in items[1:]] == [shipped_key, confirmed_key]
    missed = items[0]

    ticket = stream_ticket(client, shopper.headers)
    with live_inbox(shop.server.base_url, ticket, shipped_key, read_timeout=3.0) as stream:
        [event] = stream.notifications(1, within=DELIVERY_SECONDS)
        assert event.id == missed["key"]
        assert event.json() == missed
        stream.nothing_more()

    ticket = stream_ticket(client, shopper.headers)
    with live_inbox(
        shop.server.base_url, ticket, confirmed_key, in_query=True, read_timeout=2.0
    ) as stream:
        replayed = stream.notifications(2, within=DELIVERY_SECONDS)
        assert [e.id for e in replayed] == [shipped_key, missed["key"]]
        stream.nothing_more()

    unread = client.get("/me/notifications/unread-count", headers=shopper.headers)
    assert unread.json() == {"unread": 3}, unread.text
    [_, sms_delivered] = eventually(
        at_least(2, lambda: sms_to(shop.channels.moto, PHONE)),
        "the delivery's SMS",
        timeout=DELIVERY_SECONDS,
    )
    assert sms_delivered["message"] == "eventshop: your order has been delivered."
