"""The audit view's history and past states (``projections.audit.history``), read from
each log's events table in Postgres and decoded by that log's own mapper, so that
encrypted state reads decrypted and old events are upcast as everywhere else.

A page of history is one primary-key range scan (``originator_id``, versions after
the cursor). A state at a version is the Application's repository at that version
(from a snapshot where there is one); at a time, the events are read in order until
one was recorded after it (the time is inside the state, so it cannot be a query)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.utils import resolve_topic
from psycopg.sql import SQL, Identifier

from domain.actors import actor_of
from projections.audit.history import (
    AUDITED,
    AuditedKind,
    HistoryEntry,
    HistoryPage,
    NoSuchAggregate,
    StateAt,
)
from projections.audit.plain import aggregate_state, event_data

SCAN_PAGE = 500
"""Events decoded per query when looking for the version at a time."""


class PostgresAggregateHistory:
    def __init__(self, apps: Mapping[str, Application[Any]]) -> None:
        """``apps``: every log by name (``Container.applications()``)."""
        self._apps = dict(apps)

    def history(
        self, kind: AuditedKind, aggregate_id: UUID, *, after: int, limit: int
    ) -> HistoryPage:
        app = self._checked(kind, aggregate_id)
        rows = self._rows(app, aggregate_id, after, limit + 1)
        more = len(rows) > limit
        entries = [self._entry(app, aggregate_id, row) for row in rows[:limit]]
        return HistoryPage(app.name, entries, entries[-1].version if more else None)

    def state_at(
        self,
        kind: AuditedKind,
        aggregate_id: UUID,
        *,
        version: int | None = None,
        as_of: datetime | None = None,
    ) -> StateAt:
        app = self._checked(kind, aggregate_id)
        last = self._last_version(app, aggregate_id)
        if as_of is not None:
            version = self._version_at(app, aggregate_id, as_of)
            if version is None:
                raise NoSuchAggregate(f"{kind.value} {aggregate_id} did not exist at {as_of}")
        elif version is None:
            version = last
        elif version > last:
            raise NoSuchAggregate(
                f"{kind.value} {aggregate_id} has no version {version} (its last is {last})"
            )
        aggregate: Any = app.repository.get(aggregate_id, version=version)
        return StateAt(
            app.name, aggregate.version, aggregate.modified_on, last, aggregate_state(aggregate)
        )

    # --- reading the events table ---------------------------------------------------

    def _checked(self, kind: AuditedKind, aggregate_id: UUID) -> Application[Any]:
        """The log of ``kind``, once its first event shows this id is of that kind."""
        audited = AUDITED[kind]
        app = self._apps[audited.log]
        first = self._rows(app, aggregate_id, 0, 1)
        if first and first[0][0] == 1:
            created = self._event(app, aggregate_id, first[0])
            topic = getattr(created, "originator_topic", None)
            if isinstance(topic, str) and issubclass(resolve_topic(topic), audited.aggregate):
                return app
        raise NoSuchAggregate(f"no {kind.value} {aggregate_id}")

    @staticmethod
    def _rows(
        app: Application[Any], aggregate_id: UUID, after: int, limit: int
    ) -> list[tuple[int, str, bytes, int]]:
        recorder = app.recorder
        if not isinstance(recorder, PostgresAggregateRecorder):
            raise TypeError(f"{app.name} does not store its events in Postgres")
        statement = SQL(
            "SELECT originator_version, topic, state, notification_id FROM {schema}.{table} "
            "WHERE originator_id = %s AND originator_version > %s "
            "ORDER BY originator_version LIMIT %s"
        ).format(
            schema=Identifier(recorder.datastore.schema),
            table=Identifier(recorder.events_table_name),
        )
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (aggregate_id, after, limit))
            return [
                (
                    int(row["originator_version"]),
                    str(row["topic"]),
                    bytes(row["state"]),
                    int(row["notification_id"]),
                )
                for row in cursor.fetchall()
            ]

    @staticmethod
    def _event(app: Application[Any], aggregate_id: UUID, row: tuple[int, str, bytes, int]) -> Any:
        version, topic, state, _ = row
        return app.mapper.to_domain_event(StoredEvent(aggregate_id, version, topic, state))

    def _entry(
        self, app: Application[Any], aggregate_id: UUID, row: tuple[int, str, bytes, int]
    ) -> HistoryEntry:
        event = self._event(app, aggregate_id, row)
        return HistoryEntry(
            version=row[0],
            position=row[3],
            type=type(event).__qualname__,
            at=event.timestamp,
            actor=actor_of(event),
            data=event_data(event),
        )

    def _events(self, app: Application[Any], aggregate_id: UUID) -> Iterator[Any]:
        after = 0
        while rows := self._rows(app, aggregate_id, after, SCAN_PAGE):
            for row in rows:
                yield self._event(app, aggregate_id, row)
            after = rows[-1][0]

    def _version_at(self, app: Application[Any], aggregate_id: UUID, as_of: datetime) -> int | None:
        found = None
        for event in self._events(app, aggregate_id):
            if event.timestamp > as_of:
                break
            found = int(event.originator_version)
        return found

    @staticmethod
    def _last_version(app: Application[Any], aggregate_id: UUID) -> int:
        recorder = app.recorder
        assert isinstance(recorder, PostgresAggregateRecorder)
        statement = SQL(
            "SELECT max(originator_version) AS last FROM {schema}.{table} WHERE originator_id = %s"
        ).format(
            schema=Identifier(recorder.datastore.schema),
            table=Identifier(recorder.events_table_name),
        )
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (aggregate_id,))
            row = cursor.fetchone()
        return int(row["last"]) if row and row["last"] is not None else 0
