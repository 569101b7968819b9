"""The notifications' own tables: each decision, each delivery it makes (one channel,
one address) and each attempt at it. The notifier writes decisions and their
deliveries inside its tracking transaction (``record``); delivery workers read and
update them here (``PostgresDeliveryLog``); in the embedded mode the deliveries
table is also the work queue (``PostgresDeliveryQueue``, ``FOR UPDATE SKIP LOCKED``).
An erased person's rows are blanked, not deleted (``PostgresDeliveryLog.forget``):
what was sent when, on which channel, stays on the record without them."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from commands.notifications.decisions import Decision
from commands.notifications.ports import Job, Outcome, Pending
from domain.notifications import ERASED_ADDRESS, ERASED_CONTEXT, Channel, Kind
from domain.users import erased_email
from streams.pg_listener import ChannelListener

DDL = """
CREATE SCHEMA IF NOT EXISTS notify;
CREATE TABLE IF NOT EXISTS notify.notifications (
    id uuid PRIMARY KEY,
    trigger text NOT NULL,
    kind text NOT NULL,
    category text NOT NULL,
    user_id uuid,
    order_id uuid,
    locale text NOT NULL,
    context jsonb NOT NULL,
    decided_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_by_user ON notify.notifications (user_id, decided_at DESC);
CREATE INDEX IF NOT EXISTS notifications_by_time ON notify.notifications (decided_at);
CREATE INDEX IF NOT EXISTS notifications_by_order ON notify.notifications (order_id)
    WHERE order_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS notify.deliveries (
    id uuid PRIMARY KEY,
    notification_id uuid NOT NULL REFERENCES notify.notifications,
    channel text NOT NULL,
    address text NOT NULL,
    state text NOT NULL,
    attempts int NOT NULL DEFAULT 0,
    not_before timestamptz NOT NULL,
    leased_until timestamptz,
    dispatched boolean NOT NULL DEFAULT false,
    provider_message_id text,
    last_error text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON notify.deliveries (channel, not_before)
    WHERE state IN ('queued', 'sending', 'retrying');
CREATE INDEX IF NOT EXISTS deliveries_undispatched ON notify.deliveries (created_at)
    WHERE NOT dispatched;
CREATE INDEX IF NOT EXISTS deliveries_of_notification ON notify.deliveries (notification_id);
CREATE TABLE IF NOT EXISTS notify.attempts (
    delivery_id uuid NOT NULL REFERENCES notify.deliveries,
    attempt int NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    outcome text,
    provider_message_id text,
    error text,
    PRIMARY KEY (delivery_id, attempt)
);
"""

NOTIFY_CHANNEL = "notify_deliveries"
"""NOTIFYed when deliveries are queued, to wake the embedded queue's takers."""

FINAL = ("sent", "failed", "suppressed")
LEASE_SECONDS = 60
"""How long a taken delivery is hidden from other workers (a crashed worker's
deliveries come back after it, as SQS's visibility timeout does)."""
IN_FLIGHT_SECONDS = 30
"""How long a delivery just started (``sending``) is refused to another attempt: SQS
may hand a copy of its message to a second worker meanwhile. Shorter than the lease
and the visibility timeout, so a crashed worker's delivery is sent again after them."""


def record(cursor: Cursor[Any], decision: Decision) -> None:
    """Write ``decision`` and its deliveries in the caller's transaction (the
    notifier's, with its tracking); a decision already recorded changes nothing.
    Nothing is read back, so a batch's statements stay in one pipeline: the ids are
    derived from the trigger, so the deliveries of a decision made before conflict."""
    n = decision.notification
    cursor.execute(
        "INSERT INTO notify.notifications VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (id) DO NOTHING",
        (
            n.id,
            n.trigger,
            n.kind.value,
            n.category.value,
            n.user_id,
            n.order_id,
            n.locale,
            Jsonb(n.context),
            n.decided_at,
        ),
        prepare=True,
    )
    if decision.deliveries:
        cursor.executemany(
            "INSERT INTO notify.deliveries (id, notification_id, channel, address, state, "
            "not_before, created_at, updated_at) VALUES (%s, %s, %s, %s, 'queued', %s, %s, %s) "
            "ON CONFLICT (id) DO NOTHING",
            [
                (d.id, n.id, d.channel.value, d.address, d.not_before, n.decided_at, n.decided_at)
                for d in decision.deliveries
            ],
        )
        cursor.execute(f"NOTIFY {NOTIFY_CHANNEL}")  # collapsed into one at the commit


ERASED_WHY = "recipient erased"
"""The ``last_error`` of a delivery cancelled by the erasure of its recipient."""

_FORGET = [
    # Deliveries not made yet are cancelled (suppressed: final, never resent); the
    # addresses of all blanked as the person's own read once erased; provider errors
    # (which may quote the address) blanked. Only rows still to change are touched,
    # so forgetting again changes nothing.
    "UPDATE notify.deliveries d SET "
    "address = CASE d.channel WHEN 'email' THEN %(email)s WHEN 'sms' THEN %(blank)s "
    "ELSE d.address END, "
    "state = CASE WHEN d.state = ANY(%(final)s) THEN d.state ELSE 'suppressed' END, "
    "last_error = CASE WHEN NOT d.state = ANY(%(final)s) THEN %(why)s "
    "WHEN d.last_error IS NULL OR d.last_error IN (%(blank)s, %(why)s) THEN d.last_error "
    "ELSE %(blank)s END, "
    "leased_until = NULL, updated_at = now() "
    "FROM notify.notifications n WHERE n.id = d.notification_id AND n.user_id = %(user)s "
    "AND (NOT d.state = ANY(%(final)s) "
    "OR (d.channel = 'email' AND d.address <> %(email)s) "
    "OR (d.channel = 'sms' AND d.address <> %(blank)s) "
    "OR d.last_error NOT IN (%(blank)s, %(why)s))",
    "UPDATE notify.attempts a SET error = %(blank)s FROM notify.deliveries d "
    "JOIN notify.notifications n ON n.id = d.notification_id "
    "WHERE a.delivery_id = d.id AND n.user_id = %(user)s AND a.error <> %(blank)s",
    "UPDATE notify.notifications SET context = %(erased)s "
    "WHERE user_id = %(user)s AND context <> %(erased)s",
]


class PostgresDeliveryLog:
    def __init__(
        self, pool: ConnectionPool[Any], in_flight_seconds: float = IN_FLIGHT_SECONDS
    ) -> None:
        self._pool = pool
        self._in_flight = timedelta(seconds=in_flight_seconds)

    def pending(self, delivery_ids: Sequence[UUID]) -> list[Pending]:
        with self._pool.connection() as conn:
            rows = (
                conn.cursor(row_factory=dict_row)
                .execute(
                    "SELECT d.id, d.notification_id, n.kind, d.channel, n.user_id, d.address, "
                    "n.locale, n.context, d.state, d.attempts, d.not_before, n.decided_at "
                    "FROM notify.deliveries d JOIN notify.notifications n "
                    "ON n.id = d.notification_id "
                    "WHERE d.id = ANY(%s) AND d.state <> ALL(%s)",
                    (list(delivery_ids), list(FINAL)),
                )
                .fetchall()
            )
        return [
            Pending(
                delivery_id=r["id"],
                notification_id=r["notification_id"],
                kind=Kind(r["kind"]),
                channel=Channel(r["channel"]),
                user_id=r["user_id"],
                address=r["address"],
                locale=r["locale"],
                context=r["context"],
                state=r["state"],
                attempts=r["attempts"],
                not_before=r["not_before"],
                created_at=r["decided_at"],
            )
            for r in rows
        ]

    def start_attempts(self, delivery_ids: Sequence[UUID], at: datetime) -> dict[UUID, int]:
        if not delivery_ids:
            return {}
        with self._pool.connection() as conn, conn.transaction():
            rows = conn.execute(
                "UPDATE notify.deliveries SET state = 'sending', attempts = attempts + 1, "
                "updated_at = %s WHERE id = ANY(%s) AND state <> ALL(%s) "
                "AND NOT (state = 'sending' AND updated_at > %s) RETURNING id, attempts",
                (at, list(delivery_ids), list(FINAL), at - self._in_flight),
            ).fetchall()
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO notify.attempts (delivery_id, attempt, started_at) "
                    "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                    [(delivery_id, attempt, at) for delivery_id, attempt in rows],
                )
        return dict(rows)

    def record_outcomes(self, outcomes: Sequence[Outcome], at: datetime) -> None:
        if not outcomes:
            return
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(
                "UPDATE notify.attempts SET finished_at = %s, outcome = %s, "
                "provider_message_id = %s, error = %s WHERE delivery_id = %s AND attempt = %s",
                [
                    (at, o.outcome, o.provider_message_id, o.error, o.delivery_id, o.attempt)
                    for o in outcomes
                ],
            )
            cursor.executemany(
                "UPDATE notify.deliveries SET state = %s, provider_message_id = "
                "coalesce(%s, provider_message_id), last_error = %s, "
                "not_before = coalesce(%s, not_before), leased_until = NULL, updated_at = %s "
                "WHERE id = %s AND state <> ALL(%s)",
                [
                    (
                        o.outcome,
                        o.provider_message_id,
                        o.error,
                        o.retry_at,
                        at,
                        o.delivery_id,
                        list(FINAL),
                    )
                    for o in outcomes
                ],
            )

    def forget(self, user_id: UUID, cursor: Cursor[Any]) -> None:
        """Blank what the user's notifications kept of them (erased, ADR 0024) and
        cancel their deliveries still to go. Last of the notifier's forgets: the
        others find the person's addresses here."""
        params = {
            "user": user_id,
            "email": erased_email(user_id),
            "blank": ERASED_ADDRESS,
            "why": ERASED_WHY,
            "final": list(FINAL),
            "erased": Jsonb(dict(ERASED_CONTEXT)),
        }
        for statement in _FORGET:
            cursor.execute(statement, params)

    def resend(self, delivery_id: UUID, at: datetime) -> bool:
        """Queue a failed delivery again (an operator's resend); False unless it failed."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "UPDATE notify.deliveries SET state = 'queued', not_before = %s, "
                "leased_until = NULL, dispatched = false, updated_at = %s "
                "WHERE id = %s AND state = 'failed' RETURNING id",
                (at, at, delivery_id),
            ).fetchone()
            if row is not None:
                conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")
        return row is not None


class PostgresDeliveryQueue:
    """The embedded mode's queue: the deliveries table itself. ``take`` leases due
    rows (``FOR UPDATE SKIP LOCKED``: workers never take the same one); a lease that
    runs out (a crashed worker) makes its deliveries due again."""

    def __init__(
        self, pool: ConnectionPool[Any], conninfo: str, lease_seconds: float = LEASE_SECONDS
    ) -> None:
        self._pool = pool
        self._conninfo = conninfo
        self._lease_seconds = lease_seconds
        self._lock = threading.Lock()
        self._listener: ChannelListener | None = None
        """One LISTEN connection for every channel's taker, opened by the first wait."""
        self._wakes: dict[Channel, threading.Event] = {}

    def take(self, channel: Channel, limit: int, wait_seconds: float) -> list[Job]:
        wake = self._wake(channel) if wait_seconds > 0 else None
        if wake is not None:
            wake.clear()  # before the lease: a delivery queued after it sets it again
        jobs = self._lease(channel, limit)
        if jobs or wake is None:
            return jobs
        wake.wait(wait_seconds)
        return self._lease(channel, limit)

    def _lease(self, channel: Channel, limit: int) -> list[Job]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "UPDATE notify.deliveries SET leased_until = now() + make_interval(secs => %s) "
                "WHERE id IN (SELECT id FROM notify.deliveries "
                "WHERE channel = %s AND state IN ('queued', 'sending', 'retrying') "
                "AND not_before <= now() AND (leased_until IS NULL OR leased_until < now()) "
                "ORDER BY not_before LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id",
                (self._lease_seconds, channel.value, limit),
                prepare=True,
            ).fetchall()
        return [Job(delivery_id=row[0], receipt="") for row in rows]

    def _wake(self, channel: Channel) -> threading.Event:
        with self._lock:
            wake = self._wakes.get(channel)
            if wake is not None:
                return wake
            if self._listener is None:
                self._listener = ChannelListener(self._conninfo)
            wake = self._wakes[channel] = threading.Event()
        self._listener.subscribe(NOTIFY_CHANNEL, wake)
        return wake

    def finish(self, job: Job) -> None:
        """Nothing to do: the outcome, recorded in the log, took it off the queue."""

    def retry(self, job: Job, delay_seconds: float) -> None:
        """Hidden for the delay by its lease, in the database's time, as SQS hides a
        message. ``not_before`` stays what the deliverer set by its own clock: moved
        by the database's clock instead, a delivery offered back to a deliverer whose
        clock is behind the database's was offered back again each time it came due."""
        with self._pool.connection() as conn:
            conn.execute(
                "UPDATE notify.deliveries SET leased_until = now() + make_interval(secs => %s) "
                "WHERE id = %s",
                (max(0.0, delay_seconds), job.delivery_id),
            )

    def depth(self) -> dict[Channel, int]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT channel, count(*) FROM notify.deliveries "
                "WHERE state IN ('queued', 'sending', 'retrying') GROUP BY channel"
            ).fetchall()
        found = dict(rows)
        return {channel: found.get(channel.value, 0) for channel in Channel}

    def close(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            self._wakes.clear()
        if listener is not None:
            listener.stop()
