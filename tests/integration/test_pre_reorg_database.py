"""A database written by the code before the module reorganisation (issue 14) still
loads and replays with the code of now.

``tests/fixtures/pre_reorg/`` holds a plain ``pg_dump`` of a shop that commit
``ac1a7e7`` ran through a whole history over HTTP (its ``README.md`` lists it, and
``make_fixture.py`` made it), and ``expected.json``: what each read model held,
as row counts and digests, and the tracking positions every projection and policy
had reached. Restored into a fresh database, it is opened by today's wiring:

* every stored topic still resolves (the event classes, the aggregates' classes in
  the created events' state, the library's snapshot class and the snapshotted
  aggregate's class in its state);
* every aggregate of every log loads through its Application (snapshot included);
* the embedded runner resumes every projection and policy from the tracking records
  the old code wrote: nothing is done twice (no second mail, no second payment, no
  event appended by the saga), and the read models are unchanged;
* every rebuildable read model, replayed from the events into a new generation,
  has the digests the old code's had;
* the runner then moves on to the rebuilt generations and follows new events.
"""

from __future__ import annotations

import gzip
import json
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.application import Application, project_aggregate
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import TrackingRecorder
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic, resolve_topic
from psycopg.conninfo import conninfo_to_dict
from psycopg.sql import SQL, Identifier

import streams.embedded
import streams.replay
from domain.actors import UNKNOWN_ACTOR
from infra.entrypoints.rebuild import rebuild
from infra.entrypoints.status import log_head, projection_status
from infra.postgres.aggregate_history import PostgresAggregateHistory
from infra.settings import Settings
from infra.wiring.process import Container
from projections.analytics.views import ANALYTICS_VIEWS
from projections.audit.history import AuditedKind
from projections.engine import Delivery
from projections.positions import tracked_position
from streams.poison import Failures, apply_guarded
from tests.support.polling import eventually
from tests.support.users_client import STRONG_PASSWORD

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "pre_reorg"
DUMP = FIXTURE / "pre_reorg.sql.gz"
EXPECTED: dict[str, Any] = json.loads((FIXTURE / "expected.json").read_text())
MIGRATION_LOG = "__migration__"
"""The row ``eventsourcing`` writes in every tracking table: not a log."""
SIDE_EFFECT_TABLES = [
    "mailbox",
    "payment_gateway_payments",
    "payment_gateway_requests",
    "idempotency_keys",
    "checkout_payment_methods",
    "dead_letters",
]
"""Written by commands and policies, never rebuilt: a policy that acted again on an
old event would add rows to them."""


def restore(conninfo: str) -> None:
    """The dump into the (empty) database of ``conninfo``, with psql, as
    ``make_fixture.py`` checked it restores."""
    with gzip.open(DUMP, "rb") as dump:
        done = subprocess.run(
            ["psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", "-f", "-", "-d", conninfo],
            input=dump.read(),
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode(errors="replace")


@pytest.fixture
def settings(settings: Settings, postgres_server: str) -> Iterator[Settings]:
    """The shared ``settings`` on a database the dump is restored into (so the
    shared ``container`` bootstraps and migrates on it); two pooled connections per
    pool, as the fixture was made with. The database is dropped afterwards."""
    assert settings.database_url is not None
    restore(settings.database_url)
    yield settings.model_copy(update={"db_pool_size": 2})
    name = str(conninfo_to_dict(settings.database_url)["dbname"])
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(SQL("DROP DATABASE IF EXISTS {0} WITH (FORCE)").format(Identifier(name)))


# --- what the database holds ---------------------------------------------------------


def stored_topics(conn: psycopg.Connection[Any]) -> dict[str, set[str]]:
    """Every topic stored, by where: the ``topic`` column of each event and snapshot
    table, the ``originator_topic`` of the created events' state and the ``topic``
    of the snapshots' state (JSON in bytea, unencrypted, uncompressed)."""
    found: dict[str, set[str]] = {}
    tables = sorted(EXPECTED["event_tables"]) + sorted(EXPECTED["snapshot_tables"])
    for table in tables:
        column = Identifier("public", table)
        for topic, where in conn.execute(
            SQL(
                "SELECT DISTINCT topic, 'topic' FROM {0} "
                "UNION SELECT DISTINCT convert_from(state, 'UTF8')::jsonb ->> 'originator_topic', "
                "'state.originator_topic' FROM {0} "
                "UNION SELECT DISTINCT convert_from(state, 'UTF8')::jsonb ->> 'topic', "
                "'state.topic' FROM {0}"
            ).format(column)
        ):
            if topic is not None:
                found.setdefault(topic, set()).add(f"public.{table}.{where}")
    return found


def digest(conn: psycopg.Connection[Any], view: str, columns: list[str]) -> tuple[int, str]:
    """As ``expected.json`` computed it: ``md5(string_agg(ROW(<columns>)::text, '|'
    ORDER BY ROW(<columns>)::text))`` over ``read.<view>``, whichever generation it
    serves (README.md, "expected.json")."""
    row_expr = SQL("ROW({0})::text").format(SQL(", ").join(Identifier(c) for c in columns))
    row = conn.execute(
        SQL(
            "SELECT count(*), coalesce(md5(string_agg(r, '|' ORDER BY r)), md5('')) "
            "FROM (SELECT {0} AS r FROM {1}) t"
        ).format(row_expr, Identifier("read", view))
    ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def changed_read_models(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Each read model whose rows differ from ``expected.json``'s: (rows, md5) now
    and then."""
    changed = {}
    for view, entry in sorted(EXPECTED["read_models"].items()):
        now = digest(conn, view, entry["columns"])
        if now != (entry["rows"], entry["md5"]):
            changed[view] = {"now": now, "expected": (entry["rows"], entry["md5"])}
    return changed


def counts(conn: psycopg.Connection[Any], tables: list[str]) -> dict[str, int]:
    result = {}
    for table in tables:
        row = conn.execute(
            SQL("SELECT count(*) FROM {0}").format(Identifier("public", table))
        ).fetchone()
        assert row is not None
        result[table] = int(row[0])
    return result


NOTIFIER_FOLLOWS_NEWLY = ("ordering", "inventory", "reviews")
"""The users area's mail policy (``user_emails``) became the notifications area's
notifier: it carries on from the old policy's users position and starts the logs it
newly follows at their heads (a shop gaining notifications does not mail its past)."""


VIEWS_FOLLOW_NEWLY = {("orders", "users")}
"""(View, log) pairs newer than the fixture: the orders view follows the users log
for erasures (ADR 0024) and, as any view given a log, catches up on it from its
start (an erasure made before must reach it): nothing of the old code's there."""


TABLES_ADDED_SINCE = {"order_timeline_actors", "order_shopper_notes", "orders_erased_users"}
"""Read-model tables newer than the fixture: made in the old generations by migrate
(``Container.ensure_generation``), filled by the rebuild; not in its digests."""


def expected_positions() -> dict[str, dict[str, int]]:
    """Projection or policy name -> log -> the position the old code had reached."""
    positions: dict[str, dict[str, int]] = {}
    for table, rows in EXPECTED["tracking_positions"].items():
        name = table.removeprefix("rm_").removesuffix("_g1.tracking")
        positions[name] = {
            r["application_name"]: r["notification_id"]
            for r in rows
            if r["application_name"] != MIGRATION_LOG
        }
    heads = {log: EXPECTED["event_tables"][f"{log}_events"] for log in NOTIFIER_FOLLOWS_NEWLY}
    positions["notifier"] = positions.pop("user_emails") | heads
    return positions


NEW_VIEWS = frozenset(view.name for view, _ in ANALYTICS_VIEWS)
"""Read models added since the fixture was made: they start empty and catch up from
the start of the logs, as any new view does, so they are not the old code's."""


def expected_specs() -> set[str]:
    return set(EXPECTED["projection_generations"]) - {"user_emails"} | {"notifier"} | NEW_VIEWS


def old_positions(container: Container) -> dict[str, dict[str, int]]:
    return {
        name: {log: n for log, n in logs.items() if (name, log) not in VIEWS_FOLLOW_NEWLY}
        for name, logs in tracked_positions(container).items()
        if name not in NEW_VIEWS
    }


def tracked_positions(container: Container) -> dict[str, dict[str, int]]:
    """Where each projection and policy has got to in each log it follows, through
    ``read.<name>__tracking`` (the generation served)."""
    with container.pool.connection() as conn:
        return {
            spec.name: {
                app.name: tracked_position(conn, spec.name, app.name) for app in spec.upstream
            }
            for spec in container.specs
        }


def all_caught_up(container: Container) -> bool:
    with container.pool.connection() as conn:
        lagging = [s for s in projection_status(conn, container.specs) if s.lag]
    assert not lagging, lagging
    return True


def everything_running(container: Container) -> bool:
    """Every projection and policy caught up from its tracking and following its logs
    (the runner sets a projection running once its catch-up is done)."""
    assert container.runner is not None
    states = {s.name: s for s in container.runner.loops.states()}
    waiting = [spec.name for spec in container.specs if not states[spec.name].running]
    assert not waiting, (waiting, container.background_errors())
    return True


def record_applied(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, list[int]]]:
    """Every batch the runner applies from now on (its catch-up's and its
    followers'), as (projection, log, notification ids): the policies dedupe their
    side effects, so counting those alone would not show an event handled twice."""
    applied: list[tuple[str, str, list[int]]] = []

    def recording(
        view: TrackingRecorder,
        projection: Projection[Any],
        log_name: str,
        deliveries: Sequence[Delivery],
        failures: Failures,
    ) -> None:
        name = str(getattr(view, "projection_name", type(projection).__name__))
        applied.append((name, log_name, [t.notification_id for _, t in deliveries]))
        apply_guarded(view, projection, log_name, deliveries, failures)

    monkeypatch.setattr(streams.replay, "apply_guarded", recording)
    monkeypatch.setattr(streams.embedded, "apply_guarded", recording)
    return applied


# --- the stored topics ---------------------------------------------------------------


def test_every_topic_stored_by_the_old_code_still_resolves(settings: Settings) -> None:
    assert settings.database_url is not None
    with psycopg.connect(settings.database_url) as conn:
        found = stored_topics(conn)
    column_topics = {
        t["topic"]
        for entries in EXPECTED["event_topics"].values()
        for t in entries  # the fixture's own record of the ``topic`` columns
    }
    assert column_topics <= found.keys(), column_topics - found.keys()
    unresolved = {}
    for topic, where in sorted(found.items()):
        try:
            resolve_topic(topic)
        except Exception as error:  # noqa: BLE001 - each reported, then failed together
            unresolved[topic] = f"{sorted(where)}: {type(error).__name__}: {error}"
    assert not unresolved, (
        "topics stored by the pre-reorganisation code no longer resolve; register an "
        "alias for each (eventsourcing.utils.register_topic(old_topic, cls)):\n"
        + "\n".join(f"  {topic} (in {why})" for topic, why in unresolved.items())
    )
    assert get_topic(Snapshot) in found


# --- the whole database --------------------------------------------------------------


def load_every_aggregate(app: Application[Any]) -> dict[UUID, Any]:
    """Every notification of ``app``'s log decoded, then every aggregate it holds got
    through the repository (from its snapshot, if it has one) at its last version."""
    versions: dict[UUID, int] = {}
    start = 1
    while True:
        page = app.recorder.select_notifications(start=start, limit=100)
        if not page:
            break
        for notification in page:
            event = app.mapper.to_domain_event(notification)
            versions[event.originator_id] = max(
                versions.get(event.originator_id, 0), event.originator_version
            )
        start = page[-1].id + 1
    assert versions or app.name == "notifications", f"{app.name}: an empty log"
    aggregates = {}
    for aggregate_id, version in versions.items():
        aggregate: Any = app.repository.get(aggregate_id)
        assert aggregate.version == version, (app.name, aggregate_id, aggregate.version)
        aggregates[aggregate_id] = aggregate
    return aggregates


def check_snapshots(app: Application[Any], aggregates: dict[UUID, Any]) -> int:
    """Each snapshot of ``app`` decodes to ``eventsourcing.domain:Snapshot``, and the
    aggregate made from it (and the later events) equals the one replayed from every
    event."""
    if app.snapshots is None:
        return 0
    seen = 0
    for aggregate_id, aggregate in aggregates.items():
        snapshots = list(app.snapshots.get(aggregate_id, desc=True, limit=1))
        if not snapshots:
            continue
        snapshot = snapshots[0]
        assert type(snapshot) is Snapshot, type(snapshot)
        from_snapshot = snapshot.mutate(None)
        assert type(from_snapshot) is type(aggregate), snapshot.topic
        replayed: Any = project_aggregate(None, app.events.get(aggregate_id))
        assert replayed == aggregate, (app.name, aggregate_id)
        seen += 1
    return seen


def test_the_old_database_loads_resumes_and_rebuilds(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs = {spec.name: spec for spec in container.specs}
    assert set(specs) == expected_specs(), sorted(specs)
    # user_emails's row stays in the registry, no longer served: its tracking is read.
    new = {"notifier": 1} | dict.fromkeys(NEW_VIEWS, 1)
    assert container.active_generations() == EXPECTED["projection_generations"] | new, (
        "migrate changed the generations the old code served"
    )
    with container.pool.connection() as conn:
        before = counts(conn, SIDE_EFFECT_TABLES)
        logs_before = {log: log_head(conn, log) for log in EXPECTED["applications"]}
        assert not changed_read_models(conn), "the restore, or migrate, changed a read model"
    assert before == {t: EXPECTED["other_public_tables"][t] for t in SIDE_EFFECT_TABLES}
    assert logs_before == {
        app: EXPECTED["event_tables"][f"{app}_events"] for app in EXPECTED["applications"]
    }

    # (a) Every aggregate of every log, through today's Applications.
    apps = container.applications()
    # The notifications area's log (its delivery outcomes) is new, and empty there.
    assert sorted(app.name for app in apps) == sorted([*EXPECTED["applications"], "notifications"])
    snapshots = 0
    for app in apps:
        aggregates = load_every_aggregate(app)
        snapshots += check_snapshots(app, aggregates)
    assert snapshots == sum(EXPECTED["snapshot_tables"].values())

    # (c) The runner resumes every projection and policy where the old code's
    # tracking records say it was: nothing is replayed, so nothing is done twice.
    assert old_positions(container) == expected_positions()
    with monkeypatch.context() as patch:
        applied = record_applied(patch)
        container.start_projections()
        eventually(lambda: everything_running(container), "every projection to start")
    again = [
        batch
        for batch in applied
        if batch[0] not in NEW_VIEWS and (batch[0], batch[1]) not in VIEWS_FOLLOW_NEWLY
    ]
    assert not again, f"old events handled again on resuming: {again}"
    assert old_positions(container) == expected_positions()
    tracked = tracked_positions(container)
    for name, log in VIEWS_FOLLOW_NEWLY:
        assert tracked[name][log] == EXPECTED["event_tables"][f"{log}_events"], (name, log)
    with container.pool.connection() as conn:
        assert counts(conn, SIDE_EFFECT_TABLES) == before, "a policy acted again"
        assert {log: log_head(conn, log) for log in logs_before} == logs_before, (
            "an event was appended on resuming (the saga or the sweep acted again)"
        )
        assert not changed_read_models(conn), "resuming changed a read model"
    assert not container.background_errors()

    # (b) Every rebuildable read model replayed from the events by today's code into
    # a new generation (the runner goes on meanwhile, as it would in production).
    rebuildable = [spec for spec in container.specs if spec.rebuildable]
    tables = {
        table for spec in rebuildable for table in spec.tables if spec.name not in NEW_VIEWS
    } - TABLES_ADDED_SINCE
    assert tables == set(EXPECTED["read_models"]), sorted(tables ^ set(EXPECTED["read_models"]))
    for spec in rebuildable:
        assert rebuild(container, spec.name) == 2
    with container.pool.connection() as conn:
        changed = changed_read_models(conn)
    assert not changed, f"rebuilt from the old events, these differ: {changed}"
    generations = container.active_generations()
    assert {name for name, g in generations.items() if g == 2} == {s.name for s in rebuildable}

    # The runner follows the rebuilt generations (and the policies their old
    # tracking) on to a new event: one new account, one mail, once.
    user_id = uuid4()
    email = f"after-reorg-{user_id.hex[:8]}@example.com"
    container.user_commands.register(user_id, email, STRONG_PASSWORD, "After Reorg")
    eventually(lambda: all_caught_up(container), "every projection to reach the new head")

    def mails() -> int:
        with container.pool.connection() as conn:
            row = conn.execute(
                "SELECT count(*) FROM public.mailbox WHERE recipient = %s", (email,)
            ).fetchone()
        assert row is not None and row[0] >= 1
        return int(row[0])

    assert eventually(mails, "the new account's mail") == 1
    with container.pool.connection() as conn:
        after = counts(conn, SIDE_EFFECT_TABLES)
    assert after == {**before, "mailbox": before["mailbox"] + 1}, after
    assert not container.background_errors()


# --- the audit view over events stored before actors were -----------------------------


def test_old_events_read_as_unknown_actors_in_the_audit_view(container: Container) -> None:
    history = PostgresAggregateHistory({app.name: app for app in container.applications()})
    for name, order_id in EXPECTED["scenario"]["orders"].items():
        page = history.history(AuditedKind.ORDER, UUID(order_id), after=0, limit=100)
        assert page.entries, name
        assert {entry.actor for entry in page.entries} == {UNKNOWN_ACTOR}, name
        assert page.entries[0].type == "Order.Placed"
        placed = history.state_at(AuditedKind.ORDER, UUID(order_id), version=1)
        assert placed.state["status"] == "placed"
        then = history.state_at(AuditedKind.ORDER, UUID(order_id), as_of=page.entries[0].at)
        assert then.version >= 1
        now = history.state_at(AuditedKind.ORDER, UUID(order_id))
        assert now.version == now.last_version == page.entries[-1].version
