"""Notification preferences through the profile, over HTTP against ``shop run``:
``PATCH /users/me`` sets any of them (a partial update, merged with what is
stored), ``GET /users/me`` answers every key; a bad time zone, locale, quiet hours
or an unknown key is refused (422) and nothing is written."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from domain.notifications import PREFERENCE_KEYS, default_preferences
from tests.support.api import CONSISTENCY, refused
from tests.support.server import Server
from tests.support.side_door import nothing_written
from tests.support.users_client import Account, verified_account

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def shopper(server: Server) -> Account:
    with server.client() as client:
        return verified_account(server, client, "prefs")


def preferences(client: httpx.Client, account: Account, position: str | None = None) -> Any:
    headers = {**account.headers, **({CONSISTENCY: position} if position else {})}
    me = client.get("/users/me", headers=headers)
    assert me.status_code == 200, me.text
    return me.json()["notification_preferences"]


def patch(client: httpx.Client, account: Account, prefs: dict[str, Any]) -> httpx.Response:
    return client.patch(
        "/users/me", json={"notification_preferences": prefs}, headers=account.headers
    )


def test_a_new_account_answers_every_preference_with_its_default(
    server: Server, client: httpx.Client
) -> None:
    answered = preferences(client, verified_account(server, client, "fresh"))
    assert set(answered) == PREFERENCE_KEYS
    assert answered == default_preferences()


def test_set_merge_and_read_back(server: Server, client: httpx.Client) -> None:
    account = verified_account(server, client, "merge")
    first = patch(
        client,
        account,
        {
            "marketing_email": True,
            "order_updates_sms": True,
            "order_updates_push": False,
            "marketing_in_app": False,
            "locale": "de",
            "time_zone": "Europe/Berlin",
            "quiet_hours_start": "22:00",
            "quiet_hours_end": "07:00",
        },
    )
    assert first.status_code == 200, first.text
    answered = preferences(client, account, first.headers[CONSISTENCY])
    assert answered == {
        **default_preferences(),
        "marketing_email": True,
        "order_updates_sms": True,
        "order_updates_push": False,
        "marketing_in_app": False,
        "locale": "de",
        "time_zone": "Europe/Berlin",
        "quiet_hours_start": "22:00",
        "quiet_hours_end": "07:00",
    }

    # A partial update changes only what it names.
    second = patch(client, account, {"marketing_push": True, "time_zone": "America/New_York"})
    assert second.status_code == 200, second.text
    merged = preferences(client, account, second.headers[CONSISTENCY])
    assert merged == {**answered, "marketing_push": True, "time_zone": "America/New_York"}

    # Quiet hours are cleared by giving both ends null.
    third = patch(client, account, {"quiet_hours_start": None, "quiet_hours_end": None})
    assert third.status_code == 200, third.text
    cleared = preferences(client, account, third.headers[CONSISTENCY])
    assert cleared == {**merged, "quiet_hours_start": None, "quiet_hours_end": None}

    # A change of another profile field leaves the preferences as they are.
    renamed = client.patch("/users/me", json={"name": "Merle Merge"}, headers=account.headers)
    assert renamed.status_code == 200, renamed.text
    assert preferences(client, account, renamed.headers[CONSISTENCY]) == cleared


BAD: list[tuple[str, dict[str, Any]]] = [
    ("unknown time zone", {"time_zone": "Mars/Olympus_Mons"}),
    ("not a zone name", {"time_zone": "localtime"}),
    ("unknown locale", {"locale": "fr"}),
    ("start without end", {"quiet_hours_start": "22:00"}),
    ("not HH:MM", {"quiet_hours_start": "10pm", "quiet_hours_end": "07:00"}),
    ("hour 24", {"quiet_hours_start": "24:00", "quiet_hours_end": "07:00"}),
    ("one end null", {"quiet_hours_start": None, "quiet_hours_end": "07:00"}),
    ("empty window", {"quiet_hours_start": "07:00", "quiet_hours_end": "07:00"}),
    ("unknown key", {"marketing_fax": True}),
    ("account mail cannot be turned off", {"account_email": False}),
    ("not a bool", {"order_updates_push": "yes"}),
]


def test_bad_preferences_are_refused_and_nothing_changes(
    server: Server, client: httpx.Client, shopper: Account
) -> None:
    set_first = patch(client, shopper, {"marketing_sms": True, "locale": "de"})
    assert set_first.status_code == 200, set_first.text
    before = preferences(client, shopper, set_first.headers[CONSISTENCY])
    with nothing_written(server):
        for name, prefs in BAD:
            answer = patch(client, shopper, {**prefs})
            body = refused(answer, 422, "validation-failed")
            assert body["errors"], (name, body)
            # a valid key beside a bad one is not applied either
            mixed = patch(client, shopper, {"marketing_email": True, **prefs})
            refused(mixed, 422, "validation-failed")
    assert preferences(client, shopper) == before
