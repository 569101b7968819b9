"""Rebuild a projection from position 0 into a fresh generation, then swap it in.

The running API keeps serving the old generation throughout; the swap is one
transaction (see ``projections.generations``), after which the embedded runner
of any running process moves on to the new generation by itself. Before the swap
the new generation is compacted and analysed: a replay writes each row several
times, which leaves most of the heap dead rows (bench/README.md, "Second pass" of
the million-product catalog), and a generation served without statistics, or with
its indexes pointing at every dead version, is planned and searched badly
(autovacuum may be off, or not have come round to it).
Nothing reads or writes the generation before the swap, so its exclusive locks
cost nothing."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg.sql import SQL, Identifier

from infra.wiring.process import Container
from infra.wiring.views import VIEWS, make_view
from projections import generations
from projections.engine import generation_schema
from streams.poison import Failures
from streams.replay import catch_up

Progress = Callable[[str, int, int], None]
KEEP_PREVIOUS = 1  # generations kept after a swap, to compare or roll back


class NotRebuildable(ValueError):
    pass


def rebuild(container: Container, name: str, progress: Progress | None = None) -> int:
    """Returns the new generation's number."""
    spec = next((s for s in container.specs if s.name == name), None)
    pair = next(((v, p) for v, p in VIEWS if v.name == name), None)
    if spec is None or pair is None or not spec.rebuildable:
        known = ", ".join(s.name for s in container.specs if s.rebuildable)
        raise NotRebuildable(f"{name!r} is not a rebuildable projection (try one of: {known})")
    view_class, projection_class = pair
    with container.pool.connection() as conn:
        current = generations.active_generations(conn).get(name, 0)
        generation = current + 1
        generations.drop_generation(conn, name, generation)  # leftovers of an aborted rebuild
    view = make_view(container.conninfo, view_class, generation)
    projection = projection_class(view)
    # A replay fails on a poison event every time: dead-letter it at once.
    poison = Failures(attempts=1)
    try:
        for app_class in spec.upstream:
            app = app_class(container.app_env)
            try:

                def report(position: int, head: int, log: str = app.name) -> None:
                    if progress is not None:
                        progress(log, position, head)

                catch_up(app, view, projection, failures=poison, progress=report)
                # Events written meanwhile: a second, short pass.
                catch_up(app, view, projection, failures=poison, progress=report)
            finally:
                app.close()
    finally:
        view.datastore.close()
    compact(container.conninfo, generation_schema(name, generation), spec.tables)
    with container.pool.connection() as conn:
        generations.activate(conn, name, spec.tables, generation)
        for old in range(1, generation - KEEP_PREVIOUS):
            generations.drop_generation(conn, name, old)
    return generation


def compact(conninfo: str, schema: str, tables: list[str]) -> None:
    """Rewrite each table without its dead versions (``VACUUM FULL``, indexes rebuilt),
    then ``VACUUM (ANALYZE)`` it for statistics and the visibility map (which a full
    vacuum leaves empty). Outside a transaction, as VACUUM must be."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for table in tables:
            name = Identifier(schema, table)
            conn.execute(SQL("VACUUM (FULL) {0}").format(name))
            conn.execute(SQL("VACUUM (ANALYZE) {0}").format(name))
