"""The pages the verification and reset mails link to: a GET shows a form and changes
nothing, the form's POST does the work and answers a page a person can read."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.server import RESET_SUBJECT, VERIFY_SUBJECT, Server
from tests.support.users_client import (
    STRONG_PASSWORD,
    login,
    register,
    unique_email,
    verified_account,
)

pytestmark = pytest.mark.e2e

_LINK = re.compile(r"^(https?://\S+)$", re.MULTILINE)
NEW_PASSWORD = "quarry-velvet-compass-ember-63"


def mailed_link(server: Server, client: httpx.Client, to: str, subject: str) -> str:
    match = _LINK.search(server.mail(client, to, subject)[0]["body"])
    assert match is not None
    return match.group(1)


def path_of(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def assert_page(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "<script" not in response.text.lower()
    return response.text


def test_the_verification_link_shows_a_form_whose_post_verifies(
    server: Server, client: httpx.Client
) -> None:
    email = unique_email("linked")
    assert register(client, email, STRONG_PASSWORD, "Linked Tester").status_code == 201
    link = mailed_link(server, client, email, VERIFY_SUBJECT)
    assert link.startswith(f"{server.base_url}/verify-email?token=")
    token = link.split("token=", 1)[1]
    events = server.event_count()

    page = assert_page(client.get(path_of(link)), 200)
    assert '<form method="post" action="/verify-email">' in page
    assert f'value="{token}"' in page
    assert server.event_count() == events  # a GET (a mail scanner's too) changes nothing
    refused = login(client, email, STRONG_PASSWORD)
    assert refused.status_code == 403, refused.text

    done = assert_page(client.post("/verify-email", data={"token": token}), 200)
    assert "Your address is verified" in done
    assert login(client, email, STRONG_PASSWORD).status_code == 200

    again = assert_page(client.post("/verify-email", data={"token": token}), 400)
    assert "already been used" in again


def test_the_reset_link_sets_a_strong_new_password(server: Server, client: httpx.Client) -> None:
    account = verified_account(server, client, "resetpage")
    assert client.post("/auth/password-reset", json={"email": account.email}).status_code == 202
    link = mailed_link(server, client, account.email, RESET_SUBJECT)
    assert link.startswith(f"{server.base_url}/reset-password?token=")
    token = link.split("token=", 1)[1]
    page = assert_page(client.get(path_of(link)), 200)
    assert 'name="new_password"' in page
    assert 'name="confirmation"' in page

    weak = {"token": token, "new_password": "password1", "confirmation": "password1"}
    refused = assert_page(client.post("/reset-password", data=weak), 422)
    assert "at least 10 characters" in refused
    assert 'name="new_password"' in refused  # the form again: the link still works
    differ = {"token": token, "new_password": NEW_PASSWORD, "confirmation": STRONG_PASSWORD}
    assert "differ" in assert_page(client.post("/reset-password", data=differ), 422)

    good = {"token": token, "new_password": NEW_PASSWORD, "confirmation": NEW_PASSWORD}
    done = assert_page(client.post("/reset-password", data=good), 200)
    assert "Your password is changed" in done
    assert login(client, account.email, NEW_PASSWORD).status_code == 200
    assert login(client, account.email, STRONG_PASSWORD).status_code == 401
    assert_page(client.post("/reset-password", data=good), 400)


@pytest.mark.parametrize("path", ["/verify-email", "/reset-password"])
def test_a_token_with_markup_is_never_reflected(client: httpx.Client, path: str) -> None:
    hostile = '"><script>alert(1)</script><img src=x onerror=alert(1)>'
    page = assert_page(client.get(path, params={"token": hostile}), 400)
    assert "onerror" not in page
    posted = assert_page(client.post(path, data={"token": hostile}), 400)
    assert "onerror" not in posted
    assert "incomplete or damaged" in posted


def test_a_post_that_is_not_a_form_is_refused(client: httpx.Client) -> None:
    assert_page(client.post("/verify-email", json={"token": "x.y.z"}), 415)
