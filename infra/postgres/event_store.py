"""The event store's Postgres recorders, without the library's own retries.

``eventsourcing.postgres`` retries every read and write of the event store ten
times, 0.2 s apart, on any operational error, each attempt waiting up to the pool
timeout: with the database away a command hung for 22 s before failing (issue 13,
D8). Here a failure surfaces at once: a request answers 503 with Retry-After, and
the runners retry in their own supervised loops, with backoff. A connection that
died while idle (the server restarted) is replaced before use by the pool's
pre-ping (``POSTGRES_PRE_PING``), the one case the retries were good for."""

from __future__ import annotations

from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresFactory,
)


class _AggregateRecorder(PostgresAggregateRecorder):
    insert_events = PostgresAggregateRecorder.insert_events.__wrapped__
    select_events = PostgresAggregateRecorder.select_events.__wrapped__


class _ApplicationRecorder(PostgresApplicationRecorder):
    insert_events = PostgresApplicationRecorder.insert_events.__wrapped__
    select_events = PostgresApplicationRecorder.select_events.__wrapped__
    select_notifications = PostgresApplicationRecorder.select_notifications.__wrapped__
    max_notification_id = PostgresApplicationRecorder.max_notification_id.__wrapped__


class Factory(PostgresFactory):
    aggregate_recorder_class = _AggregateRecorder
    application_recorder_class = _ApplicationRecorder
