"""Which generation of each read model is served, and the atomic swap between them.

``read.<table>`` are plain SQL views over the active generation's tables, so queries
never name a generation, and swapping is one transaction of DDL: readers see the
old copy until it commits and the new one after.
"""

from __future__ import annotations

from psycopg import Connection
from psycopg.sql import SQL, Identifier

from projections.engine import TRACKING_TABLE, generation_schema

READ_SCHEMA = "read"

_REGISTRY_DDL = """
CREATE TABLE IF NOT EXISTS public.projection_generations (
    name text PRIMARY KEY,
    active integer NOT NULL,
    activated_at timestamptz NOT NULL DEFAULT now()
)
"""


def create_registry(conn: Connection[object]) -> None:
    with conn.transaction():
        conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(Identifier(READ_SCHEMA)))
        conn.execute(_REGISTRY_DDL)


def active_generations(conn: Connection[object]) -> dict[str, int]:
    rows = conn.execute("SELECT name, active FROM public.projection_generations").fetchall()
    return {str(row[0]): int(row[1]) for row in rows}  # type: ignore[index]


def serves_every_table(conn: Connection[object], tables: list[str]) -> bool:
    """Whether each of these tables has its ``read.`` view: not so for a table that a
    newer version of a view added to a generation made before it."""
    names = [f"{READ_SCHEMA}.{table}" for table in tables]
    row = conn.execute(
        "SELECT bool_and(to_regclass(n) IS NOT NULL) FROM unnest(%s::text[]) n", (names,)
    ).fetchone()
    return bool(row and row[0])  # type: ignore[index]


def tracking_view(name: str) -> str:
    return f"{name}__tracking"


def activate(conn: Connection[object], name: str, tables: list[str], generation: int) -> None:
    """Serve ``generation`` of projection ``name``: repoint its ``read.`` views
    (one per table, and its tracking) at that generation's schema."""
    schema = generation_schema(name, generation)
    targets = {**{t: t for t in tables}, tracking_view(name): TRACKING_TABLE}
    with conn.transaction():
        conn.execute(
            "INSERT INTO public.projection_generations (name, active) VALUES (%s, %s) "
            "ON CONFLICT (name) DO UPDATE SET active = EXCLUDED.active, activated_at = now()",
            (name, generation),
        )
        for read_name, table in targets.items():
            conn.execute(
                SQL("DROP VIEW IF EXISTS {0}.{1}").format(
                    Identifier(READ_SCHEMA), Identifier(read_name)
                )
            )
            conn.execute(
                SQL("CREATE VIEW {0}.{1} AS SELECT * FROM {2}.{3}").format(
                    Identifier(READ_SCHEMA),
                    Identifier(read_name),
                    Identifier(schema),
                    Identifier(table),
                )
            )


def drop_generation(conn: Connection[object], name: str, generation: int) -> None:
    conn.execute(
        SQL("DROP SCHEMA IF EXISTS {0} CASCADE").format(
            Identifier(generation_schema(name, generation))
        )
    )
