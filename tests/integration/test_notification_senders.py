"""Each channel adapter against a real server speaking its protocol: SMTP (aiosmtpd),
SES v2 and SNS (moto server), Web Push (a local push service that checks VAPID and
decrypts), and the local mailbox (Postgres). Servers start once for the module."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_string, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from psycopg_pool import ConnectionPool

from commands.notifications.ports import (
    Content,
    Device,
    DeviceGone,
    Outgoing,
    PermanentFailure,
    TransientFailure,
)
from commands.notifications.push import PushRouter
from domain.notifications import Channel, Kind
from infra.amazon.errors import aws_errors
from infra.amazon.ses import SesEmailSender
from infra.amazon.sns_push import SnsPushSender
from infra.amazon.sns_sms import SnsSmsSender
from infra.postgres import mailbox as mailbox_table
from infra.postgres.mailbox import PostgresMailbox
from infra.smtp.sender import SmtpEmailSender
from infra.webpush.sender import WebPushSender, new_vapid_keys
from tests.support import moto_server
from tests.support.notifications_client import sms_to
from tests.support.server import free_port
from tests.support.smtp_server import SmtpCapture, smtp_server
from tests.support.webpush_service import WebPushService, b64url, webpush_service

pytestmark = pytest.mark.integration

SENDER = "shop@example.com"
UNSUBSCRIBE = {
    "List-Unsubscribe": "<https://shop.example.com/unsubscribe/t0k3n>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}


def outgoing(channel: Channel, address: str, **content: Any) -> Outgoing:
    defaults: dict[str, Any] = {
        "subject": "Your order has shipped",
        "text": "It is on its way.",
        "html": "<p>It is <b>on its way</b>.</p>",
        "link": "https://shop.example.com/orders/42",
    }
    return Outgoing(
        delivery_id=uuid4(),
        notification_id=uuid4(),
        kind=Kind.ORDER_SHIPPED,
        channel=channel,
        user_id=uuid4(),
        address=address,
        content=Content(**(defaults | content)),
        created_at=datetime.now(UTC),
        headers=UNSUBSCRIBE if channel is Channel.EMAIL else {},
    )


class MemoryDevices:
    """The ``Devices`` port in memory (the Postgres one has its own tests)."""

    def __init__(self) -> None:
        self.rows: dict[UUID, Device] = {}

    def register(self, device: Device) -> Device:
        for known in self.rows.values():
            if (known.user_id, known.token) == (device.user_id, device.token):
                return known
        self.rows[device.id] = device
        return device

    def get(self, device_id: UUID) -> Device | None:
        return self.rows.get(device_id)

    def of_user(self, user_id: UUID) -> list[Device]:
        return [d for d in self.rows.values() if d.user_id == user_id]

    def set_endpoint(self, device_id: UUID, endpoint_arn: str) -> None:
        self.rows[device_id] = replace(self.rows[device_id], endpoint_arn=endpoint_arn)

    def remove(self, device_id: UUID, user_id: UUID | None = None) -> bool:
        device = self.rows.get(device_id)
        if device is None or user_id not in (None, device.user_id):
            return False
        del self.rows[device_id]
        return True


@pytest.fixture
def devices() -> MemoryDevices:
    return MemoryDevices()


def new_device(devices: MemoryDevices, platform: str, token: str) -> Device:
    return devices.register(Device(uuid4(), uuid4(), platform, token))


# -- SMTP ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpCapture]:
    with smtp_server() as capture:
        yield capture


@pytest.fixture
def smtp_sender(smtp: SmtpCapture) -> SmtpEmailSender:
    return SmtpEmailSender("127.0.0.1", smtp.port, SENDER, timeout=5)


def received(smtp: SmtpCapture, message_id: str) -> EmailMessage:
    return next(m for m in smtp.messages if m["Message-ID"] == message_id)


def test_smtp_delivers_text_html_and_unsubscribe_headers(
    smtp: SmtpCapture, smtp_sender: SmtpEmailSender
) -> None:
    mail = outgoing(Channel.EMAIL, "ada@example.org")
    message_id = smtp_sender.send(mail)
    assert message_id == f"<{mail.delivery_id}@eventshop>"
    message = received(smtp, message_id)
    assert (message["From"], message["To"]) == (SENDER, "ada@example.org")
    assert message["Subject"] == "Your order has shipped"
    assert {name: message[name] for name in UNSUBSCRIBE} == UNSUBSCRIBE
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content().strip() == "It is on its way."
    assert html.get_content().strip() == "<p>It is <b>on its way</b>.</p>"


def test_smtp_a_refused_recipient_fails_for_good(
    smtp: SmtpCapture, smtp_sender: SmtpEmailSender
) -> None:
    smtp.refused.add("gone@example.org")
    with pytest.raises(PermanentFailure, match="550"):
        smtp_sender.send(outgoing(Channel.EMAIL, "gone@example.org"))


def test_smtp_a_deferral_or_a_server_down_is_retried(
    smtp: SmtpCapture, smtp_sender: SmtpEmailSender
) -> None:
    smtp.deferred.add("busy@example.org")
    with pytest.raises(TransientFailure, match="451"):
        smtp_sender.send(outgoing(Channel.EMAIL, "busy@example.org"))
    down = SmtpEmailSender("127.0.0.1", free_port(), SENDER, timeout=1)
    with pytest.raises(TransientFailure):
        down.send(outgoing(Channel.EMAIL, "ada@example.org"))


def test_an_address_that_would_inject_headers_is_refused(smtp_sender: SmtpEmailSender) -> None:
    with pytest.raises(PermanentFailure, match="header"):
        smtp_sender.send(outgoing(Channel.EMAIL, "ada@example.org\r\nBcc: all@example.org"))


# -- Amazon SES and SNS through moto server --------------------------------------


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server.moto_server() as url:
        yield url


@pytest.fixture(scope="module")
def sesv2(moto: str) -> Any:
    client = moto_server.client(moto, "sesv2")
    client.create_email_identity(EmailIdentity=SENDER)
    return client


@pytest.fixture(scope="module")
def sns(moto: str) -> Any:
    return moto_server.client(moto, "sns")


def test_ses_sends_the_raw_mime_with_its_headers(moto: str, sesv2: Any) -> None:
    mail = outgoing(Channel.EMAIL, "ada@example.org")
    message_id = SesEmailSender(sesv2, SENDER, None).send(mail)
    raw = next(m for m in moto_server.sent(moto, "ses", "RawMessage") if m["id"] == message_id)
    message = message_from_string(raw["raw_data"], policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message["To"] == "ada@example.org"
    assert message["Message-ID"] == f"<{mail.delivery_id}@eventshop>"
    assert {name: message[name] for name in UNSUBSCRIBE} == UNSUBSCRIBE
    assert message.get_body(("html",)) is not None


def test_ses_an_unverified_sender_fails_for_good(sesv2: Any) -> None:
    sender = SesEmailSender(sesv2, "nobody@unverified.example", "shop-events")
    with pytest.raises(PermanentFailure, match="MessageRejected"):
        sender.send(outgoing(Channel.EMAIL, "ada@example.org"))


def test_aws_unreachable_is_retried() -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    client = moto_server.client(nowhere, "sesv2", Config(retries={"max_attempts": 1}))
    with pytest.raises(TransientFailure, match="EndpointConnectionError"):
        SesEmailSender(client, SENDER, None).send(outgoing(Channel.EMAIL, "ada@example.org"))


@pytest.mark.parametrize(
    ("code", "status", "failure"),
    [
        ("Throttling", 400, TransientFailure),
        ("TooManyRequestsException", 429, TransientFailure),
        ("InternalFailure", 500, TransientFailure),
        ("MailFromDomainNotVerifiedException", 400, PermanentFailure),
        ("AccountSuspendedException", 400, PermanentFailure),
    ],
)
def test_aws_refusals_are_mapped(code: str, status: int, failure: type[Exception]) -> None:
    answer: Any = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    with pytest.raises(failure), aws_errors("SES"):
        raise ClientError(answer, "SendEmail")


def test_sms_goes_out_through_sns_as_transactional(moto: str, sns: Any) -> None:
    published: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        published.append(params)

    # moto keeps no message attributes: read them off the request boto3 builds
    sns.meta.events.register("before-parameter-build.sns.Publish", record)
    try:
        message_id = SnsSmsSender(sns).send(
            outgoing(Channel.SMS, "+15555550123", text="Order 42 shipped.")
        )
    finally:
        sns.meta.events.unregister("before-parameter-build.sns.Publish", record)
    assert {"message_id": message_id, "phone_number": "+15555550123"}.items() <= next(
        m for m in sms_to(moto, "+15555550123") if m["message_id"] == message_id
    ).items()
    (params,) = published
    assert params["MessageAttributes"]["AWS.SNS.SMS.SMSType"]["StringValue"] == "Transactional"


@pytest.mark.parametrize(
    ("number", "text", "reason"),
    [
        ("+15555550199", "hi", "opted-out"),  # moto's opted-out numbers end in 99
        ("12345", "hi", "E.164"),
        ("+0155555501", "hi", "E.164"),
        ("+15555550123\n", "hi", "E.164"),
        ("+15555550124", "é" * 801, "too long"),  # 801 characters, 1,602 bytes
    ],
)
def test_sms_refused_for_good_sends_nothing(
    moto: str, sns: Any, number: str, text: str, reason: str
) -> None:
    with pytest.raises(PermanentFailure, match=reason):
        SnsSmsSender(sns).send(outgoing(Channel.SMS, number, text=text))
    assert sms_to(moto, number) == []


@pytest.fixture(scope="module")
def platform_applications(sns: Any) -> dict[str, str]:
    def application(name: str, platform: str) -> str:
        answer = sns.create_platform_application(
            Name=name, Platform=platform, Attributes={"PlatformCredential": "secret"}
        )
        return str(answer["PlatformApplicationArn"])

    return {"fcm": application("shop-fcm", "GCM"), "apns": application("shop-apns", "APNS")}


@pytest.fixture
def sns_push(
    sns: Any, platform_applications: dict[str, str], devices: MemoryDevices
) -> SnsPushSender:
    return SnsPushSender(sns, platform_applications, devices)


def endpoint_messages(moto: str, arn: str) -> list[dict[str, Any]]:
    endpoints = moto_server.sent(moto, "sns", "PlatformEndpoint")
    messages = next((e["messages"] for e in endpoints if e["arn"] == arn), None)
    assert messages is not None, f"no endpoint {arn}"
    return [json.loads(m) for m in messages.values()]


@pytest.mark.parametrize("platform", ["fcm", "apns"])
def test_mobile_push_makes_the_endpoint_once_and_publishes(
    moto: str,
    sns_push: SnsPushSender,
    devices: MemoryDevices,
    platform_applications: dict[str, str],
    platform: str,
) -> None:
    device = new_device(devices, platform, f"token-{uuid4()}")
    push = outgoing(Channel.PUSH, str(device.id))
    sns_push.send(push)
    arn = devices.rows[device.id].endpoint_arn
    assert arn is not None
    assert arn.startswith(platform_applications[platform].replace(":app/", ":endpoint/"))
    sns_push.send(push)
    assert devices.rows[device.id].endpoint_arn == arn
    first, _ = endpoint_messages(moto, arn)
    assert first["default"] == "It is on its way."
    if platform == "fcm":
        assert json.loads(first["GCM"])["notification"] == {
            "title": "Your order has shipped",
            "body": "It is on its way.",
        }
    else:
        alert = json.loads(first["APNS"])["aps"]["alert"]
        assert alert == {"title": "Your order has shipped", "body": "It is on its way."}


def test_a_disabled_endpoint_is_gone_and_the_router_removes_the_device(
    sns: Any,
    sns_push: SnsPushSender,
    devices: MemoryDevices,
    platform_applications: dict[str, str],
) -> None:
    device = new_device(devices, "fcm", f"token-{uuid4()}")
    push = outgoing(Channel.PUSH, str(device.id))
    sns_push.send(push)
    arn = devices.rows[device.id].endpoint_arn
    sns.set_endpoint_attributes(EndpointArn=arn, Attributes={"Enabled": "false"})
    with pytest.raises(DeviceGone, match="EndpointDisabled"):
        PushRouter({"fcm": sns_push}, devices).send(push)
    assert device.id not in devices.rows
    application = platform_applications["fcm"]
    endpoints = sns.list_endpoints_by_platform_application(PlatformApplicationArn=application)
    assert arn not in [e["EndpointArn"] for e in endpoints["Endpoints"]]  # a new one next time


def test_forgetting_an_erased_user_deletes_their_devices_endpoints_only(
    sns: Any,
    sns_push: SnsPushSender,
    devices: MemoryDevices,
    platform_applications: dict[str, str],
) -> None:
    erased, other = uuid4(), uuid4()
    theirs = [
        devices.register(Device(uuid4(), erased, platform, f"token-{uuid4()}"))
        for platform in ("fcm", "apns")
    ]
    never_pushed = devices.register(Device(uuid4(), erased, "fcm", f"token-{uuid4()}"))
    kept = devices.register(Device(uuid4(), other, "fcm", f"token-{uuid4()}"))
    for device in (*theirs, kept):
        sns_push.send(outgoing(Channel.PUSH, str(device.id)))

    def endpoints() -> set[str]:
        return {
            e["EndpointArn"]
            for application in platform_applications.values()
            for e in sns.list_endpoints_by_platform_application(PlatformApplicationArn=application)[
                "Endpoints"
            ]
        }

    arns = {devices.rows[d.id].endpoint_arn for d in theirs}
    kept_arn = devices.rows[kept.id].endpoint_arn
    assert None not in arns and arns | {kept_arn} <= endpoints()
    assert devices.rows[never_pushed.id].endpoint_arn is None

    sns_push.forget(erased)
    sns_push.forget(erased)  # again (a redelivered erasure): nothing left, no error

    assert not arns & endpoints()
    assert kept_arn in endpoints()


def test_push_to_an_unknown_device_is_gone(sns_push: SnsPushSender, devices: MemoryDevices) -> None:
    router = PushRouter({"fcm": sns_push}, devices)
    for address in (str(uuid4()), "not-a-device-id"):
        with pytest.raises(DeviceGone, match="unknown device"):
            router.send(outgoing(Channel.PUSH, address))
    watch = new_device(devices, "watchos", "token")
    with pytest.raises(PermanentFailure, match="no push sender"):
        router.send(outgoing(Channel.PUSH, str(watch.id)))
    assert watch.id in devices.rows


# -- Web Push through a local push service ---------------------------------------

VAPID_SUBJECT = "mailto:ops@example.com"


@pytest.fixture(scope="module")
def push_service() -> Iterator[WebPushService]:
    with webpush_service() as service:
        yield service


@pytest.fixture(scope="module")
def vapid_keys() -> tuple[str, str]:
    return new_vapid_keys()


@pytest.fixture
def subscribe(
    push_service: WebPushService, vapid_keys: tuple[str, str], devices: MemoryDevices
) -> Callable[[], tuple[Device, dict[str, Any]]]:
    def make() -> tuple[Device, dict[str, Any]]:
        subscription = push_service.subscribe(vapid_keys[1])
        return new_device(devices, "webpush", json.dumps(subscription)), subscription

    return make


def _pem(raw_private: str) -> str:
    from py_vapid import Vapid  # type: ignore[import-untyped]

    key: ec.EllipticCurvePrivateKey = Vapid.from_string(raw_private).private_key
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


@pytest.mark.parametrize("key_form", ["raw", "pem", "pem file"])
def test_web_push_arrives_signed_and_decrypts_to_the_payload(
    push_service: WebPushService,
    vapid_keys: tuple[str, str],
    devices: MemoryDevices,
    subscribe: Callable[[], tuple[Device, dict[str, Any]]],
    tmp_path: Path,
    key_form: str,
) -> None:
    key = vapid_keys[0] if key_form == "raw" else _pem(vapid_keys[0])
    if key_form == "pem file":
        (tmp_path / "vapid.pem").write_text(key)
        key = str(tmp_path / "vapid.pem")
    device, _ = subscribe()
    push = outgoing(Channel.PUSH, str(device.id))
    message_id = WebPushSender(devices, key, VAPID_SUBJECT).send(push)
    assert message_id.startswith(f"{push_service.url}/message/")
    arrived = push_service.received[-1]
    assert json.loads(arrived.payload) == {
        "title": "Your order has shipped",
        "body": "It is on its way.",
        "link": "https://shop.example.com/orders/42",
        "notification_id": str(push.notification_id),
    }
    assert (arrived.claims["sub"], arrived.claims["aud"]) == (VAPID_SUBJECT, push_service.url)
    assert arrived.headers["ttl"] == "86400"


def test_web_push_to_a_gone_subscription_removes_the_device(
    push_service: WebPushService,
    vapid_keys: tuple[str, str],
    devices: MemoryDevices,
    subscribe: Callable[[], tuple[Device, dict[str, Any]]],
) -> None:
    device, subscription = subscribe()
    push_service.answer_with(subscription, 410)
    router = PushRouter({"webpush": WebPushSender(devices, vapid_keys[0], VAPID_SUBJECT)}, devices)
    with pytest.raises(DeviceGone, match="410"):
        router.send(outgoing(Channel.PUSH, str(device.id)))
    assert device.id not in devices.rows


@pytest.mark.parametrize(
    ("status", "failure"),
    [(429, TransientFailure), (503, TransientFailure), (413, PermanentFailure)],
)
def test_web_push_refusals_are_mapped(
    push_service: WebPushService,
    vapid_keys: tuple[str, str],
    devices: MemoryDevices,
    subscribe: Callable[[], tuple[Device, dict[str, Any]]],
    status: int,
    failure: type[Exception],
) -> None:
    device, subscription = subscribe()
    push_service.answer_with(subscription, status)
    with pytest.raises(failure, match=str(status)) as raised:
        WebPushSender(devices, vapid_keys[0], VAPID_SUBJECT).send(
            outgoing(Channel.PUSH, str(device.id))
        )
    assert not isinstance(raised.value, DeviceGone)


def test_web_push_to_a_service_that_is_down_is_retried(
    push_service: WebPushService, vapid_keys: tuple[str, str], devices: MemoryDevices
) -> None:
    moved = push_service.subscribe(vapid_keys[1])
    moved["endpoint"] = f"http://127.0.0.1:{free_port()}/push/x"
    device = new_device(devices, "webpush", json.dumps(moved))
    with pytest.raises(TransientFailure, match="ConnectionError"):
        WebPushSender(devices, vapid_keys[0], VAPID_SUBJECT, timeout=2).send(
            outgoing(Channel.PUSH, str(device.id))
        )


def test_web_push_signed_with_another_key_is_refused(
    devices: MemoryDevices, subscribe: Callable[[], tuple[Device, dict[str, Any]]]
) -> None:
    device, _ = subscribe()
    other = WebPushSender(devices, new_vapid_keys()[0], VAPID_SUBJECT)
    with pytest.raises(PermanentFailure, match="403"):
        other.send(outgoing(Channel.PUSH, str(device.id)))


def subscription(endpoint: str, p256dh: str) -> str:
    return json.dumps({"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": "AAAA"}})


A_PUBLIC_KEY = b64url(
    ec.generate_private_key(ec.SECP256R1())
    .public_key()
    .public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
)
NOWHERE = "http://127.0.0.1:9/push/x"


@pytest.mark.parametrize(
    "token",
    [
        "not json",
        "[]",
        '{"keys": {}}',
        json.dumps({"endpoint": NOWHERE}),
        subscription(NOWHERE, "AAAA"),  # not a key
        subscription(NOWHERE, b64url(b"\x04" + bytes(64))),  # not on the curve
        subscription("file:///etc/passwd", A_PUBLIC_KEY),
    ],
)
def test_an_unusable_subscription_is_gone(
    devices: MemoryDevices, vapid_keys: tuple[str, str], token: str
) -> None:
    device = new_device(devices, "webpush", token)
    with pytest.raises(DeviceGone):
        WebPushSender(devices, vapid_keys[0], VAPID_SUBJECT).send(
            outgoing(Channel.PUSH, str(device.id))
        )


def test_web_push_needs_a_contact_push_services_can_reach(
    devices: MemoryDevices, vapid_keys: tuple[str, str]
) -> None:
    with pytest.raises(ValueError, match="mailto"):
        WebPushSender(devices, vapid_keys[0], "ops@example.com")


# -- the local mailbox -----------------------------------------------------------


@pytest.fixture(scope="module")
def mailbox_url(make_database: Callable[[], str]) -> str:
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        # the table as it was before it kept every channel: the DDL must upgrade it
        conn.execute(mailbox_table.DDL.split("ALTER TABLE")[0])
        conn.execute(mailbox_table.DDL)
    return url


@pytest.fixture(scope="module")
def mailbox(mailbox_url: str) -> Iterator[PostgresMailbox]:
    with ConnectionPool(mailbox_url, min_size=1, max_size=2, kwargs={"autocommit": True}) as pool:
        yield PostgresMailbox(pool)


def test_the_mailbox_keeps_every_channel_once_per_delivery(
    mailbox: PostgresMailbox, mailbox_url: str
) -> None:
    user = str(uuid4())
    sent = [
        outgoing(Channel.EMAIL, "ada@example.org"),
        outgoing(Channel.SMS, "+15555550123", html=""),
        outgoing(Channel.PUSH, str(uuid4()), html=""),
        outgoing(Channel.IN_APP, user, html=""),
    ]
    for delivery in sent:
        assert mailbox.send(delivery) == str(delivery.delivery_id)
    assert mailbox.send(sent[0]) == str(sent[0].delivery_id)  # a copy changes nothing
    assert len(mailbox.messages("ada@example.org")) == 1
    for delivery in sent:
        (row,) = mailbox.messages(channel=delivery.channel.value, recipient=delivery.address)
        assert row["message_id"] == str(delivery.delivery_id)
        assert (row["subject"], row["body"]) == ("Your order has shipped", "It is on its way.")
    with psycopg.connect(mailbox_url) as conn:
        stored = conn.execute(
            "SELECT channel, html FROM public.mailbox WHERE message_id = ANY(%s)",
            ([str(d.delivery_id) for d in sent[:2]],),
        ).fetchall()
    assert sorted(stored) == [("email", "<p>It is <b>on its way</b>.</p>"), ("sms", None)]
    assert set(mailbox.messages(limit=10)[0]) == {  # what GET /admin/mailbox answers with
        "message_id",
        "recipient",
        "subject",
        "body",
        "sent_at",
    }
