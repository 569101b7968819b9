"""What an export directory holds, as its ``manifest.json`` says: per log, the first
position the export covers, the last one exported, and its files in order.

The manifest is the export's one commit point. A part file is written under a
temporary name, renamed, and only then listed here (the manifest itself replaced by
a rename): a run killed at any moment leaves either the old manifest or the new one,
and files it does not list are the killed run's leftovers, which the next run deletes
and nothing ever reads. So a rerun goes on after the last listed position, and no
event is exported twice or skipped.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from streams.export.schema import NAMES, SCHEMA_VERSION

MANIFEST = "manifest.json"


class ManifestUnreadable(ValueError):
    """The directory holds a manifest this code cannot read (or none of an export)."""


@dataclass(frozen=True)
class LogExport:
    start: int
    """The first position this export of the log covers (1 unless started later)."""
    position: int
    """The last position exported: the next run starts after it."""
    files: tuple[str, ...] = ()
    """Part files, relative to the directory, in position order."""
    events: int = 0


@dataclass(frozen=True)
class Manifest:
    logs: dict[str, LogExport] = field(default_factory=dict)

    def with_log(self, log: str, export: LogExport) -> Manifest:
        return Manifest({**self.logs, log: export})


def part_name(log: str, first: int, last: int) -> str:
    """A part file's path: the positions it holds in its name (zero-padded, so that
    names sort as positions do)."""
    return f"{log}/part-{first:012d}-{last:012d}.parquet"


def load(directory: Path) -> Manifest:
    """The directory's manifest; an empty one where nothing was exported yet."""
    path = directory / MANIFEST
    if not path.exists():
        return Manifest()
    try:
        document = json.loads(path.read_text())
        version = document["schema_version"]
        logs = {
            log: LogExport(
                int(entry["start"]),
                int(entry["position"]),
                tuple(str(name) for name in entry["files"]),
                int(entry["events"]),
            )
            for log, entry in document["logs"].items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ManifestUnreadable(f"{path} is not an export manifest: {error!r}") from error
    if version != SCHEMA_VERSION:
        raise ManifestUnreadable(
            f"{path} is of export schema {version}, this code writes {SCHEMA_VERSION}: "
            "export into another directory"
        )
    return Manifest(logs)


def save(directory: Path, manifest: Manifest) -> None:
    """Replace the manifest in one rename, durably (the file, then the directory)."""
    document = {
        "schema_version": SCHEMA_VERSION,
        "columns": list(NAMES),
        "logs": {
            log: {
                "start": entry.start,
                "position": entry.position,
                "events": entry.events,
                "files": list(entry.files),
            }
            for log, entry in sorted(manifest.logs.items())
        },
    }
    temporary = directory / f".{MANIFEST}.tmp"
    with temporary.open("w") as file:
        json.dump(document, file, indent=2)
        file.flush()
        os.fsync(file.fileno())
    temporary.replace(directory / MANIFEST)
    sync_directory(directory)


def sync_directory(directory: Path) -> None:
    """Make the renames in ``directory`` durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
