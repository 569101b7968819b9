"""Projection lag: per projection and upstream log, the position reached, the log's
head and the difference. Read from the database, so the CLI, /metrics and any
process agree. (Ids can have gaps, so lag counts ids, an upper bound on events.)"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg import Connection
from psycopg.errors import UndefinedTable
from psycopg.sql import SQL, Identifier

from projections.generations import active_generations
from projections.positions import ProjectionStatus, tracked_position
from streams.embedded import ProjectionSpec

if TYPE_CHECKING:
    from infra.wiring.process import Container


def log_head(conn: Connection[Any], log: str) -> int:
    row = conn.execute(
        SQL("SELECT max(notification_id) FROM {0}").format(Identifier(f"{log}_events"))
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def projection_status(conn: Connection[Any], specs: list[ProjectionSpec]) -> list[ProjectionStatus]:
    generations = active_generations(conn)
    statuses = []
    for spec in specs:
        for app_class in spec.upstream:
            log = app_class.name
            try:
                position = tracked_position(conn, spec.name, log) if spec.name in generations else 0
            except UndefinedTable:
                conn.rollback()
                position = 0
            statuses.append(
                ProjectionStatus(
                    spec.name, log, generations.get(spec.name), position, log_head(conn, log)
                )
            )
    return statuses


def every_status(conn: Connection[Any], container: Container) -> list[ProjectionStatus]:
    """Every projection's of ``container``, and the search index's when there is one
    (it follows the product view's change feed, not a log)."""
    statuses = projection_status(conn, container.specs)
    if container.search_indexer is not None:
        statuses.append(container.search_indexer.status(conn))
    return statuses
