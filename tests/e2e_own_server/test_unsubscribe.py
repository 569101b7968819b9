"""RFC 8058 one-click unsubscribe over HTTP: the link a marketing mail's
``List-Unsubscribe`` carries. The app is the whole one (``create_app``) in this
process, with the unsubscribe router and its services added here as the
composition root will add them, the suppression list the real Postgres one.

The mail provider's POST suppresses the address for marketing only; a person's GET
shows a confirmation page and changes nothing; a forged or damaged token is
refused (400 problem+json) and changes nothing."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import psycopg
import pytest
from fastapi.testclient import TestClient

from commands.notifications.unsubscribe import UnsubscribeSigner, unsubscribe_headers
from infra.postgres.suppressions import PostgresSuppressions
from tests.support.api import refused
from tests.support.in_process import in_process_app
from tests.support.users_client import unique_email

pytestmark = pytest.mark.e2e

PUBLIC_URL = "https://shop.example.com"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@dataclass
class Shop:
    client: TestClient
    suppressions: PostgresSuppressions
    signer: UnsubscribeSigner
    database_url: str

    def link(self, address: str) -> str:
        """The path and query of the mail's List-Unsubscribe link."""
        header = unsubscribe_headers(PUBLIC_URL, self.signer)(address)["List-Unsubscribe"]
        match = re.fullmatch(r"<(.+)>", header)
        assert match is not None, header
        url = urlsplit(match.group(1))
        assert f"{url.scheme}://{url.netloc}" == PUBLIC_URL
        return f"{url.path}?{url.query}"

    def stops(self, address: str, *, marketing: bool) -> bool:
        """Whether the suppression list stops a mail (marketing or not) to ``address``."""
        found = self.suppressions.suppressed_among([address.lower()])
        return address.lower() in found and (marketing or not found[address.lower()])

    def suppressed(self) -> list[tuple[str, bool, str]]:
        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute(
                "SELECT address, marketing_only, reason FROM notify.suppressions ORDER BY address"
            ).fetchall()
        return [(str(a), bool(m), str(r)) for a, m, r in rows]


@pytest.fixture(scope="module")
def shop(
    make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shop]:
    database_url = make_database()
    with in_process_app(database_url, tmp_path_factory.mktemp("shop-data")) as (app, container):
        signer = UnsubscribeSigner(container.settings.resolved_secret())
        suppressions = container.notifications.suppressions
        with TestClient(app) as client:  # its startup creates notify.suppressions
            yield Shop(client, suppressions, signer, database_url)


def test_the_one_click_post_stops_marketing_mail_only(shop: Shop) -> None:
    address = unique_email("oneclick")
    answer = shop.client.post(shop.link(address), data=ONE_CLICK)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert shop.stops(address, marketing=True)
    assert not shop.stops(address, marketing=False)  # order mail goes
    assert (address, True, "unsubscribed") in shop.suppressed()

    again = shop.client.post(shop.link(address), data=ONE_CLICK)  # a provider's retry
    assert again.status_code == 200, again.text
    assert [row for row in shop.suppressed() if row[0] == address] == [
        (address, True, "unsubscribed")
    ]


def test_a_multipart_one_click_post_is_accepted(shop: Shop) -> None:
    """RFC 8058 lets the provider send the body as multipart/form-data."""
    address = unique_email("multipart")
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        b"One-Click\r\n--XyZ--\r\n"
    )
    answer = shop.client.post(
        shop.link(address),
        content=body,
        headers={"Content-Type": "multipart/form-data; boundary=XyZ"},
    )
    assert answer.status_code == 200, answer.text
    assert shop.stops(address, marketing=True)


def test_the_address_is_matched_whatever_its_case(shop: Shop) -> None:
    address = unique_email("MixedCase").replace("mixedcase", "MixedCase")
    answer = shop.client.post(shop.link(address), data=ONE_CLICK)
    assert answer.status_code == 200, answer.text
    assert shop.stops(address.lower(), marketing=True)


def test_the_page_asks_first_and_a_get_changes_nothing(shop: Shop) -> None:
    address = unique_email("browser")
    before = shop.suppressed()
    page = shop.client.get(shop.link(address))
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "no-referrer" in page.headers["referrer-policy"]
    assert address in page.text
    assert '<form method="post"' in page.text
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert shop.suppressed() == before

    # The page's form posts to the same link: that unsubscribes.
    (action,) = re.findall(r'action="([^"]+)"', page.text)
    assert action.replace("&amp;", "&") == shop.link(address)
    posted = shop.client.post(action.replace("&amp;", "&"), data=ONE_CLICK)
    assert posted.status_code == 200, posted.text
    assert shop.stops(address, marketing=True)


def test_a_hard_bounced_address_stays_fully_suppressed(shop: Shop) -> None:
    address = unique_email("bounced")
    shop.suppressions.suppress(address, "bounce", marketing_only=False)
    answer = shop.client.post(shop.link(address), data=ONE_CLICK)
    assert answer.status_code == 200, answer.text
    assert shop.stops(address, marketing=False)


def _forged_links(shop: Shop, address: str) -> list[str]:
    path, _, query = shop.link(address).partition("?")
    token = query.removeprefix("token=")
    encoded, mac = token.split(".")
    other = UnsubscribeSigner("another-secret-" + "q" * 40).token(address)
    victim = shop.signer.token(unique_email("victim")).split(".")[0]
    return [
        path,  # no token
        f"{path}?token=",
        f"{path}?token=garbage",
        f"{path}?token={encoded}",
        f"{path}?token={other}",  # signed with another secret
        f"{path}?token={victim}.{mac}",  # this MAC on another address
        f"{path}?token={encoded}.{mac[:-1]}",  # damaged
        f"{path}?token={'a' * 2000}",
    ]


def test_a_forged_token_is_refused_and_changes_nothing(shop: Shop) -> None:
    address = unique_email("forged")
    before = shop.suppressed()
    for link in _forged_links(shop, address):
        refused(shop.client.get(link), 400, "invalid-token")
        refused(shop.client.post(link, data=ONE_CLICK), 400, "invalid-token")
    assert shop.suppressed() == before


def test_a_post_without_the_one_click_body_changes_nothing(shop: Shop) -> None:
    address = unique_email("nobody")
    before = shop.suppressed()
    link = shop.link(address)
    refused(shop.client.post(link), 400, "not-one-click")
    refused(shop.client.post(link, data={"List-Unsubscribe": "Maybe"}), 400, "not-one-click")
    refused(shop.client.post(link, json={"List-Unsubscribe": "One-Click"}), 400, "not-one-click")
    assert shop.suppressed() == before
