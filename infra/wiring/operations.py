"""What the operator's commands reach of the adapters: the database's backup and
restore (``shop backup`` / ``shop restore``), on the database the settings name
(the embedded one started if none is)."""

from __future__ import annotations

from pathlib import Path

from infra.postgres import backup as pg_backup
from infra.postgres.backup import BackupError, Manifest
from infra.postgres.server import bounded_connections, database_conninfo
from infra.settings import Settings

__all__ = ["BackupError", "Manifest", "backup", "restore"]


def backup(settings: Settings, archive: Path) -> Manifest:
    conninfo = database_conninfo(settings)
    bounded_connections(settings, conninfo)
    return pg_backup.backup(conninfo, archive)


def restore(settings: Settings, archive: Path) -> dict[str, int]:
    # A configured database may not exist yet (the restore makes it): not probed.
    conninfo = settings.database_url or database_conninfo(settings)
    bounded_connections(settings, conninfo)
    return pg_backup.restore(conninfo, archive)
