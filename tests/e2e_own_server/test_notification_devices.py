"""A user's push devices over HTTP (``/me/devices``) and their Postgres store. The
app is the whole one (``create_app``) in this process, with the devices router and
its services added here as the composition root will add them: register a Web
Push subscription or a mobile token, list, remove; a malformed token is refused
(422) and nothing is stored; another user's device can be neither seen nor
removed."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient

from commands.notifications.ports import Device
from infra.postgres.devices import PostgresDevices
from infra.wiring.process import Container
from tests.support.api import bearer, refused
from tests.support.in_process import in_process_app
from tests.support.polling import eventually
from tests.support.users_client import STRONG_PASSWORD, unique_email

pytestmark = pytest.mark.e2e


@dataclass
class Shop:
    client: TestClient
    container: Container
    devices: PostgresDevices
    database_url: str
    ann: dict[str, str]
    bob: dict[str, str]


@pytest.fixture(scope="module")
def shop(
    make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shop]:
    database_url = make_database()
    with (
        in_process_app(database_url, tmp_path_factory.mktemp("shop-data")) as (app, container),
        TestClient(app) as client,
    ):
        devices = PostgresDevices(container.pool)
        commands = container.user_commands
        ann, bob = unique_email("ann"), unique_email("bob")
        commands.create_admin(ann, STRONG_PASSWORD, "Ann")
        commands.create_admin(bob, STRONG_PASSWORD, "Bob")
        yield Shop(
            client,
            container,
            devices,
            database_url,
            logged_in(client, ann),
            logged_in(client, bob),
        )


def logged_in(client: TestClient, email: str) -> dict[str, str]:
    answer = client.post("/auth/login", json={"email": email, "password": STRONG_PASSWORD})
    assert answer.status_code == 200, answer.text
    headers = bearer(answer.json()["access_token"])

    def works() -> bool:  # once the session has reached the access view
        return bool(client.get("/users/me", headers=headers).status_code == 200)

    eventually(works, f"the session of {email}")
    return headers


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_key() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def subscription(
    endpoint: str | None = None, p256dh: str | None = None, auth: str | None = None, **more: Any
) -> str:
    """A browser's ``JSON.stringify(pushSubscription)``."""
    return json.dumps(
        {
            "endpoint": endpoint or f"https://push.example.net/send/{uuid4()}",
            "expirationTime": None,
            "keys": {
                "p256dh": p256dh or b64url(public_key()),
                "auth": auth or b64url(os.urandom(16)),
            },
            **more,
        }
    )


def register(shop: Shop, headers: dict[str, str], platform: str, token: str) -> Any:
    return shop.client.post(
        "/me/devices", json={"platform": platform, "token": token}, headers=headers
    )


def listed(shop: Shop, headers: dict[str, str]) -> list[dict[str, Any]]:
    answer = shop.client.get("/me/devices", headers=headers)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def rows(shop: Shop) -> int:
    with psycopg.connect(shop.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM notify.devices").fetchone()
    assert row is not None
    return int(row[0])


def test_register_list_and_register_again(shop: Shop) -> None:
    headers = logged_in(shop.client, _new_user(shop))
    token = subscription()
    created = register(shop, headers, "webpush", token)
    assert created.status_code == 201, created.text
    device = created.json()
    assert set(device) == {"id", "platform", "created_at"}  # never the token
    assert device["platform"] == "webpush"
    assert UUID(device["id"]) and datetime.fromisoformat(device["created_at"])

    # The same subscription again (re-sent with other spacing): the same device.
    again = register(shop, headers, "webpush", json.dumps(json.loads(token), indent=2))
    assert again.status_code == 201, again.text
    assert again.json() == device

    phone = register(shop, headers, "apns", "a1b2c3d4e5f6" * 5)
    assert phone.status_code == 201, phone.text
    android = register(shop, headers, "fcm", "cXyZ:APA91b-Hq_1.2")
    assert android.status_code == 201, android.text
    assert listed(shop, headers) == [device, phone.json(), android.json()]

    # What the push channel reads: the token stored canonical, the owner set.
    stored = shop.devices.get(UUID(device["id"]))
    assert stored is not None
    assert json.loads(stored.token) == {
        "endpoint": json.loads(token)["endpoint"],
        "keys": json.loads(token)["keys"],
    }
    assert [d.id for d in shop.devices.of_user(stored.user_id)] == [
        UUID(d["id"]) for d in listed(shop, headers)
    ]


OFF_CURVE = bytearray(public_key())
OFF_CURVE[-1] ^= 1
BAD_TOKENS: list[tuple[str, str, str]] = [
    ("not JSON", "webpush", "{endpoint: nope"),
    ("not an object", "webpush", json.dumps(["https://push.example.net/x"])),
    ("nested past the parser's depth", "webpush", '{"keys":' + "[" * 2040 + "]" * 2040 + "}"),
    ("no keys", "webpush", json.dumps({"endpoint": "https://push.example.net/x"})),
    ("plain http", "webpush", subscription(endpoint="http://push.example.net/x")),
    ("not http", "webpush", subscription(endpoint="ftp://push.example.net/x")),
    ("no host", "webpush", subscription(endpoint="https:///x")),
    ("credentials", "webpush", subscription(endpoint="https://u:p@push.example.net/x")),
    ("endpoint not text", "webpush", json.dumps({"endpoint": 7, "keys": {}})),
    ("p256dh short", "webpush", subscription(p256dh=b64url(public_key()[:64]))),
    ("p256dh compressed", "webpush", subscription(p256dh=b64url(b"\x02" + public_key()[1:]))),
    ("p256dh off the curve", "webpush", subscription(p256dh=b64url(bytes(OFF_CURVE)))),
    ("p256dh not base64url", "webpush", subscription(p256dh="B" + "+/" * 43)),
    ("auth 15 bytes", "webpush", subscription(auth=b64url(os.urandom(15)))),
    ("auth 17 bytes", "webpush", subscription(auth=b64url(os.urandom(17)))),
    ("auth not base64url", "webpush", subscription(auth="!!!!!!!!!!!!!!!!!!!!!!")),
    ("apns with a space", "apns", "abc def"),
    ("fcm with a slash", "fcm", "abc/def"),
    ("apns too long", "apns", "a" * 4097),
]


@pytest.mark.parametrize(
    ("platform", "token"), [pytest.param(p, t, id=n) for n, p, t in BAD_TOKENS]
)
def test_a_malformed_token_is_refused_and_nothing_stored(
    shop: Shop, platform: str, token: str
) -> None:
    before = rows(shop)
    answer = register(shop, shop.ann, platform, token)
    assert answer.status_code == 422, answer.text
    code = "validation-failed" if len(token) > 4096 else "invalid-device"
    refused(answer, 422, code)
    assert token not in answer.text
    assert rows(shop) == before


@pytest.mark.parametrize(
    "body",
    [
        {"platform": "sms", "token": "abc"},
        {"platform": "apns"},
        {"platform": "apns", "token": ""},
        {"platform": "apns", "token": "abc", "user_id": str(uuid4())},
        {"platform": "webpush", "token": {"endpoint": "https://push.example.net/x"}},
    ],
)
def test_a_malformed_body_is_refused(shop: Shop, body: dict[str, Any]) -> None:
    before = rows(shop)
    refused(shop.client.post("/me/devices", json=body, headers=shop.ann), 422, "validation-failed")
    assert rows(shop) == before


def test_http_is_allowed_to_a_local_push_service_only(shop: Shop) -> None:
    for endpoint in (
        "http://127.0.0.1:8089/push/1",
        "http://[::1]:8089/push/2",
        "http://localhost/3",
    ):
        answer = register(shop, shop.ann, "webpush", subscription(endpoint=endpoint))
        assert answer.status_code == 201, (endpoint, answer.text)


def test_only_the_owner_sees_and_removes_a_device(shop: Shop) -> None:
    ann_device = register(shop, shop.ann, "fcm", f"ann-{uuid4()}").json()
    bob_device = register(shop, shop.bob, "fcm", f"bob-{uuid4()}").json()
    assert ann_device not in listed(shop, shop.bob)
    assert bob_device not in listed(shop, shop.ann)

    # Bob cannot remove Ann's device: 404, as for a device that never existed.
    refused(
        shop.client.delete(f"/me/devices/{ann_device['id']}", headers=shop.bob), 404, "not-found"
    )
    assert ann_device in listed(shop, shop.ann)
    assert shop.devices.get(UUID(ann_device["id"])) is not None
    refused(shop.client.delete(f"/me/devices/{uuid4()}", headers=shop.ann), 404, "not-found")

    removed = shop.client.delete(f"/me/devices/{ann_device['id']}", headers=shop.ann)
    assert removed.status_code == 204, removed.text
    assert removed.content == b""
    assert ann_device not in listed(shop, shop.ann)
    assert bob_device in listed(shop, shop.bob)
    refused(
        shop.client.delete(f"/me/devices/{ann_device['id']}", headers=shop.ann), 404, "not-found"
    )
    refused(
        shop.client.delete("/me/devices/not-a-uuid", headers=shop.ann), 422, "validation-failed"
    )


def test_the_same_token_for_two_users_is_two_devices(shop: Shop) -> None:
    shared = f"shared-{uuid4()}"
    ann = register(shop, shop.ann, "apns", shared).json()
    bob = register(shop, shop.bob, "apns", shared).json()
    assert ann["id"] != bob["id"]


def test_devices_need_a_login(shop: Shop) -> None:
    refused(shop.client.get("/me/devices"), 401, "unauthenticated")
    refused(
        shop.client.post("/me/devices", json={"platform": "apns", "token": "abc"}),
        401,
        "unauthenticated",
    )
    refused(shop.client.delete(f"/me/devices/{uuid4()}"), 401, "unauthenticated")


def test_the_store_does_what_the_push_channel_needs(shop: Shop) -> None:
    """``Devices`` as ``PushRouter`` and the SNS sender use it."""
    user = uuid4()
    device = shop.devices.register(Device(uuid4(), user, "apns", f"tok-{uuid4()}"))
    same = shop.devices.register(Device(uuid4(), user, "apns", device.token))
    assert same == device
    shop.devices.set_endpoint(device.id, "arn:aws:sns:eu-west-1:1:endpoint/APNS/app/1")
    got = shop.devices.get(device.id)
    assert got is not None and got.endpoint_arn == "arn:aws:sns:eu-west-1:1:endpoint/APNS/app/1"
    assert shop.devices.of_user(user) == [got]
    assert not shop.devices.remove(device.id, uuid4())  # another user's id: kept
    assert shop.devices.remove(device.id)  # a device the push service no longer knows
    assert shop.devices.get(device.id) is None
    assert not shop.devices.remove(device.id)


def _new_user(shop: Shop) -> str:
    email = unique_email("devices")
    shop.container.user_commands.create_admin(email, STRONG_PASSWORD, "Dee")
    return email
