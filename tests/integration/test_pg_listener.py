"""The process's one LISTEN connection: a NOTIFY wakes the channel's subscribers and
no one else, and a connection the server drops is replaced (subscribers are woken
then, so what was committed meanwhile is pulled)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest

from streams.pg_listener import APPLICATION_NAME, ChannelListener

pytestmark = pytest.mark.integration

WAIT = 5.0


@pytest.fixture
def listener(database_url: str) -> Iterator[ChannelListener]:
    running = ChannelListener(database_url)
    try:
        yield running
    finally:
        running.stop()


def notify(database_url: str, channel: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("NOTIFY {0}").format(psycopg.sql.Identifier(channel)))


def test_a_notify_wakes_the_channels_subscribers_only(
    listener: ChannelListener, database_url: str
) -> None:
    orders, also_orders, users = threading.Event(), threading.Event(), threading.Event()
    listener.subscribe("orders_events", orders)
    listener.subscribe("orders_events", also_orders)
    listener.subscribe("users_events", users)

    notify(database_url, "orders_events")

    assert orders.wait(WAIT) and also_orders.wait(WAIT)
    assert not users.wait(0.3)


def test_an_unsubscribed_event_is_not_woken(listener: ChannelListener, database_url: str) -> None:
    wake = threading.Event()
    listener.subscribe("orders_events", wake)
    listener.unsubscribe("orders_events", wake)

    notify(database_url, "orders_events")

    assert not wake.wait(0.3)


def test_a_dropped_connection_is_replaced_and_subscribers_woken(
    listener: ChannelListener, database_url: str
) -> None:
    wake = threading.Event()
    listener.subscribe("orders_events", wake)
    with psycopg.connect(database_url, autocommit=True) as conn:
        dropped = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND datname = current_database()",
            (APPLICATION_NAME,),
        ).fetchall()
    assert dropped == [(True,)]

    assert wake.wait(WAIT), "woken when the connection was lost"
    wake.clear()
    # Listening again: a later NOTIFY still arrives (retried: the reconnect takes a moment).
    for _ in range(50):
        notify(database_url, "orders_events")
        if wake.wait(0.1):
            break
    assert wake.is_set()
