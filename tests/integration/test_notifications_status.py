"""``shop notifications status`` (``infra.entrypoints.notifications_status``) and the
decisions counted for ``/metrics`` (``NotificationCollector``), over rows written as
the notifier and the delivery workers write them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool
from rich.console import Console

from domain.notifications import Channel, Kind
from infra.entrypoints.notification_metrics import NotificationCollector
from infra.entrypoints.notifications_status import render, status_report
from infra.postgres.notifications import PostgresDeliveryLog, PostgresDeliveryQueue
from tests.support.notify_rows import attempted, decided, delivery_on, notify_pool

pytestmark = pytest.mark.integration

PHONE = "+447700900089"
EMAIL = frozenset({Channel.EMAIL})


@pytest.fixture
def pool(database_url: str) -> Iterator[ConnectionPool[Any]]:
    with notify_pool(database_url) as opened:
        yield opened


@pytest.fixture
def queue(pool: ConnectionPool[Any], database_url: str) -> Iterator[PostgresDeliveryQueue]:
    embedded = PostgresDeliveryQueue(pool, database_url)
    yield embedded
    embedded.close()


def report_of(pool: ConnectionPool[Any], queue: PostgresDeliveryQueue) -> dict[str, Any]:
    with pool.connection() as conn:
        return status_report(conn, queue)


def test_the_report_per_channel_and_the_latest_failures(
    pool: ConnectionPool[Any], queue: PostgresDeliveryQueue
) -> None:
    now = datetime.now(UTC)
    waiting = decided(pool, Kind.ORDER_SHIPPED, uuid4(), now - timedelta(minutes=10))
    attempted(pool, delivery_on(waiting, Channel.IN_APP), now - timedelta(minutes=5), "sent")
    old = decided(pool, Kind.ORDER_SHIPPED, uuid4(), now - timedelta(hours=2))
    old_email = delivery_on(old, Channel.EMAIL)
    attempted(pool, old_email, now - timedelta(hours=2), "failed", error="bounced")
    attempted(
        pool,
        delivery_on(old, Channel.IN_APP),
        now - timedelta(hours=2),
        "retrying",
        error="timeout",
        retry_at=now + timedelta(minutes=10),
    )
    late = decided(
        pool,
        Kind.ORDER_SHIPPED,
        uuid4(),
        now - timedelta(minutes=1),
        channels=frozenset({Channel.EMAIL, Channel.SMS}),
        email="late.shopper@example.com",
        phone=PHONE,
    )
    # A worker that recorded its intent and died: sending, and due again.
    PostgresDeliveryLog(pool).start_attempts([delivery_on(late, Channel.EMAIL)], now)
    sms = delivery_on(late, Channel.SMS)
    attempted(pool, sms, now - timedelta(minutes=1), "failed", error="invalid number")
    suppressed = decided(pool, Kind.ORDER_SHIPPED, uuid4(), now, channels=EMAIL)
    attempted(pool, delivery_on(suppressed, Channel.EMAIL), now, "suppressed")

    report = report_of(pool, queue)

    email, in_app, texts, push = (report["channels"][c] for c in ("email", "in_app", "sms", "push"))
    assert (email["queued"], email["retrying"], email["sending"], email["due_now"]) == (1, 0, 1, 2)
    assert 595 <= email["oldest_due_seconds"] < 700  # the queued one, due 10 minutes ago
    assert email["in_queue"] == 2
    assert (email["sent_last_hour"], email["failed_last_hour"]) == (0, 0)  # the bounce is 2 h old
    assert email["suppressed_last_hour"] == 1
    assert (in_app["retrying"], in_app["due_now"], in_app["oldest_due_seconds"]) == (1, 0, None)
    assert (in_app["in_queue"], in_app["sent_last_hour"]) == (1, 1)
    assert (texts["failed_last_hour"], texts["in_queue"]) == (1, 0)
    assert set(push.values()) <= {0, None}
    assert [
        (f["delivery_id"], f["channel"], f["address"], f["error"])
        for f in report["recent_failures"]
    ] == [
        (str(sms), "sms", "+44********89", "invalid number"),
        (str(old_email), "email", "s***@example.com", "bounced"),
    ]

    console = Console(record=True, width=200)
    render(report, console)
    shown = console.export_text()
    assert "+44********89" in shown and "invalid number" in shown
    assert PHONE not in shown and "shopper@example.com" not in shown


def test_only_the_five_latest_failures(
    pool: ConnectionPool[Any], queue: PostgresDeliveryQueue
) -> None:
    now = datetime.now(UTC)
    failed = []
    for minutes in range(7):
        decision = decided(pool, Kind.ORDER_SHIPPED, uuid4(), now, channels=EMAIL)
        failed.append(delivery_on(decision, Channel.EMAIL))
        at = now - timedelta(minutes=minutes)
        attempted(pool, failed[-1], at, "failed", error=f"failure {minutes}")

    report = report_of(pool, queue)

    assert [f["delivery_id"] for f in report["recent_failures"]] == [str(d) for d in failed[:5]]
    assert report["channels"]["email"]["failed_last_hour"] == 7


def test_an_empty_shop_reports_zeros(
    pool: ConnectionPool[Any], queue: PostgresDeliveryQueue
) -> None:
    report = report_of(pool, queue)

    assert report["recent_failures"] == []
    assert all(set(c.values()) <= {0, None} for c in report["channels"].values())
    console = Console(record=True, width=200)
    render(report, console)
    assert "no failed deliveries" in console.export_text()


def test_decisions_are_counted_once_each_look_adding_the_new_ones(
    pool: ConnectionPool[Any], queue: PostgresDeliveryQueue
) -> None:
    now = datetime.now(UTC)
    for _ in range(3):
        decided(pool, Kind.ORDER_SHIPPED, uuid4(), now - timedelta(minutes=5))
    decided(pool, Kind.ORDER_CONFIRMED, uuid4(), now - timedelta(minutes=5))
    registry = CollectorRegistry()
    registry.register(NotificationCollector(queue, pool, cache_seconds=0, settle_seconds=0))

    def decided_total(kind: Kind) -> float | None:
        return registry.get_sample_value("notifications_decided_total", {"kind": kind.value})

    assert (decided_total(Kind.ORDER_SHIPPED), decided_total(Kind.ORDER_CONFIRMED)) == (3, 1)
    assert decided_total(Kind.REFUND_ISSUED) == 0
    assert registry.get_sample_value("notification_queue_depth", {"channel": "email"}) == 4
    decided(pool, Kind.ORDER_SHIPPED, uuid4(), datetime.now(UTC))
    assert decided_total(Kind.ORDER_SHIPPED) == 4
    assert decided_total(Kind.ORDER_SHIPPED) == 4  # a look with nothing new adds nothing


def test_decisions_wait_to_settle(pool: ConnectionPool[Any], queue: PostgresDeliveryQueue) -> None:
    now = datetime.now(UTC)
    decided(pool, Kind.ORDER_SHIPPED, uuid4(), now - timedelta(minutes=5))
    decided(pool, Kind.ORDER_SHIPPED, uuid4(), now)  # may not have committed yet: not counted
    registry = CollectorRegistry()
    registry.register(NotificationCollector(queue, pool, cache_seconds=0))

    assert registry.get_sample_value("notifications_decided_total", {"kind": "order_shipped"}) == 1


def test_looks_are_cached(pool: ConnectionPool[Any], queue: PostgresDeliveryQueue) -> None:
    ticks = iter([0.0, 5.0, 10.0])
    registry = CollectorRegistry()
    registry.register(
        NotificationCollector(queue, pool, settle_seconds=0, monotonic=lambda: next(ticks))
    )

    def shipped() -> float | None:
        return registry.get_sample_value("notifications_decided_total", {"kind": "order_shipped"})

    assert shipped() == 0
    decided(pool, Kind.ORDER_SHIPPED, uuid4(), datetime.now(UTC))
    assert shipped() == 0  # 5 s later: the cached count
    assert shipped() == 1  # 10 s later: looked again
