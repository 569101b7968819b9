"""Comparing what the workers built with a rebuild from the event store."""

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row
from psycopg.sql import SQL, Identifier

from domain.users import User
from infra.wiring.process import Container
from projections import generations
from projections.engine import generation_schema
from projections.positions import tracked_position
from streams.embedded import ProjectionSpec
from streams.replay import catch_up

REBUILT = 99
"""The generation a test rebuilds every read model into, beside the served one."""


def heads(container: Container) -> dict[str, int]:
    return {app.name: app.recorder.max_notification_id() or 0 for app in container.applications()}


def lagging(container: Container) -> dict[str, dict[str, int]]:
    """Projection -> log -> how far behind the log's head its served view is."""
    head = heads(container)
    behind: dict[str, dict[str, int]] = {}
    with container.pool.connection() as conn:
        for spec in container.specs:
            for app_class in spec.upstream:
                lag = head[app_class.name] - tracked_position(conn, spec.name, app_class.name)
                if lag:
                    behind.setdefault(spec.name, {})[app_class.name] = lag
    return behind


def contents(container: Container, spec: ProjectionSpec, generation: int) -> dict[str, Any]:
    schema = generation_schema(spec.name, generation)
    out = {}
    with container.pool.connection() as conn:
        cursor = conn.cursor(row_factory=dict_row)
        for table in spec.tables:
            cursor.execute(SQL("SELECT * FROM {0}").format(Identifier(schema, table)))
            # A revision numbers a row's changes in commit order: bookkeeping of the
            # change feed, which differs with the order the logs were applied in.
            rows = [{k: v for k, v in r.items() if k != "revision"} for r in cursor.fetchall()]
            out[table] = sorted(rows, key=lambda r: [str(v) for v in r.values()])
    return out


def served_and_rebuilt(container: Container) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every read model as served, and as a rebuild from the event store makes it."""
    apps = {app.name: app for app in container.applications()}
    with container.pool.connection() as conn:
        active = generations.active_generations(conn)
    served, rebuilt = {}, {}
    for spec in container.specs:
        if not spec.tables:
            continue
        view = spec.make_view(REBUILT)
        projection = spec.make_projection(view)
        for app_class in spec.upstream:
            catch_up(apps[app_class.name], view, projection)
        view.datastore.close()  # type: ignore[attr-defined]
        served[spec.name] = contents(container, spec, active[spec.name])
        rebuilt[spec.name] = contents(container, spec, REBUILT)
    return served, rebuilt


def mails_and_links_issued(container: Container) -> tuple[int, int]:
    """Mails in the mailbox, and the links the users log issued (one mail each)."""
    app = container.users_app
    issued = sum(
        isinstance(app.mapper.to_domain_event(n), User.TokenIssued)
        for n in app.recorder.select_notifications(start=1, limit=1_000_000)
    )
    with container.pool.connection() as conn:
        row = conn.execute("SELECT count(*) FROM public.mailbox").fetchone()
    assert row is not None
    return int(row[0]), issued
