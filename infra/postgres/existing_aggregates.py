"""Which aggregates an event store already holds, many ids per query: what the
catalog seeder asks before each batch (``commands.seeding.catalog.ExistingAggregates``), so
a rerun adds only what is missing."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.postgres import PostgresAggregateRecorder
from psycopg.sql import SQL, Identifier


def existing_aggregates(app: Application[UUID], ids: Sequence[UUID]) -> set[UUID]:
    """The ids among ``ids`` with a first event (version 1) in ``app``'s events table:
    one primary-key probe per id, in one statement."""
    if not ids:
        return set()
    recorder = app.recorder
    if not isinstance(recorder, PostgresAggregateRecorder):
        raise TypeError(f"{app.name} does not store its events in Postgres")
    statement = SQL(
        "SELECT originator_id FROM {schema}.{table} "
        "WHERE originator_id = ANY(%s) AND originator_version = 1"
    ).format(
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name),
    )
    with recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute(statement, (list(ids),))
        return {row["originator_id"] for row in cursor.fetchall()}
