"""The admin delivery log's queries (``projections.notifications.delivery_log``) over
rows the notifier and the delivery workers wrote: per user and per order, newest
first, each delivery with its attempts, page by page."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from domain.notifications import Channel, Kind
from projections.cursors import BadCursor, Page
from projections.notifications.delivery_log import notifications_of
from tests.support.notify_rows import attempted, decided, delivery_on, notify_pool

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def pool(database_url: str) -> Iterator[ConnectionPool[Any]]:
    with notify_pool(database_url) as opened:
        yield opened


def log_of(database_url: str, **query: Any) -> Page:
    async def go() -> Page:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            return await notifications_of(conn, **query)

    return asyncio.run(go())


def test_a_users_notifications_newest_first_with_deliveries_and_attempts(
    pool: ConnectionPool[Any], database_url: str
) -> None:
    user, order = uuid4(), uuid4()
    confirmed = decided(pool, Kind.ORDER_CONFIRMED, user, T0, order_id=order)
    shipped = decided(pool, Kind.ORDER_SHIPPED, user, T0 + timedelta(hours=1), order_id=order)
    decided(pool, Kind.ORDER_CONFIRMED, uuid4(), T0)  # someone else's
    email = delivery_on(confirmed, Channel.EMAIL)
    attempted(pool, email, T0 + timedelta(seconds=1), "retrying", error="throttled")
    attempted(pool, email, T0 + timedelta(seconds=5), "sent", provider_message_id="ses-1")

    page = log_of(database_url, user_id=user)

    assert [n["id"] for n in page.items] == [shipped.notification.id, confirmed.notification.id]
    assert page.next_cursor is None
    first = page.items[1]
    assert {k: first[k] for k in ("kind", "category", "user_id", "order_id", "locale")} == {
        "kind": "order_confirmed",
        "category": "order_updates",
        "user_id": user,
        "order_id": order,
        "locale": "en",
    }
    assert first["trigger"] == confirmed.notification.trigger
    assert first["decided_at"] == T0
    by_channel = {d["channel"]: d for d in first["deliveries"]}
    assert set(by_channel) == {"email", "in_app"}
    sent = by_channel["email"]
    assert sent["id"] == email
    assert sent["address"] == "shopper@example.com"
    assert (sent["state"], sent["attempts"], sent["provider_message_id"]) == ("sent", 2, "ses-1")
    assert [(a["number"], a["outcome"], a["error"]) for a in sent["history"]] == [
        (1, "retrying", "throttled"),
        (2, "sent", None),
    ]
    assert sent["history"][1]["started_at"] == T0 + timedelta(seconds=5)
    assert sent["history"][1]["finished_at"] == T0 + timedelta(seconds=5)
    assert sent["history"][1]["provider_message_id"] == "ses-1"
    untouched = by_channel["in_app"]
    assert (untouched["state"], untouched["attempts"], untouched["history"]) == ("queued", 0, [])
    assert untouched["address"] == str(user)
    assert untouched["not_before"] == T0
    assert untouched["last_error"] is None


def test_an_orders_notifications_whoever_they_went_to(
    pool: ConnectionPool[Any], database_url: str
) -> None:
    order = uuid4()
    customer = decided(pool, Kind.ORDER_REJECTED, uuid4(), T0, order_id=order)
    again = decided(pool, Kind.PAYMENT_FAILED, uuid4(), T0 + timedelta(minutes=1), order_id=order)
    decided(pool, Kind.ORDER_REJECTED, uuid4(), T0, order_id=uuid4())
    failed = delivery_on(customer, Channel.EMAIL)
    attempted(pool, failed, T0, "failed", error="address rejected")

    page = log_of(database_url, order_id=order)

    assert [n["id"] for n in page.items] == [again.notification.id, customer.notification.id]
    email = next(d for d in page.items[1]["deliveries"] if d["channel"] == "email")
    assert (email["state"], email["last_error"]) == ("failed", "address rejected")
    assert [a["outcome"] for a in email["history"]] == ["failed"]


def test_a_notification_without_deliveries_is_listed_with_none(
    pool: ConnectionPool[Any], database_url: str
) -> None:
    user = uuid4()
    # An SMS-only decision for a user without a phone: nothing to deliver.
    decided(pool, Kind.ORDER_SHIPPED, user, T0, channels=frozenset({Channel.SMS}))

    (only,) = log_of(database_url, user_id=user).items
    assert only["deliveries"] == []


def test_pages_follow_each_other_without_gaps_or_repeats(
    pool: ConnectionPool[Any], database_url: str
) -> None:
    user = uuid4()
    # Two at the same instant: the id orders them, and the cursor holds it.
    times = [T0, T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2), T0 + timedelta(hours=1)]
    made = [decided(pool, Kind.ORDER_SHIPPED, user, at).notification for at in times]
    newest_first = [n.id for n in sorted(made, key=lambda n: (n.decided_at, n.id), reverse=True)]

    seen: list[UUID] = []
    cursor = None
    pages = 0
    while True:
        page = log_of(database_url, user_id=user, after=cursor, limit=2)
        pages += 1
        seen += [n["id"] for n in page.items]
        assert all(len(n["deliveries"]) == 2 for n in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 3
    assert seen == newest_first


def test_a_cursor_it_did_not_issue_is_refused(database_url: str, pool: ConnectionPool[Any]) -> None:
    with pytest.raises(BadCursor):
        log_of(database_url, user_id=uuid4(), after="not-a-cursor")


def test_exactly_one_of_user_or_order(database_url: str, pool: ConnectionPool[Any]) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        log_of(database_url, user_id=uuid4(), order_id=uuid4())
    with pytest.raises(ValueError, match="exactly one"):
        log_of(database_url)
