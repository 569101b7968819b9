"""SES bounce and complaint feedback over HTTP, as SNS delivers it: JSON sent as
``text/plain`` to ``POST /webhooks/ses-feedback``, through the whole app
(``create_app``: the request edge, the problem answers) on a fresh database. The
envelopes are AWS's published examples signed with a test certificate (moto's own
feedback cannot be verified offline); the suppression list is read back from
Postgres; the SNS signature check trusts the test certificate."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from infra.amazon.sns_signature import SnsSignatures
from infra.postgres.suppressions import PostgresSuppressions
from tests.support.api import refused
from tests.support.in_process import in_process_app, replace_notification_services
from tests.support.users_client import unique_email
from tests.unit.test_sns_signature import (
    TOPIC,
    TestSigner,
    body,
    bounce,
    complaint,
    notification,
    subscription_confirmation,
)

pytestmark = pytest.mark.e2e

PATH = "/webhooks/ses-feedback"


@dataclass
class Shop:
    client: TestClient
    suppressions: PostgresSuppressions
    signer: TestSigner
    confirmed: list[str]


@pytest.fixture(scope="module")
def shop(
    make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shop]:
    signer, confirmed = TestSigner(), list[str]()
    with in_process_app(make_database(), tmp_path_factory.mktemp("shop-data")) as (app, container):
        replace_notification_services(
            app, sns=SnsSignatures({TOPIC}, fetch=signer.fetch, get=confirmed.append)
        )
        with TestClient(app) as client:
            yield Shop(client, PostgresSuppressions(container.pool), signer, confirmed)


def deliver(shop: Shop, envelope: dict[str, str] | bytes) -> Any:
    """POST as SNS does: text/plain, with its headers."""
    content = envelope if isinstance(envelope, bytes) else body(envelope)
    message_type = "" if isinstance(envelope, bytes) else envelope.get("Type", "")
    return shop.client.post(
        PATH,
        content=content,
        headers={
            "Content-Type": "text/plain; charset=UTF-8",
            "x-amz-sns-message-type": message_type,
            "x-amz-sns-message-id": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "x-amz-sns-topic-arn": TOPIC,
            "User-Agent": "Amazon Simple Notification Service Agent",
        },
    )


def test_a_signed_permanent_bounce_suppresses_the_address(shop: Shop) -> None:
    jane, mary = unique_email("jane"), unique_email("mary")

    answer = deliver(shop, shop.signer.sign(notification(bounce(jane, mary))))

    assert answer.status_code == 204, answer.text
    assert shop.suppressions.is_suppressed(jane, marketing=False)
    assert shop.suppressions.is_suppressed(mary, marketing=False)


def test_a_transient_bounce_changes_nothing(shop: Shop) -> None:
    jane = unique_email("jane")

    answer = deliver(shop, shop.signer.sign(notification(bounce(jane, bounce_type="Transient"))))

    assert answer.status_code == 204, answer.text
    assert not shop.suppressions.is_suppressed(jane, marketing=True)


def test_a_complaint_suppresses_marketing_only(shop: Shop) -> None:
    richard = unique_email("richard")

    answer = deliver(shop, shop.signer.sign(notification(complaint(richard)), version="2"))

    assert answer.status_code == 204, answer.text
    assert shop.suppressions.is_suppressed(richard, marketing=True)
    assert not shop.suppressions.is_suppressed(richard, marketing=False)


def test_a_bad_signature_is_refused_and_suppresses_nothing(shop: Shop) -> None:
    jane, ceo = unique_email("jane"), unique_email("ceo")
    signed = shop.signer.sign(notification(bounce(jane)))
    forged = signed | {"Message": notification(bounce(ceo))["Message"]}

    refused(deliver(shop, forged), 403, "untrusted-sns-message")

    assert not shop.suppressions.is_suppressed(jane, marketing=True)
    assert not shop.suppressions.is_suppressed(ceo, marketing=True)


def test_an_unknown_topic_or_a_foreign_certificate_is_refused(shop: Shop) -> None:
    jane = unique_email("jane")
    other_topic = "arn:aws:sns:eu-west-1:999999999999:someone-elses"
    foreign_cert = {"SigningCertURL": "https://attacker.example/SimpleNotificationService-x.pem"}

    refused(
        deliver(shop, shop.signer.sign(notification(bounce(jane), topic=other_topic))),
        403,
        "untrusted-sns-message",
    )
    refused(
        deliver(shop, shop.signer.sign(notification(bounce(jane)) | foreign_cert)),
        403,
        "untrusted-sns-message",
    )

    assert not shop.suppressions.is_suppressed(jane, marketing=True)


@pytest.mark.parametrize(
    "raw", [b"not json at all", b'{"Type": "Notification"}'], ids=["not JSON", "incomplete"]
)
def test_what_is_not_an_sns_message_is_malformed(shop: Shop, raw: bytes) -> None:
    refused(deliver(shop, raw), 400, "malformed-sns-message")


def test_a_subscription_confirmation_is_confirmed(shop: Shop) -> None:
    confirmation = subscription_confirmation()

    answer = deliver(shop, shop.signer.sign(confirmation))

    assert answer.status_code == 204, answer.text
    assert shop.confirmed[-1] == confirmation["SubscribeURL"]


def test_a_token_that_looks_like_a_card_number_still_reaches_the_handler(shop: Shop) -> None:
    """A provider's signed callback is not screened for card data (it is under
    /webhooks/): an SNS token of random hex holds a Luhn-valid 16-digit run in about
    one confirmation in 250."""
    confirmation = subscription_confirmation()
    confirmation["Token"] = "2336412f4111111111111111ab" + confirmation["Token"][26:]

    answer = deliver(shop, shop.signer.sign(confirmation))

    assert answer.status_code == 204, answer.text
