"""The users area over HTTP: registering, verifying, logging in; an account that
has done all three, with a role when the test needs one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from tests.support.api import bearer
from tests.support.polling import eventually
from tests.support.server import STARTUP_SECONDS, VERIFY_SUBJECT

if TYPE_CHECKING:
    from tests.support.server import Server

STRONG_PASSWORD = "lantern-mosaic-quiver-harbor-97"


def unique_email(label: str = "user") -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}@example.com"


@dataclass
class Account:
    id: str
    email: str
    password: str
    name: str
    access_token: str = ""
    refresh_token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)


def register(client: httpx.Client, email: str, password: str, name: str) -> httpx.Response:
    return client.post("/auth/register", json={"email": email, "password": password, "name": name})


def login(client: httpx.Client, email: str, password: str) -> httpx.Response:
    return client.post("/auth/login", json={"email": email, "password": password})


def verified_account(server: Server, client: httpx.Client, label: str = "user") -> Account:
    """A registered, verified and logged-in customer."""
    email, name = unique_email(label), f"{label.capitalize()} Tester"
    registered = register(client, email, STRONG_PASSWORD, name)
    assert registered.status_code == 201, registered.text
    token = server.mailed_token(client, email, VERIFY_SUBJECT)
    verified = client.post("/auth/verify-email", json={"token": token})
    assert verified.status_code == 200, verified.text
    logged_in = login(client, email, STRONG_PASSWORD)
    assert logged_in.status_code == 200, logged_in.text
    tokens = logged_in.json()
    # Login waits for the access view at most 2 s: on a loaded machine the session
    # may reach it a little later, and the token works from then on.
    headers = bearer(tokens["access_token"])

    def me() -> httpx.Response | None:
        answer = client.get("/users/me", headers=headers)
        return None if answer.status_code == 401 else answer

    found = eventually(me, f"the session of {email} to work", timeout=STARTUP_SECONDS)
    assert found.status_code == 200, found.text
    return Account(
        id=registered.json()["id"],
        email=email,
        password=STRONG_PASSWORD,
        name=name,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
    )


def account_with_role(server: Server, client: httpx.Client, label: str, role: str) -> Account:
    """A verified account the CLI-made admin has granted ``role``."""
    account = verified_account(server, client, label)
    granted = client.post(
        f"/admin/users/{account.id}/roles",
        json={"role": role},
        headers=server.admin_headers(client),
    )
    assert granted.status_code == 200, granted.text
    return account
