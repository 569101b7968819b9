"""The export of the event logs (ADR 0021): the exporter over this process's event
stores and the Parquet files, and DuckDB over what it wrote."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infra.duckdb.event_queries import DuckDBEventQueries
from infra.parquet.event_files import open_event_files
from infra.settings import Settings
from infra.wiring.process import Container
from streams.export.exporter import FILE_EVENTS, Exporter
from streams.export.queries import EventQueries

EXPORT_FOLDER = "export"


def default_directory(settings: Settings) -> Path:
    """Where the export goes unless told: beside the rest of the process's data."""
    return settings.data_dir / EXPORT_FOLDER


@contextmanager
def exporter(
    container: Container, directory: Path, file_events: int = FILE_EVENTS
) -> Iterator[Exporter]:
    """An exporter of every log of ``container`` into ``directory``, locked for
    the block."""
    with open_event_files(directory) as files:
        yield Exporter(container.applications(), files, file_events)


def event_queries(directory: Path) -> EventQueries:
    return DuckDBEventQueries(directory)
