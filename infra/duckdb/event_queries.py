"""SQL over an export directory with DuckDB: a view per log over the part files its
manifest lists (never a killed run's leftovers), and ``events`` over them all.

The engine may read the export directory and nothing else: once the views are
made, file access outside it is switched off and the configuration locked, so a
query cannot read other files, write any, or turn that back on.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from streams.export import manifest
from streams.export.queries import ALL_EVENTS, NothingExported, QueryRefused, QueryResult
from streams.export.schema import COLUMNS

_TYPES = {"int64": "BIGINT", "string": "VARCHAR", "timestamp": "TIMESTAMPTZ"}
BAD_QUERY = (
    duckdb.ProgrammingError,  # parser, binder, catalog
    duckdb.DataError,  # conversions, out of range
    duckdb.PermissionException,  # a file outside the export
    duckdb.NotSupportedError,
)


class DuckDBEventQueries:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def run(self, sql: str) -> QueryResult:
        contents = manifest.load(self.directory)
        if not contents.logs:
            raise NothingExported(
                f"nothing is exported in {self.directory}: run shop export events"
            )
        with duckdb.connect(":memory:") as conn:
            conn.execute("SET TimeZone = 'UTC'")  # days and weeks as the events' times are
            selects = []
            for log, entry in sorted(contents.logs.items()):
                conn.execute(f"CREATE VIEW {_name(log)} AS {self._select(entry.files)}")
                selects.append(f"SELECT * FROM {_name(log)}")  # noqa: S608 - a quoted name
            conn.execute(f"CREATE VIEW {ALL_EVENTS} AS {' UNION ALL '.join(selects)}")
            allowed = _literal(f"{self.directory.resolve()}/")
            conn.execute(f"SET allowed_directories = [{allowed}]")
            conn.execute("SET enable_external_access = false")
            conn.execute("SET lock_configuration = true")
            try:
                result = conn.execute(sql)
                rows = result.fetchall() if result.description else []
            except BAD_QUERY as error:
                raise QueryRefused(str(error)) from error
            columns = tuple(str(column[0]) for column in result.description or ())
            return QueryResult(columns, rows)

    def _select(self, files: tuple[str, ...]) -> str:
        if not files:  # a log with nothing exported yet: its columns, no rows
            typed = ", ".join(
                f"CAST(NULL AS {_TYPES[column.type]}) AS {_name(column.name)}" for column in COLUMNS
            )
            return f"SELECT {typed} WHERE false"
        paths = ", ".join(_literal(str((self.directory / name).resolve())) for name in files)
        # By name: files written before a column was added read it as null.
        return f"SELECT * FROM read_parquet([{paths}], union_by_name = true)"  # noqa: S608


def _name(log: str) -> str:
    return '"' + log.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
