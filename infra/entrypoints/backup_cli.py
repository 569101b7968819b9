"""``shop backup FILE`` and ``shop restore FILE``: the whole database to a file and
back, checked (``infra.postgres.backup``); a restore can rebuild every read model
from the restored logs (``--rebuild``), which proves the logs alone suffice."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from infra.entrypoints.cli_settings import load_settings
from infra.entrypoints.rebuild import rebuild
from infra.wiring import operations
from infra.wiring.process import bootstrap

console = Console()


def backup(archive: Annotated[Path, typer.Argument(help="the archive to write")]) -> None:
    """Dump the database (pg_dump's custom format) with a manifest beside it."""
    try:
        manifest = operations.backup(load_settings(), archive)
    except operations.BackupError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from error
    heads = ", ".join(f"{log} {head}" for log, head in sorted(manifest.heads.items()))
    console.print(f"[green]backed up to {archive}[/green] (logs at: {heads})")


def restore(
    archive: Annotated[Path, typer.Argument(help="an archive `shop backup` wrote")],
    rebuild_views: Annotated[
        bool, typer.Option("--rebuild", help="then rebuild every read model from the logs")
    ] = False,
) -> None:
    """Restore into the configured database, which must be empty (made if missing)."""
    settings = load_settings()
    try:
        heads = operations.restore(settings, archive)
    except operations.BackupError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from error
    console.print(f"[green]restored {archive}[/green] ({len(heads)} logs)")
    if not rebuild_views:
        return
    container = bootstrap(settings)
    try:
        container.migrate()
        for spec in container.specs:
            if spec.rebuildable:
                generation = rebuild(container, spec.name)
                console.print(f"{spec.name}: generation {generation} rebuilt from the logs")
    finally:
        container.close()
