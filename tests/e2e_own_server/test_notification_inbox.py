"""The user's in-app inbox over HTTP and its live stream (Server-Sent Events).

The whole app (``create_app``) runs under a real uvicorn server in a thread, on a
loopback port: a stream must be read as it arrives, which only a real server and
httpx streaming do. The inbox's routers, their services and the stream's hub are
not mounted by ``create_app`` yet: the fixture adds them as the lead will. Items
are written into the inbox as the in-app channel delivers them (``PostgresInbox.put``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from infra.entrypoints.notification_stream import (
    APPLICATION_NAME,
    MAX_STREAMS_PER_USER,
    StreamHub,
)
from infra.postgres.inbox import PostgresInbox
from infra.wiring.process import Container
from projections.notifications.inbox import InboxItem
from tests.support.api import bearer, refused
from tests.support.in_process import in_process_app, replace_notification_services
from tests.support.notifications_client import SseEvent, sse_events
from tests.support.polling import eventually
from tests.support.server import free_port
from tests.support.users_client import STRONG_PASSWORD, unique_email

pytestmark = pytest.mark.e2e

HEARTBEAT = 0.5
"""The stream's ping in these tests (15 s in production): a read of the stream
regains control at least this often, so waits on it are bounded."""
STREAM = "/me/notifications/stream"


class Clock:
    """The write side's clock, which tests move to issue a ticket in the past."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Shop:
    base_url: str
    container: Container
    inbox: PostgresInbox
    hub: StreamHub
    clock: Clock
    client: httpx.Client


@dataclass
class User:
    id: UUID
    headers: dict[str, str]
    token: str


def mount(app: FastAPI, container: Container, clock: Clock) -> StreamHub:
    """The app's inbox services and stream hub, with a clock the tests move and a
    listener that notices a lost connection within a second."""
    inbox, tickets = container.notifications.inbox, container.notifications.tickets
    hub = StreamHub(
        container.conninfo, inbox, tickets, heartbeat=HEARTBEAT, probe=0.3, max_backoff=0.5
    )
    replace_notification_services(app, clock=clock)
    app.state.notification_stream = hub
    return hub


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        eventually(lambda: server.started, "uvicorn started", timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def shop(
    make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shop]:
    clock = Clock()
    with (
        in_process_app(
            make_database(),
            tmp_path_factory.mktemp("shop-data"),
            notify_sms="mailbox",
            login_attempts_per_address=100_000,
        ) as (app, container),
    ):
        hub = mount(app, container, clock)
        with serving(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
            yield Shop(base_url, container, PostgresInbox(container.pool), hub, clock, client)


@pytest.fixture
def user(shop: Shop) -> User:
    return new_user(shop)


def new_user(shop: Shop) -> User:
    email = unique_email("inbox")
    user_id = shop.container.user_commands.create_admin(email, STRONG_PASSWORD, "Inbox").id
    answer = shop.client.post("/auth/login", json={"email": email, "password": STRONG_PASSWORD})
    assert answer.status_code == 200, answer.text
    token = str(answer.json()["access_token"])
    headers = bearer(token)
    eventually(
        lambda: shop.client.get("/users/me", headers=headers).status_code == 200,
        f"the session of {email}",
    )
    empty_inbox(shop, user_id)
    return User(user_id, headers, token)


def empty_inbox(shop: Shop, user_id: UUID) -> None:
    """The account starts with the in-app notice of its admin role (``create_admin``
    grants it, and the notifier tells the user): once it is delivered it is removed,
    so that each test sees only the items it writes."""

    def delivered() -> bool:
        with shop.container.pool.connection() as conn:
            row = conn.execute(
                "SELECT count(*) FROM notify.inbox WHERE user_id = %s AND kind = 'role_changed'",
                (user_id,),
            ).fetchone()
        return row == (1,)

    eventually(delivered, "the role_changed notice in the inbox")
    with shop.container.pool.connection() as conn:
        conn.execute("DELETE FROM notify.inbox WHERE user_id = %s", (user_id,))


def put(shop: Shop, user: User, at: datetime | None = None, title: str = "Shipped") -> InboxItem:
    item = InboxItem(
        user_id=user.id,
        notification_id=uuid4(),
        kind="order_shipped",
        title=title,
        body="Your order is on its way.",
        link="https://shop.example/orders/1",
        created_at=at or datetime.now(UTC),
    )
    assert shop.inbox.put(item)
    return item


def page(shop: Shop, user: User, **query: Any) -> dict[str, Any]:
    answer = shop.client.get("/me/notifications", params=query, headers=user.headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def unread(shop: Shop, user: User) -> int:
    answer = shop.client.get("/me/notifications/unread-count", headers=user.headers)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["unread"])


def ticket(shop: Shop, user: User) -> str:
    answer = shop.client.post("/me/notifications/stream-tickets", headers=user.headers)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["expires_in"] == 30 and set(body) == {"ticket", "expires_in"}
    assert answer.headers["cache-control"] == "no-store"
    return str(body["ticket"])


@contextmanager
def stream(
    shop: Shop, user: User, last_event_id: str | None = None
) -> Iterator[Iterator[SseEvent]]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    with (
        httpx.Client(base_url=shop.base_url, timeout=10) as client,
        client.stream("GET", STREAM, params={"ticket": ticket(shop, user)}, headers=headers) as r,
    ):
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        yield sse_events(r.iter_lines())


def notifications(received: Iterator[SseEvent], count: int, within: float = 10.0) -> list[SseEvent]:
    """The next ``count`` notification messages (pings skipped), or fail."""
    deadline = time.monotonic() + within
    found: list[SseEvent] = []
    for event in received:
        if event.event == "notification":
            found.append(event)
            if len(found) == count:
                return found
        assert time.monotonic() < deadline, f"{len(found)} of {count} notifications"
    raise AssertionError("the stream ended")


def quiet(received: Iterator[SseEvent], pings: int = 2) -> None:
    """Only pings for the next ``pings`` heartbeats: nothing more was sent."""
    for _ in range(pings):
        event = next(received)
        assert event.comment == "ping" and event.event is None, event


# --- pages and counts ----------------------------------------------------------------------


def test_pages_are_newest_first_without_duplicates_or_gaps(shop: Shop, user: User) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    items = [put(shop, user, start + timedelta(minutes=i)) for i in range(5)]
    items += [put(shop, user, start + timedelta(minutes=10)) for _ in range(2)]  # a tie
    expected = [i.key for i in sorted(items, key=lambda i: i.key, reverse=True)]

    seen: list[str] = []
    body = page(shop, user, limit=3)
    put(shop, user, start + timedelta(minutes=30))  # newer: on no later page
    while True:
        seen += [item["key"] for item in body["items"]]
        assert len(body["items"]) <= 3
        if body["next_cursor"] is None:
            break
        assert body["next_cursor"] == body["items"][-1]["key"]
        body = page(shop, user, limit=3, before=body["next_cursor"])

    assert seen == expected
    newest = page(shop, user, limit=1)["items"][0]
    first = items[0]
    oldest = page(shop, user, limit=1, before=items[1].key)["items"]
    assert oldest == [
        {
            "id": str(first.notification_id),
            "kind": "order_shipped",
            "title": "Shipped",
            "body": "Your order is on its way.",
            "link": "https://shop.example/orders/1",
            "created_at": first.created_at.isoformat().replace("+00:00", "Z"),
            "read": False,
            "key": first.key,
        }
    ]
    assert newest["key"] > expected[0]


@pytest.mark.parametrize("cursor", ["not-a-cursor", "0" * 16, "x" * 101])
def test_a_cursor_that_is_not_a_key_is_refused(shop: Shop, user: User, cursor: str) -> None:
    answer = shop.client.get("/me/notifications", params={"before": cursor}, headers=user.headers)

    if len(cursor) > 100:
        refused(answer, 422, "validation-failed")
    else:
        refused(answer, 400, "bad-query")


def test_unread_count_after_read_and_read_all(shop: Shop, user: User) -> None:
    items = [put(shop, user) for _ in range(3)]
    assert unread(shop, user) == 3

    answer = shop.client.post(
        f"/me/notifications/{items[0].notification_id}/read", headers=user.headers
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"id": str(items[0].notification_id), "read": True}
    again = shop.client.post(
        f"/me/notifications/{items[0].notification_id}/read", headers=user.headers
    )
    assert again.status_code == 200  # marking it read again is no error
    assert unread(shop, user) == 2
    assert [i["read"] for i in page(shop, user)["items"]] == [False, False, True]

    answer = shop.client.post("/me/notifications/read-all", headers=user.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"marked": 2}
    assert unread(shop, user) == 0
    assert shop.client.post("/me/notifications/read-all", headers=user.headers).json() == {
        "marked": 0
    }


def test_another_users_notification_is_not_found_and_stays_unread(shop: Shop, user: User) -> None:
    other = new_user(shop)
    theirs = put(shop, other)

    answer = shop.client.post(
        f"/me/notifications/{theirs.notification_id}/read", headers=user.headers
    )

    refused(answer, 404, "not-found")
    refused(
        shop.client.post(f"/me/notifications/{uuid4()}/read", headers=user.headers),
        404,
        "not-found",
    )
    assert unread(shop, other) == 1
    assert page(shop, other)["items"][0]["read"] is False
    assert page(shop, user)["items"] == []


def test_the_inbox_needs_a_login(shop: Shop) -> None:
    refused(shop.client.get("/me/notifications"), 401, "unauthenticated")
    refused(shop.client.post("/me/notifications/read-all"), 401, "unauthenticated")
    refused(shop.client.post("/me/notifications/stream-tickets"), 401, "unauthenticated")


# --- stream tickets ------------------------------------------------------------------------


def open_stream(
    shop: Shop, params: dict[str, str], headers: dict[str, str] | None = None
) -> httpx.Response:
    """A stream the server refuses answers at once; one it opens is closed unread."""
    with shop.client.stream("GET", STREAM, params=params, headers=headers) as answer:
        if answer.status_code != 200:
            answer.read()
        return answer


def ticket_rows(shop: Shop) -> int:
    with shop.container.pool.connection() as conn:
        row = conn.execute("SELECT count(*) FROM notify.stream_tickets").fetchone()
    assert row is not None
    return int(row[0])


def test_a_ticket_opens_one_stream_only(shop: Shop, user: User) -> None:
    once = ticket(shop, user)
    with shop.container.pool.connection() as conn:  # only its hash is kept
        assert conn.execute(
            "SELECT count(*) FROM notify.stream_tickets WHERE hash = %s", (once,)
        ).fetchone() == (0,)

    assert open_stream(shop, {"ticket": once}).status_code == 200
    body = refused(open_stream(shop, {"ticket": once}), 401, "invalid-stream-ticket")
    assert "used" in body["detail"]


def test_an_expired_ticket_is_refused(shop: Shop, user: User) -> None:
    shop.clock.offset = -timedelta(seconds=31)
    try:
        stale = ticket(shop, user)
    finally:
        shop.clock.offset = timedelta()

    refused(open_stream(shop, {"ticket": stale}), 401, "invalid-stream-ticket")


def test_no_ticket_or_a_wrong_one_is_refused_and_changes_nothing(shop: Shop, user: User) -> None:
    good = ticket(shop, user)
    before = ticket_rows(shop)

    for params in ({}, {"ticket": ""}, {"ticket": "guess"}, {"ticket": "y" * 5000}):
        refused(open_stream(shop, params), 401, "invalid-stream-ticket")

    assert ticket_rows(shop) == before
    assert open_stream(shop, {"ticket": good}).status_code == 200  # still good


def test_the_access_token_is_refused_in_the_url_and_the_header(shop: Shop, user: User) -> None:
    for params in ({"ticket": user.token}, {"access_token": user.token}, {"token": user.token}):
        refused(open_stream(shop, params), 401, "invalid-stream-ticket")
    refused(open_stream(shop, {}, headers=user.headers), 401, "invalid-stream-ticket")


# --- the stream ----------------------------------------------------------------------------


def test_a_new_item_arrives_live_and_nothing_older(shop: Shop, user: User) -> None:
    put(shop, user, title="before the stream")
    with stream(shop, user) as received:
        assert next(received).comment == "ping"  # the heartbeat, and nothing old
        item = put(shop, user, title="live")

        (event,) = notifications(received, 1)

        assert event.id == item.key
        assert len(event.data) == 1
        data = json.loads(event.data[0])
        assert data == page(shop, user, limit=1)["items"][0]
        assert data["title"] == "live" and data["id"] == str(item.notification_id)
        quiet(received)


def test_several_items_at_once_arrive_once_each_in_order(shop: Shop, user: User) -> None:
    with stream(shop, user) as received:
        start = datetime.now(UTC)
        made = [put(shop, user, start + timedelta(milliseconds=i)) for i in range(5)]

        got = notifications(received, 5)

        assert [e.id for e in got] == [i.key for i in made]
        quiet(received)


def test_reconnecting_with_last_event_id_replays_exactly_what_was_missed(
    shop: Shop, user: User
) -> None:
    with stream(shop, user) as received:
        seen = put(shop, user, title="seen")
        (event,) = notifications(received, 1)
    assert event.id == seen.key
    start = datetime.now(UTC)
    missed = [put(shop, user, start + timedelta(milliseconds=i), f"missed {i}") for i in range(3)]

    with stream(shop, user, last_event_id=event.id) as received:
        replayed = notifications(received, 3)
        assert [e.id for e in replayed] == [i.key for i in missed]
        quiet(received)
        later = put(shop, user, title="after the replay")
        (live,) = notifications(received, 1)
        assert live.id == later.key


def test_a_new_event_source_passes_the_last_id_in_the_query(shop: Shop, user: User) -> None:
    seen = put(shop, user)
    missed = put(shop, user, seen.created_at + timedelta(seconds=1))
    params = {"ticket": ticket(shop, user), "last_event_id": seen.key}
    with shop.client.stream("GET", STREAM, params=params) as answer:
        assert answer.status_code == 200
        (event,) = notifications(sse_events(answer.iter_lines()), 1)
    assert event.id == missed.key


def test_an_event_id_that_is_not_a_key_is_ignored(shop: Shop, user: User) -> None:
    put(shop, user)
    with stream(shop, user, last_event_id="garbage") as received:
        quiet(received, pings=1)  # no replay: as if it were absent
        item = put(shop, user)
        assert notifications(received, 1)[0].id == item.key


def test_a_gone_client_ends_its_stream(shop: Shop, user: User) -> None:
    before = shop.hub.open_streams
    with stream(shop, user) as received:
        next(received)
        assert shop.hub.open_streams == before + 1
    eventually(lambda: shop.hub.open_streams == before, "the stream's end", timeout=5)


def test_one_account_holds_a_bounded_number_of_streams(shop: Shop, user: User) -> None:
    with ExitStack() as open_ones:
        held = [open_ones.enter_context(stream(shop, user)) for _ in range(MAX_STREAMS_PER_USER)]
        for received in held:  # each reading: a dropped iterator would close its stream
            next(received)
        body = refused(open_stream(shop, {"ticket": ticket(shop, user)}), 429, "too-many-streams")
        assert str(MAX_STREAMS_PER_USER) in body["detail"]
        other = new_user(shop)
        with stream(shop, other) as received:  # another account is not held back
            next(received)
    eventually(lambda: open_stream(shop, {"ticket": ticket(shop, user)}).status_code == 200)


def test_the_stream_survives_the_listener_losing_the_database(shop: Shop, user: User) -> None:
    with stream(shop, user) as received:
        next(received)
        with psycopg.connect(shop.container.conninfo, autocommit=True) as conn:
            ended = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s AND datname = current_database()",
                (APPLICATION_NAME,),
            ).fetchall()
        assert ended == [(True,)]
        item = put(shop, user, title="while the listener was away")

        (event,) = notifications(received, 1)

        assert event.id == item.key
        eventually(shop.hub.listening.is_set, "the listener back", timeout=10)
        later = put(shop, user, title="after it came back")
        assert notifications(received, 1)[0].id == later.key


def test_the_stream_is_documented(shop: Shop) -> None:
    document = shop.client.get("/openapi.json").json()
    ok = document["paths"][STREAM]["get"]["responses"]["200"]
    assert "text/event-stream" in ok["content"]
    assert set(document["paths"]["/me/notifications"]["get"]["responses"]["200"]["content"])


def _stream_timing(shop: Shop) -> tuple[float, float]:
    """From /metrics: the stream requests timed so far, and the requests in flight."""
    families = text_string_to_metric_families(shop.client.get("/metrics").text)
    samples = [sample for family in families for sample in family.samples]
    timed = sum(
        sample.value
        for sample in samples
        if sample.name == "http_request_duration_seconds_count"
        and sample.labels == {"method": "GET", "route": STREAM}
    )
    (in_flight,) = [s.value for s in samples if s.name == "http_requests_in_flight"]
    return timed, in_flight


def test_an_open_stream_is_timed_to_its_opening_not_its_life(shop: Shop, user: User) -> None:
    """The latency histogram would otherwise hold each stream's whole life."""
    timed, _ = _stream_timing(shop)
    with stream(shop, user) as received:
        assert next(received).comment == "ping"
        assert _stream_timing(shop) == (timed + 1, 1)  # in flight: the scrape only
