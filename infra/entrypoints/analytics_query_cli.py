"""``shop analytics query "SQL"``: SQL over the Parquet export (``shop export
events``) with DuckDB: a view per log, named after it, and ``events`` over all.
A command of the ``analytics`` group (``infra.entrypoints.cli``)."""

from __future__ import annotations

import csv
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from infra.entrypoints.cli_settings import load_settings
from streams.export.manifest import ManifestUnreadable
from streams.export.queries import NothingExported, QueryRefused, QueryResult

console = Console()
errors = Console(stderr=True)


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def query(
    sql: Annotated[str, typer.Argument(help="DuckDB SQL; views: events, users, ordering, ...")],
    output: Annotated[Format, typer.Option("--format", help="how to print the rows")] = (
        Format.table
    ),
    directory: Annotated[
        Path | None, typer.Option("--dir", help="the export; default: SHOP_DATA_DIR/export")
    ] = None,
) -> None:
    """Run SQL over the exported events and print what it returns."""
    from infra.wiring import export  # DuckDB: only for this command

    directory = directory or export.default_directory(load_settings())
    try:
        result = export.event_queries(directory).run(sql)
    except (QueryRefused, NothingExported, ManifestUnreadable) as error:
        errors.print(str(error), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    if output is Format.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    elif output is Format.json:
        sys.stdout.write(as_json(result) + "\n")
    else:
        _print_table(result)


def as_json(result: QueryResult) -> str:
    """A list of objects, one per row; exact numbers (decimals) as strings."""
    return orjson.dumps(
        [dict(zip(result.columns, values, strict=True)) for values in result.rows],
        default=str,
        option=orjson.OPT_INDENT_2,
    ).decode()


def _print_table(result: QueryResult) -> None:
    table = Table(*result.columns)
    for values in result.rows:
        table.add_row(*("" if value is None else str(value) for value in values))
    console.print(table)
    console.print(f"{len(result.rows)} rows")
