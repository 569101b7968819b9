"""Rows of the notifier's tables, written as the notifier and the delivery workers
write them: decisions through ``record`` (from ``decide``), attempts and outcomes
through ``PostgresDeliveryLog``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg_pool import ConnectionPool

from commands.notifications.decisions import Decision, Notice, Recipient, decide
from commands.notifications.ports import Outcome
from domain.notifications import Channel, Kind, Preferences
from infra.postgres.notifications import DDL, PostgresDeliveryLog, record

EMAIL_AND_IN_APP = frozenset({Channel.EMAIL, Channel.IN_APP})


@contextmanager
def notify_pool(database_url: str) -> Iterator[ConnectionPool[Any]]:
    """The notifier's tables made in a fresh database, and a pool on it."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(DDL)
    with ConnectionPool(
        database_url, min_size=1, max_size=2, kwargs={"autocommit": True}
    ) as opened:
        yield opened


def decided(
    pool: ConnectionPool[Any],
    kind: Kind,
    user_id: UUID,
    at: datetime,
    *,
    order_id: UUID | None = None,
    channels: frozenset[Channel] = EMAIL_AND_IN_APP,
    email: str = "shopper@example.com",
    phone: str | None = None,
    context: dict[str, Any] | None = None,
    preferences: Mapping[str, Any] | None = None,
) -> Decision:
    """A decision recorded as the notifier records it (its own trigger each time);
    the recipient's ``preferences`` as their profile stores them (default: order
    updates on every channel)."""
    recipient = Recipient(
        user_id=user_id,
        name="Shopper",
        email=email,
        phone=phone,
        active=True,
        preferences=Preferences.from_profile(
            {"order_updates_sms": True} if preferences is None else preferences
        ),
    )
    notice = Notice(
        kind, user_id, {"order_id": str(order_id), **(context or {})}, order_id=order_id
    )
    decision = decide(f"test:{uuid4()}", notice, recipient, at, "http://shop", channels)
    assert decision is not None
    with pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
        record(cursor, decision)
    return decision


def attempted(
    pool: ConnectionPool[Any], delivery_id: UUID, at: datetime, outcome: str, **details: Any
) -> int:
    """One attempt at ``delivery_id``, started and finished at ``at``; its number."""
    log = PostgresDeliveryLog(pool)
    number = log.start_attempts([delivery_id], at)[delivery_id]
    log.record_outcomes([Outcome(delivery_id, number, outcome, **details)], at)
    return number


def delivery_on(decision: Decision, channel: Channel) -> UUID:
    return next(d.id for d in decision.deliveries if d.channel is channel)
