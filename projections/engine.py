"""The projection engine's core, on top of ``eventsourcing.projection``.

A view is a ``PostgresTrackingRecorder`` that lives in one *generation schema*
(``rm_<name>_g<N>``): its tables and its tracking table side by side, so each event
changes rows and advances the tracked position in one transaction. Queries read
through stable views in the ``read`` schema, which ``generations.activate`` points
at the generation to serve; a rebuild fills a new generation and swaps it in.

What the library lacks and this adds: skipping (not failing on) an event already
applied, and batches, where many events share one transaction and one tracking
write (rebuild, catch-up, and live processing: each pull of a follower is a batch).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.projection import Projection
from psycopg import Connection, Cursor
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Identifier

from projections import dead_letters
from projections.nul_safe import make_nul_safe

TRACKING_TABLE = "tracking"
Delivery = tuple[Any, Tracking]
_SCHEMA = re.compile(r"rm_(.+)_g[0-9]+")


def generation_schema(name: str, generation: int) -> str:
    return f"rm_{name}_g{generation}"


class Undecodable:
    """An event the application's mapper could not turn into a domain event (its
    class unknown to this code, say): delivered as this, so that every projection
    dead-letters it instead of the whole log stopping at it."""

    def __init__(self, originator_id: UUID | str, error: str) -> None:
        self.originator_id = originator_id
        self.error = error


class ViewDatastore(PostgresDatastore):
    """Connections for one view generation. Their ``search_path`` is the generation
    schema, so projections name tables unqualified. ``synchronous_commit = off`` is
    safe here: rows and tracking commit together, so a crash that loses the last
    commits only makes the view replay those events. ``jit = off``: projections
    write a few rows per statement, but a generation being built has no statistics
    until it is analysed, so the planner's estimates for a table of a million rows
    crossed ``jit_above_cost`` and each single-row update paid for JIT compilation
    (measured in bench/README.md, "Second pass" of the million-product catalog). Text
    with NUL characters is stored with U+FFFD instead (``projections.nul_safe``)."""

    def after_connect_func(self) -> Callable[[Connection[Any]], None]:
        inner = super().after_connect_func()
        settings = SQL(
            "SET synchronous_commit = off; SET jit = off; SET search_path TO {0}"
        ).format(Identifier(self.schema))

        def after_connect(conn: Connection[Any]) -> None:
            inner(conn)
            conn.execute(settings)
            make_nul_safe(conn)

        return after_connect


@dataclass
class _Batch:
    cursor: Cursor[DictRow]
    application_name: str
    position: int
    parked: dict[UUID, int] = field(default_factory=dict)
    """Aggregates with an open dead letter in this log -> the position it waits behind."""


class View(PostgresTrackingRecorder):
    """A read model's tables in one generation schema, plus its tracking table."""

    name: ClassVar[str]
    follows: ClassVar[tuple[str, ...]]
    """The logs (event stores, by Application name) whose events this view is built
    from; every view declares them, there is no default (``followed_logs``)."""
    tables: ClassVar[dict[str, str]] = {}
    """Table name -> column definitions (the text inside ``CREATE TABLE (...)``)."""
    table_options: ClassVar[dict[str, str]] = {}
    """Table name -> what follows its column list (``WITH (fillfactor = 80)``)."""
    indexes: ClassVar[list[str]] = []
    """``CREATE INDEX`` statements, with ``{schema}`` for the generation schema."""
    serialised: ClassVar[bool] = False
    """Whether writes of different upstream logs take turns: each transaction holds
    a lock on the generation until it commits, so the order in which rows are
    written (a sequence's values, say) is the order in which they commit."""

    def __init__(self, datastore: ViewDatastore) -> None:
        super().__init__(datastore, tracking_table_name=TRACKING_TABLE)
        schema = Identifier(datastore.schema)
        statements = [SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(schema)]
        for table, columns in self.tables.items():
            statements.append(
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0}.{1} ("
                    + columns
                    + ") "
                    + self.table_options.get(table, "")
                ).format(schema, Identifier(table))
            )
        statements += [
            SQL(index.replace("{schema}", "{0}")).format(schema) for index in self.indexes
        ]
        statements += [SQL(ddl).format() for ddl in dead_letters.DDL.split(";")]
        self.sql_create_statements[:0] = statements
        # Per thread: a batch on one thread must not swallow live events of another.
        self._local = threading.local()

    @property
    def schema(self) -> str:
        return self.datastore.schema

    @property
    def projection_name(self) -> str:
        """The projection this generation belongs to (its dead letters' name)."""
        match = _SCHEMA.fullmatch(self.schema)
        return match.group(1) if match else self.schema

    @contextmanager
    def changes(self, tracking: Tracking) -> Iterator[Cursor[DictRow] | None]:
        """A cursor in which to apply the event ``tracking`` names, or None when the
        view has already applied it (a redelivery: change nothing)."""
        batch: _Batch | None = getattr(self._local, "batch", None)
        if batch is not None:
            if (
                tracking.application_name != batch.application_name
                or tracking.notification_id <= batch.position
            ):
                yield None
                return
            yield batch.cursor
            batch.position = tracking.notification_id
            return
        with self.datastore.transaction(commit=True) as cursor:
            self._take_turn(cursor)
            # Tracking first: if it does not advance, nothing else is written.
            cursor.execute(
                self.insert_tracking_statement,
                {
                    "application_name": tracking.application_name,
                    "notification_id": tracking.notification_id,
                },
                prepare=True,
            )
            yield cursor if cursor.fetchone() is not None else None

    def _take_turn(self, cursor: Cursor[DictRow]) -> None:
        if self.serialised:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", (self.schema,), prepare=True
            )

    def insert_tracking(self, tracking: Tracking) -> None:
        """Outside a batch, the library's own (a transaction of its own). Inside one,
        the position only advances the batch, tracked with its other changes when it
        commits; like the library, an event that does not advance it is refused."""
        batch: _Batch | None = getattr(self._local, "batch", None)
        if batch is None:
            super().insert_tracking(tracking)
            return
        if (
            tracking.application_name != batch.application_name
            or tracking.notification_id <= batch.position
        ):
            raise IntegrityError(f"{tracking} does not advance this batch")
        batch.position = tracking.notification_id

    @contextmanager
    def batch(self, application_name: str) -> Iterator[_Batch]:
        """Apply many events of one upstream log in a single transaction, tracking
        only the last. One batch at a time per thread."""
        # Pipeline mode: statements go out without waiting for each answer, so a
        # batch costs three round trips (begin, read the position and the parked
        # aggregates; the changes and the tracking write; commit) however many
        # events it holds.
        with (
            self.datastore.get_connection() as conn,
            conn.pipeline(),
            conn.transaction(),
        ):
            cursor = conn.cursor()
            self._take_turn(cursor)
            name = self.projection_name
            cursor.execute(dead_letters.LOCK_SHARED, (dead_letters.LOCK_NAMESPACE, name))
            parked = conn.cursor(row_factory=tuple_row)  # the view's rows are dicts
            parked.execute(dead_letters.PARKED, (name, application_name), prepare=True)
            start = self._max_tracking_id(application_name, cursor) or 0
            batch = self._local.batch = _Batch(
                cursor, application_name, start, dead_letters.parked(parked.fetchall())
            )
            try:
                yield batch
            finally:
                self._local.batch = None
            if batch.position > start:
                # A cursor of its own: in pipeline mode the library's fetch of the
                # tracking insert's answer must not meet an earlier statement's.
                self._insert_tracking(conn.cursor(), Tracking(application_name, batch.position))

    def park(self, batch: _Batch, tracking: Tracking, originator_id: UUID, error: str) -> None:
        """Dead-letter an event inside ``batch``: its aggregate waits behind an open
        letter (``error`` names which), or it could not be decoded."""
        if tracking.notification_id <= batch.position:
            return  # applied or dead-lettered before: a redelivery
        behind = batch.parked.get(originator_id)
        dead_letters.record(
            batch.cursor,
            self.projection_name,
            tracking.application_name,
            tracking.notification_id,
            originator_id,
            error,
            behind,
        )
        batch.parked.setdefault(originator_id, tracking.notification_id)
        batch.position = tracking.notification_id

    def dead_letter(self, tracking: Tracking, originator_id: UUID, error: str) -> None:
        """Dead-letter an event the projection failed on, moving the tracked position
        past it in the same transaction (nothing when it was past it already)."""
        with self.batch(tracking.application_name) as batch:
            batch.parked.pop(originator_id, None)  # it failed itself: behind nothing
            self.park(batch, tracking, originator_id, error)


class LogsUndeclared(TypeError):
    """A view was started without saying which logs it follows."""


def followed_logs(declaring: type[Any]) -> tuple[str, ...]:
    """The logs a view or a policy class declares it follows; one that declares none
    cannot be started (a silent default would build it from the wrong log)."""
    logs: tuple[str, ...] = getattr(declaring, "follows", ())
    if not logs:
        raise LogsUndeclared(
            f"view {declaring.__name__} ({getattr(declaring, 'name', '?')!r}) declares no "
            "logs: give it `follows = (<application name>, ...)`"
        )
    return logs


TView = TypeVar("TView", bound=View)


class ViewProjection(Projection[TView], Generic[TView]):
    """Maps events to row changes. Subclasses implement ``apply``; events they do
    not care about still advance the tracked position (so waiting on any position
    of the upstream log works)."""

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        with self.view.changes(tracking) as cursor:
            if cursor is not None:
                self.apply(domain_event, cursor)

    def apply(self, event: Any, cursor: Cursor[DictRow]) -> None:
        raise NotImplementedError


TRecorder = TypeVar("TRecorder", bound=TrackingRecorder)


class BatchProjection(Projection[TRecorder], Generic[TRecorder]):
    """A projection that takes a pull's events together, to load or save once for
    many of them; a single event is a batch of one."""

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.process_batch([(domain_event, tracking)])

    def process_batch(self, deliveries: Sequence[Delivery]) -> None:
        raise NotImplementedError


def apply_batch(
    view: TrackingRecorder,
    projection: Projection[Any],
    application_name: str,
    deliveries: Sequence[Delivery],
) -> None:
    """Apply one pull of a log: in one transaction with one tracking write when the
    view is a ``View`` (events of parked aggregates and undecodable ones are
    dead-lettered in it instead), and as one batch when the projection takes
    batches."""
    if not isinstance(view, View):
        _apply(projection, deliveries)
        return
    with view.batch(application_name) as batch:
        run: list[Delivery] = []
        for delivery in deliveries:
            event, tracking = delivery
            behind = batch.parked.get(event.originator_id)
            if behind is None and not isinstance(event, Undecodable):
                run.append(delivery)
                continue
            _apply(projection, run)
            run = []
            error = (
                event.error
                if isinstance(event, Undecodable)
                else f"waits behind {application_name}:{behind}, a dead letter of its aggregate"
            )
            view.park(batch, tracking, event.originator_id, error)
        _apply(projection, run)


def _apply(projection: Projection[Any], deliveries: Sequence[Delivery]) -> None:
    if not deliveries:
        return
    if isinstance(projection, BatchProjection):
        projection.process_batch(deliveries)
    else:
        for domain_event, tracking in deliveries:
            projection.process_event(domain_event, tracking)
