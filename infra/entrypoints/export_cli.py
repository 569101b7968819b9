"""``shop export events``: the event logs to Parquet files for ad hoc analysis
(ADR 0021), from where the last run stopped; ``shop analytics query`` reads them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeElapsedColumn
from rich.table import Table

from infra.entrypoints.cli_settings import load_settings
from infra.wiring.process import Container, StoredEventsUnreadable, bootstrap
from streams.export.exporter import FILE_EVENTS, ExportRefused, ExportStopped, LogReport
from streams.export.manifest import ManifestUnreadable

export_app = typer.Typer(help="Export the event logs for analysis", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)


@export_app.command()
def events(
    log: Annotated[str | None, typer.Option(help="only this log (users, ordering, ...)")] = None,
    start: Annotated[
        int | None,
        typer.Option("--from", min=1, help="first position, for a log not yet exported there"),
    ] = None,
    stop: Annotated[int | None, typer.Option("--to", min=1, help="last position")] = None,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="default: SHOP_DATA_DIR/export")
    ] = None,
    file_events: Annotated[
        int, typer.Option(min=1, help="events per Parquet file (what a killed run may lose)")
    ] = FILE_EVENTS,
) -> None:
    """Write every event after the last exported one (each log's own mapper decodes
    it: encrypted state comes out readable) to Parquet files, one folder per log."""
    from infra.wiring import export  # pyarrow: only for this command

    settings = load_settings()
    directory = directory or export.default_directory(settings)
    try:
        container = bootstrap(settings)
    except StoredEventsUnreadable as error:
        errors.print(str(error), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    try:
        reports = _export(container, directory, file_events, log, start, stop)
    except (ExportRefused, ManifestUnreadable) as error:
        errors.print(str(error), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except ExportStopped as error:
        errors.print(f"stopped: {error}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        container.close()
    table = Table("log", "events exported now", "last position")
    for report in reports:
        table.add_row(report.log, f"{report.exported:,}", str(report.position))
    console.print(table)
    console.print(f"[green]exported to {directory}[/green]")


def _export(
    container: Container,
    directory: Path,
    file_events: int,
    log: str | None,
    start: int | None,
    stop: int | None,
) -> list[LogReport]:
    from infra.wiring import export

    with (
        export.exporter(container, directory, file_events) as exporter,
        Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar,
    ):
        tasks: dict[str, TaskID] = {}

        def progress(name: str, position: int, head: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=head)
            bar.update(tasks[name], completed=position, total=max(head, position))

        return exporter.export(log, start, stop, progress)
