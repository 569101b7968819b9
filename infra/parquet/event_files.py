"""The export's files: one folder per log of Parquet part files, and the manifest
that lists them (``streams.export.manifest``: the commit point).

A part is written under a temporary name, flushed to disk, renamed, and only then
listed in the manifest; opening the directory for a run deletes whatever the
manifest does not list (a killed run's part, listed or not yet renamed). One run at a
time: the directory is locked (``flock``) while a run has it open.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from streams.export import manifest
from streams.export.exporter import ExportRefused, Row
from streams.export.manifest import LogExport, Manifest
from streams.export.schema import COLUMNS

LOCK = ".export.lock"
_TYPES = {"int64": pa.int64(), "string": pa.string(), "timestamp": pa.timestamp("us", tz="UTC")}
SCHEMA = pa.schema(
    [pa.field(column.name, _TYPES[column.type], nullable=column.nullable) for column in COLUMNS]
)


class ParquetEventFiles:
    """An export directory opened for one run (``open_event_files``)."""

    def __init__(self, directory: Path, contents: Manifest) -> None:
        self.directory = directory
        self.manifest = contents

    def exported(self, log: str) -> LogExport | None:
        return self.manifest.logs.get(log)

    def commit(self, log: str, start: int, position: int, rows: Sequence[Row]) -> None:
        entry = self.manifest.logs.get(log) or LogExport(start, start - 1)
        if rows:
            name = manifest.part_name(log, _position(rows[0]), _position(rows[-1]))
            self._write_part(name, rows)
            entry = replace(entry, files=(*entry.files, name), events=entry.events + len(rows))
        self.manifest = self.manifest.with_log(log, replace(entry, position=position))
        manifest.save(self.directory, self.manifest)

    def _write_part(self, name: str, rows: Sequence[Row]) -> None:
        path = self.directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        columns = list(zip(*rows, strict=True))
        table = pa.Table.from_arrays(
            [
                pa.array(values, type=field.type)
                for values, field in zip(columns, SCHEMA, strict=True)
            ],
            schema=SCHEMA,
        )
        temporary = path.with_name(f".{path.name}.tmp")
        with temporary.open("wb") as file:
            pq.write_table(table, file, compression="zstd")
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(path)
        manifest.sync_directory(path.parent)


def _position(row: Row) -> int:
    position = row[0]
    assert isinstance(position, int)
    return position


@contextmanager
def open_event_files(directory: Path) -> Iterator[ParquetEventFiles]:
    """The export directory (made if missing), locked for this run, without what a
    killed run left that the manifest does not list."""
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / manifest.MANIFEST).exists() and any(
        path.name != LOCK for path in directory.iterdir()
    ):
        raise ExportRefused(f"{directory} holds files but no export manifest: choose another")
    with (directory / LOCK).open("a") as lock:
        _lock(lock, directory)
        contents = manifest.load(directory)
        _remove_unlisted(directory, contents)
        yield ParquetEventFiles(directory, contents)


def _lock(lock: IO[str], directory: Path) -> None:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as error:
        raise ExportRefused(f"another export is writing to {directory} now") from error


def _remove_unlisted(directory: Path, contents: Manifest) -> None:
    listed = {name for entry in contents.logs.values() for name in entry.files}
    for pattern in ("*/part-*.parquet", "*/.part-*.parquet.tmp"):
        for path in directory.glob(pattern):
            if path.relative_to(directory).as_posix() not in listed:
                path.unlink()
