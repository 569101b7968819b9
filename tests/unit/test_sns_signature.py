"""SNS signatures are checked as AWS documents them: envelopes shaped as AWS's published
examples (an SES permanent bounce and a complaint, a subscription confirmation),
signed here with a self-signed test certificate served at an SNS-looking URL by an
injected fetcher. A valid one passes; anything tampered with, signed elsewhere, or
for a topic not ours is refused, and then ``handle`` suppresses nothing.

The helpers (``TestSigner``, ``bounce``, ``complaint``) are also what the HTTP test
(tests/e2e_own_server/test_ses_feedback.py) signs with."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from commands.notifications.feedback import (
    MalformedEnvelope,
    SnsUnavailable,
    UntrustedMessage,
    handle,
    parse_envelope,
)
from infra.amazon.sns_signature import SnsSignatures, is_sns_url, string_to_sign

TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-feedback"
CERT_URL = (
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-"
    "f3ecfb7224c7233fe7bb5f59f96de52f.pem"
)
SUBSCRIBE_URL = (
    "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
    f"&TopicArn={TOPIC}&Token=2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a"
)


def _certificate(key: rsa.RSAPrivateKey, name: str) -> bytes:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class TestSigner:
    """Signs envelopes as SNS does, with a key whose certificate ``fetch`` serves at
    ``CERT_URL``; counts the fetches."""

    __test__ = False  # a helper, not a test class

    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    fetched: list[str] = field(default_factory=list)

    @property
    def pem(self) -> bytes:
        return _certificate(self.key, "sns.amazonaws.com")

    def fetch(self, url: str) -> bytes:
        self.fetched.append(url)
        return self.pem

    def sign(self, envelope: dict[str, str], version: str = "1") -> dict[str, str]:
        """``envelope`` with SignatureVersion, SigningCertURL and Signature set."""
        signed = {"SigningCertURL": CERT_URL, **envelope, "SignatureVersion": version}
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(canonical(signed), padding.PKCS1v15(), digest)
        return signed | {"Signature": base64.b64encode(signature).decode()}


def canonical(envelope: dict[str, str]) -> bytes:
    """The string SNS signs, written out here from AWS's documentation rather than
    taken from the code under test."""
    if envelope["Type"] == "Notification":
        keys = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{k}\n{envelope[k]}\n" for k in keys if k in envelope).encode()


def notification(
    message: dict[str, Any], topic: str = TOPIC, subject: str | None = None
) -> dict[str, str]:
    """An unsigned SNS Notification carrying ``message`` as a JSON string."""
    envelope = {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": topic,
        "Message": json.dumps(message),
        "Timestamp": "2016-01-27T14:59:38.613Z",
        "UnsubscribeURL": (
            "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn="
            f"{topic}:c9135db0-26c4-47ec-8998-413945fb5a96"
        ),
    }
    if subject is not None:
        envelope["Subject"] = subject
    return envelope


def _mail(destination: list[str]) -> dict[str, Any]:
    return {
        "timestamp": "2016-01-27T14:59:38.237Z",
        "source": "shop@example.com",
        "sourceArn": "arn:aws:ses:eu-west-1:123456789012:identity/example.com",
        "sourceIp": "127.0.3.0",
        "sendingAccountId": "123456789012",
        "callerIdentity": "IAM_user_or_role_name",
        "messageId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
        "destination": destination,
        "headersTruncated": False,
        "commonHeaders": {
            "from": ["Shop <shop@example.com>"],
            "to": destination,
            "subject": "Your order has shipped",
        },
    }


def bounce(*addresses: str, bounce_type: str = "Permanent") -> dict[str, Any]:
    """AWS's example bounce notification for ``addresses``."""
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "reportingMTA": "dns; email.example.com",
            "bouncedRecipients": [
                {
                    "emailAddress": address,
                    "status": "5.1.1",
                    "action": "failed",
                    "diagnosticCode": f"smtp; 550 5.1.1 <{address}>... User",
                }
                for address in addresses
            ],
            "bounceSubType": "General",
            "timestamp": "2016-01-27T14:59:38.237Z",
            "feedbackId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000",
            "remoteMtaIp": "127.0.2.0",
        },
        "mail": _mail(list(addresses)),
    }


def complaint(*addresses: str, feedback_type: str = "abuse") -> dict[str, Any]:
    """AWS's example complaint notification for ``addresses``."""
    return {
        "notificationType": "Complaint",
        "complaint": {
            "userAgent": "AnyCompany Feedback Loop (V0.01)",
            "complainedRecipients": [{"emailAddress": address} for address in addresses],
            "complaintFeedbackType": feedback_type,
            "arrivalDate": "2016-01-27T14:59:38.237Z",
            "timestamp": "2016-01-27T14:59:38.237Z",
            "feedbackId": "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000",
        },
        "mail": _mail(list(addresses)),
    }


def subscription_confirmation(subscribe_url: str = SUBSCRIBE_URL) -> dict[str, str]:
    return {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a",
        "TopicArn": TOPIC,
        "Message": (
            f"You have chosen to subscribe to the topic {TOPIC}.\n"
            "To confirm the subscription, visit the SubscribeURL included in this message."
        ),
        "SubscribeURL": subscribe_url,
        "Timestamp": "2012-04-26T20:45:04.751Z",
    }


def body(envelope: dict[str, str]) -> bytes:
    return json.dumps(envelope, indent=2).encode()


class FakeSuppressions:
    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, bool]] = {}

    def is_suppressed(self, address: str, marketing: bool) -> bool:
        row = self.rows.get(address.lower())
        return row is not None and (marketing or not row[1])

    def suppressed_among(self, addresses: Sequence[str]) -> dict[str, bool]:
        found = {a.lower(): self.rows[a.lower()][1] for a in addresses if a.lower() in self.rows}
        return found

    def suppress(self, address: str, reason: str, marketing_only: bool) -> None:
        self.rows[address.lower()] = (reason, marketing_only)


@pytest.fixture(scope="module")
def signer() -> TestSigner:
    return TestSigner()


@dataclass
class Got:
    urls: list[str] = field(default_factory=list)

    def __call__(self, url: str) -> None:
        self.urls.append(url)


def verifier(signer: TestSigner, got: Got | None = None) -> SnsSignatures:
    return SnsSignatures({TOPIC}, fetch=signer.fetch, get=got or Got())


# Valid messages pass.


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("subject", [None, "Amazon SES Email Event Notification"])
def test_a_signed_notification_passes(
    signer: TestSigner, version: str, subject: str | None
) -> None:
    envelope = signer.sign(notification(bounce("jane@example.com"), subject=subject), version)

    verifier(signer).verify(parse_envelope(body(envelope)))


def test_a_signed_subscription_confirmation_passes_and_is_confirmed(signer: TestSigner) -> None:
    got = Got()
    sns = verifier(signer, got)

    handled = handle(body(signer.sign(subscription_confirmation(), "2")), sns, FakeSuppressions())

    assert handled.confirmed and got.urls == [SUBSCRIBE_URL]


def test_the_certificate_is_fetched_once_per_url(signer: TestSigner) -> None:
    fetches = TestSigner(key=signer.key)
    sns = verifier(fetches)
    other_url = CERT_URL.replace("f3ecfb", "aaaaaa")
    for cert_url in (CERT_URL, CERT_URL, other_url, other_url, CERT_URL):
        envelope = signer.sign(notification(bounce("a@example.com")) | {"SigningCertURL": cert_url})
        sns.verify(parse_envelope(body(envelope)))

    assert fetches.fetched == [CERT_URL, other_url]


# What decides the suppressions.


def test_a_permanent_bounce_suppresses_every_recipient_for_all_mail(signer: TestSigner) -> None:
    suppressions = FakeSuppressions()
    envelope = signer.sign(notification(bounce("Jane@Example.com", "mary@example.com")))

    handle(body(envelope), verifier(signer), suppressions)

    assert suppressions.is_suppressed("jane@example.com", marketing=False)
    assert suppressions.is_suppressed("mary@example.com", marketing=False)


@pytest.mark.parametrize("bounce_type", ["Transient", "Undetermined"])
def test_other_bounces_suppress_nothing(signer: TestSigner, bounce_type: str) -> None:
    suppressions = FakeSuppressions()
    envelope = signer.sign(notification(bounce("jane@example.com", bounce_type=bounce_type)))

    handle(body(envelope), verifier(signer), suppressions)

    assert suppressions.rows == {}


def test_a_complaint_suppresses_marketing_only(signer: TestSigner) -> None:
    suppressions = FakeSuppressions()

    handle(
        body(signer.sign(notification(complaint("richard@example.com")))),
        verifier(signer),
        suppressions,
    )

    assert suppressions.is_suppressed("richard@example.com", marketing=True)
    assert not suppressions.is_suppressed("richard@example.com", marketing=False)


def test_a_delivery_notification_is_acknowledged_and_changes_nothing(signer: TestSigner) -> None:
    suppressions = FakeSuppressions()
    delivery = {"notificationType": "Delivery", "mail": _mail(["jane@example.com"])}

    handle(body(signer.sign(notification(delivery))), verifier(signer), suppressions)

    assert suppressions.rows == {}


# Refused, and nothing changed.


def _tampered(envelope: dict[str, str], **changes: str) -> dict[str, str]:
    return envelope | changes


REFUSED: dict[str, Any] = {
    "tampered Message": lambda e: _tampered(e, Message=json.dumps(bounce("ceo@example.com"))),
    "tampered Timestamp": lambda e: _tampered(e, Timestamp="2016-01-27T15:00:00.000Z"),
    "added Subject": lambda e: _tampered(e, Subject="hello"),
    "wrong SignatureVersion": lambda e: _tampered(e, SignatureVersion="2"),
    "unknown SignatureVersion": lambda e: _tampered(e, SignatureVersion="3"),
    "bad base64": lambda e: _tampered(e, Signature="not*base64!"),
    "truncated signature": lambda e: _tampered(e, Signature=e["Signature"][:-8]),
    "cert not on an SNS host": lambda e: _tampered(
        e, SigningCertURL="https://attacker.example/SimpleNotificationService-x.pem"
    ),
    "cert host only starting like SNS": lambda e: _tampered(
        e, SigningCertURL="https://sns.eu-west-1.amazonaws.com.attacker.example/cert.pem"
    ),
    "cert over http": lambda e: _tampered(e, SigningCertURL=CERT_URL.replace("https:", "http:")),
    "cert on another port": lambda e: _tampered(
        e, SigningCertURL=CERT_URL.replace(".com/", ".com:8443/")
    ),
    "cert URL with credentials": lambda e: _tampered(
        e, SigningCertURL=CERT_URL.replace("https://", "https://user@")
    ),
}


@pytest.mark.parametrize("change", REFUSED.values(), ids=REFUSED.keys())
def test_a_changed_or_misplaced_signature_is_refused(signer: TestSigner, change: Any) -> None:
    suppressions = FakeSuppressions()
    envelope = change(signer.sign(notification(bounce("jane@example.com"))))

    with pytest.raises(UntrustedMessage):
        handle(body(envelope), verifier(signer), suppressions)
    assert suppressions.rows == {}


def test_an_unknown_topic_is_refused_even_signed(signer: TestSigner) -> None:
    other = "arn:aws:sns:eu-west-1:999999999999:someone-elses"
    envelope = signer.sign(notification(bounce("jane@example.com"), topic=other))
    suppressions = FakeSuppressions()

    with pytest.raises(UntrustedMessage):
        handle(body(envelope), verifier(signer), suppressions)
    assert suppressions.rows == {}


def test_a_signature_by_another_key_is_refused(signer: TestSigner) -> None:
    forger = TestSigner()  # its certificate is not the one at CERT_URL
    envelope = forger.sign(notification(bounce("jane@example.com")))

    with pytest.raises(UntrustedMessage):
        verifier(signer).verify(parse_envelope(body(envelope)))


def test_a_url_that_holds_no_certificate_is_refused(signer: TestSigner) -> None:
    sns = SnsSignatures({TOPIC}, fetch=lambda url: b"<html>not a certificate</html>")

    with pytest.raises(UntrustedMessage):
        sns.verify(parse_envelope(body(signer.sign(notification(bounce("a@example.com"))))))


def test_an_unreachable_certificate_is_retried_later_not_cached(signer: TestSigner) -> None:
    calls: list[str] = []

    def flaky(url: str) -> bytes:
        calls.append(url)
        if len(calls) == 1:
            raise httpx.ConnectTimeout("timed out")
        return signer.pem

    sns = SnsSignatures({TOPIC}, fetch=flaky)
    envelope = parse_envelope(body(signer.sign(notification(bounce("a@example.com")))))
    with pytest.raises(SnsUnavailable):
        sns.verify(envelope)
    sns.verify(envelope)

    assert calls == [CERT_URL, CERT_URL]


@pytest.mark.parametrize(
    "subscribe_url",
    [
        "https://attacker.example/?Action=ConfirmSubscription",
        SUBSCRIBE_URL.replace("https:", "http:"),
    ],
)
def test_a_subscription_is_confirmed_only_on_an_sns_host(
    signer: TestSigner, subscribe_url: str
) -> None:
    got = Got()
    envelope = signer.sign(subscription_confirmation(subscribe_url))

    with pytest.raises(UntrustedMessage):
        handle(body(envelope), verifier(signer, got), FakeSuppressions())
    assert got.urls == []


def test_a_subscription_to_an_unknown_topic_is_not_confirmed(signer: TestSigner) -> None:
    got = Got()
    other = "arn:aws:sns:eu-west-1:999999999999:someone-elses"
    envelope = signer.sign(subscription_confirmation() | {"TopicArn": other})

    with pytest.raises(UntrustedMessage):
        handle(body(envelope), verifier(signer, got), FakeSuppressions())
    assert got.urls == []


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1, 2]",
        b"\xff\xfe",
        json.dumps({"Type": "Notification"}).encode(),
        json.dumps({**notification(bounce("a@example.com")), "Type": "Gossip"}).encode(),
    ],
    ids=["not JSON", "not an object", "not UTF-8", "missing fields", "unknown Type"],
)
def test_what_is_not_an_envelope_is_malformed(signer: TestSigner, raw: bytes) -> None:
    with pytest.raises(MalformedEnvelope):
        handle(raw, verifier(signer), FakeSuppressions())


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        json.dumps({"notificationType": "Bounce"}),
        json.dumps({**bounce("a@example.com"), "bounce": {"bounceType": "Permanent"}}),
        json.dumps(
            {
                **bounce("a@example.com"),
                "bounce": {
                    "bounceType": "Permanent",
                    "bouncedRecipients": [{"emailAddress": "a@example.com"}, {"status": "5.1.1"}],
                },
            }
        ),
    ],
    ids=["not JSON", "no bounce", "no recipients", "a recipient without address"],
)
def test_a_signed_but_unreadable_ses_notification_suppresses_nothing(
    signer: TestSigner, message: str
) -> None:
    suppressions = FakeSuppressions()
    envelope = signer.sign(notification({}) | {"Message": message})

    with pytest.raises(MalformedEnvelope):
        handle(body(envelope), verifier(signer), suppressions)
    assert suppressions.rows == {}


@pytest.mark.parametrize(
    ("url", "sns"),
    [
        ("https://sns.us-east-1.amazonaws.com/x.pem", True),
        ("https://sns.cn-north-1.amazonaws.com.cn/x.pem", True),
        ("https://sns.amazonaws.com/x.pem", False),
        ("https://evil.com/sns.us-east-1.amazonaws.com", False),
        ("https://sns.us-east-1.amazonaws.com@evil.com/x.pem", False),
        ("https://sns.us-east-1.amazonaws.com:99999/x.pem", False),
    ],
)
def test_what_counts_as_an_sns_url(url: str, sns: bool) -> None:
    assert is_sns_url(url) is sns


def test_the_string_to_sign_is_the_one_aws_documents() -> None:
    """AWS's own example (sns-verify-signature-of-message): the fields in byte order,
    each ``name\\nvalue\\n``; the unsigned ones (UnsubscribeURL, the signature's own)
    left out."""
    topic = "arn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P"
    envelope = {
        "Type": "Notification",
        "MessageId": "4d4dc071-ddbf-465d-bba8-08f81c89da64",
        "TopicArn": topic,
        "Subject": "My subject",
        "Message": "My Test Message",
        "Timestamp": "2019-01-31T04:37:04.321Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": "https://sns.us-east-2.amazonaws.com/?Action=Unsubscribe",
    }

    assert (
        string_to_sign(parse_envelope(body(envelope)))
        == (
            "Message\nMy Test Message\nMessageId\n4d4dc071-ddbf-465d-bba8-08f81c89da64\n"
            "Subject\nMy subject\nTimestamp\n2019-01-31T04:37:04.321Z\n"
            f"TopicArn\n{topic}\nType\nNotification\n"
        ).encode()
    )
