"""The in-app inbox contract (``projections.notifications.inbox.Inbox``): one suite of
behaviours (``InboxContract``) run against each adapter:

- ``TestPostgresInbox``: ``notify.inbox`` in a fresh database;
- ``TestDynamoDBInbox``: a table made by ``create_table`` (with its
  ``by_notification`` index) on a moto server, a fresh table per test.

Every test uses users of its own, so the backends' state never leaks between tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from infra.amazon.dynamodb_inbox import DynamoDBInbox, create_table
from infra.postgres.inbox import DDL, PAYLOAD_LIMIT, PostgresInbox, SignalledInbox
from projections.notifications.inbox import INBOX_CHANNEL, Inbox, InboxItem
from tests.support.moto_server import client, moto_server

pytestmark = pytest.mark.integration

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def item(user_id: UUID, minute: int, **changes: Any) -> InboxItem:
    """A notification of ``user_id``, ``minute`` minutes after START (keys then sort
    by it)."""
    fields: dict[str, Any] = {
        "user_id": user_id,
        "notification_id": uuid4(),
        "kind": "order_shipped",
        "title": f"Shipped #{minute}",
        "body": "Your parcel is on its way.",
        "link": f"https://shop.example/orders/{minute}",
        "created_at": START + timedelta(minutes=minute, microseconds=123),
    }
    return InboxItem(**(fields | changes))


def filled(inbox: Inbox, user_id: UUID, count: int) -> list[InboxItem]:
    """``count`` stored items, oldest first (put out of order, as deliveries come)."""
    items = [item(user_id, minute) for minute in range(count)]
    for stored in reversed(items[::2]):
        assert inbox.put(stored)
    for stored in items[1::2]:
        assert inbox.put(stored)
    return items


class InboxContract:
    @pytest.fixture
    def inbox(self) -> Inbox:
        raise NotImplementedError

    def test_a_repeated_put_is_stored_once(self, inbox: Inbox) -> None:
        user = uuid4()
        first = item(user, 0, link=None)

        assert inbox.put(first) is True
        assert inbox.put(first) is False  # a second delivery of the same notification

        assert inbox.page(user, None, 10) == [first]
        assert inbox.unread_count(user) == 1

    def test_keyset_pages_are_newest_first_without_duplicates_or_gaps(self, inbox: Inbox) -> None:
        user = uuid4()
        items = filled(inbox, user, 7)
        inbox.put(item(uuid4(), 3))  # another user's, in between by time

        pages: list[list[InboxItem]] = []
        before: str | None = None
        while page := inbox.page(user, before, 3):
            pages.append(page)
            before = page[-1].key

        assert [len(p) for p in pages] == [3, 3, 1]
        assert [i for p in pages for i in p] == list(reversed(items))
        assert inbox.page(user, items[0].key, 3) == []  # nothing older than the oldest

    def test_unread_count_after_mark_read_and_mark_all_read(self, inbox: Inbox) -> None:
        user = uuid4()
        items = filled(inbox, user, 5)
        at = START + timedelta(days=1)

        assert inbox.unread_count(user) == 5
        assert inbox.mark_read(user, items[1].notification_id, at) is True
        assert inbox.mark_read(user, items[1].notification_id, at + timedelta(hours=1))
        assert inbox.unread_count(user) == 4
        assert inbox.mark_all_read(user, at + timedelta(hours=2)) == 4
        assert inbox.unread_count(user) == 0
        assert inbox.mark_all_read(user, at + timedelta(hours=3)) == 0

        read_at = {i.notification_id: i.read_at for i in inbox.page(user, None, 10)}
        assert read_at[items[1].notification_id] == at  # a second mark keeps the first time
        assert {read_at[i.notification_id] for i in items if i != items[1]} == {
            at + timedelta(hours=2)
        }

    def test_a_notification_is_marked_read_by_its_owner_only(self, inbox: Inbox) -> None:
        owner, other = uuid4(), uuid4()
        (theirs,) = filled(inbox, owner, 1)
        filled(inbox, other, 2)

        assert inbox.mark_read(other, theirs.notification_id, START) is False
        assert inbox.mark_read(owner, uuid4(), START) is False  # no such notification

        assert inbox.unread_count(owner) == 1
        assert inbox.unread_count(other) == 2
        assert inbox.page(owner, None, 10)[0].read_at is None

    def test_after_returns_exactly_the_newer_ones_oldest_first(self, inbox: Inbox) -> None:
        user = uuid4()
        items = filled(inbox, user, 6)
        inbox.put(item(uuid4(), 4))  # another user's newer one

        assert inbox.after(user, items[2].key, 10) == items[3:]
        assert inbox.after(user, items[2].key, 2) == items[3:5]
        assert inbox.after(user, items[-1].key, 10) == []
        assert inbox.after(user, "0" * 16 + "-" + str(UUID(int=0)), 10) == items

    def test_put_many_stores_each_once(self, inbox: Inbox) -> None:
        user = uuid4()
        items = [item(user, minute) for minute in range(3)]
        inbox.put_many(items)
        inbox.put_many(items[1:])  # a batch delivered again

        assert inbox.page(user, None, 10) == list(reversed(items))

    def test_forget_deletes_every_item_of_the_user_and_no_one_elses(self, inbox: Inbox) -> None:
        erased, other = uuid4(), uuid4()
        filled(inbox, erased, 4)
        kept = filled(inbox, other, 2)

        inbox.forget(erased)  # an erased user (ADR 0024)
        inbox.forget(erased)  # again: nothing left, no error

        assert inbox.page(erased, None, 10) == []
        assert inbox.unread_count(erased) == 0
        assert inbox.page(other, None, 10) == list(reversed(kept))


def assert_wakes_its_users_streams(inbox: Inbox, pool: ConnectionPool[Any]) -> None:
    """The live streams listen in Postgres whichever store keeps the inbox."""
    user = uuid4()
    with listening(pool) as conn:
        inbox.put(item(user, 0))
        inbox.put_many([item(user, 1), item(user, 2)])
        woken = {woken_user(n.payload) for n in conn.notifies(timeout=2, stop_after=2)}
    assert woken == {str(user)}


@contextmanager
def listening(pool: ConnectionPool[Any]) -> Iterator[psycopg.Connection[Any]]:
    """A connection of its own (a pooled one would keep listening, and collect the
    next tests' notifications)."""
    with psycopg.connect(str(pool.conninfo), autocommit=True) as conn:
        conn.execute(f"LISTEN {INBOX_CHANNEL}")
        yield conn


def woken_user(payload: str) -> str:
    """The item itself (JSON, with its user) or its user id alone."""
    return str(json.loads(payload)["u"]) if payload.startswith("{") else payload


@pytest.fixture(scope="module")
def inbox_pool(make_database: Callable[[], str]) -> Iterator[ConnectionPool[Any]]:
    """``notify.inbox`` in a fresh database, and a pool on it."""
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(DDL)
    with ConnectionPool(url, min_size=1, max_size=2, kwargs={"autocommit": True}) as opened:
        yield opened


class TestPostgresInbox(InboxContract):
    @pytest.fixture
    def inbox(self, inbox_pool: ConnectionPool[Any]) -> Inbox:
        return PostgresInbox(inbox_pool)

    def test_a_new_item_wakes_its_users_streams(
        self, inbox: Inbox, inbox_pool: ConnectionPool[Any]
    ) -> None:
        assert_wakes_its_users_streams(inbox, inbox_pool)

    def test_the_notification_carries_the_item_and_the_key_before_it(
        self, inbox: Inbox, inbox_pool: ConnectionPool[Any]
    ) -> None:
        user = uuid4()
        first, second = item(user, 0), item(user, 1)
        long = item(user, 2, body="x" * PAYLOAD_LIMIT)
        with listening(inbox_pool) as conn:
            for stored in (first, second, long):
                inbox.put(stored)
            payloads = [n.payload for n in conn.notifies(timeout=2, stop_after=3)]
        carried = [json.loads(payload) for payload in payloads[:2]]
        assert [(c["k"], c["p"], c["t"]) for c in carried] == [
            (first.key, None, first.title),
            (second.key, first.key, second.title),
        ]
        assert payloads[2] == str(user)  # too long for a notification: the user id


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


class TestDynamoDBInbox(InboxContract):
    @pytest.fixture
    def inbox(self, moto_url: str) -> Inbox:
        dynamodb = client(moto_url, "dynamodb")
        name = f"inbox-{uuid4().hex[:8]}"
        create_table(dynamodb, name)
        return DynamoDBInbox(dynamodb, name)

    def test_signalled_it_wakes_the_streams_too(
        self, inbox: Inbox, inbox_pool: ConnectionPool[Any]
    ) -> None:
        assert_wakes_its_users_streams(SignalledInbox(inbox, inbox_pool), inbox_pool)

    def test_create_table_leaves_an_existing_table(self, moto_url: str) -> None:
        dynamodb = client(moto_url, "dynamodb")
        name = f"inbox-{uuid4().hex[:8]}"
        create_table(dynamodb, name)
        inbox = DynamoDBInbox(dynamodb, name)
        (kept,) = filled(inbox, uuid4(), 1)

        create_table(dynamodb, name)  # compose and tests run it at every start

        assert inbox.page(kept.user_id, None, 1) == [kept]

    def test_pages_span_responses_cut_at_one_megabyte(self, moto_url: str) -> None:
        """A Query response stops at 1 MB whatever its Limit: pages and counts follow
        LastEvaluatedKey."""
        dynamodb = client(moto_url, "dynamodb")
        name = f"inbox-{uuid4().hex[:8]}"
        create_table(dynamodb, name)
        inbox = DynamoDBInbox(dynamodb, name)
        user = uuid4()
        big = [item(user, minute, body="x" * 300_000) for minute in range(5)]  # 1.5 MB
        for stored in big:
            inbox.put(stored)

        assert inbox.page(user, None, 5) == list(reversed(big))
        assert inbox.after(user, big[0].key, 5) == big[1:]
        assert inbox.unread_count(user) == 5
        assert inbox.mark_all_read(user, START) == 5
