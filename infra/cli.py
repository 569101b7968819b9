"""The ``shop`` command line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeElapsedColumn
from rich.table import Table

from infra.bootstrap import Container, bootstrap
from infra.settings import Settings

app = typer.Typer(help="eventshop: an event-sourced commerce backend", no_args_is_help=True)
projections_app = typer.Typer(help="Inspect and rebuild read models", no_args_is_help=True)
users_app = typer.Typer(help="Manage users from the command line", no_args_is_help=True)
app.add_typer(projections_app, name="projections")
app.add_typer(users_app, name="users")
console = Console()


def _container() -> Container:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return bootstrap(Settings())


@contextmanager
def _migrated() -> Iterator[Container]:
    """A container for one command: tables up to date, closed at the end."""
    container = _container()
    try:
        container.migrate()
        yield container
    finally:
        container.close()


@app.command()
def run(
    host: Annotated[str | None, typer.Option(help="default: SHOP_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="default: SHOP_PORT")] = None,
) -> None:
    """Serve the API with projections in-process (the embedded all-in-one)."""
    import uvicorn

    from infra.http import create_app

    container = _container()
    settings = container.settings
    uvicorn.run(
        create_app(container, run_projections=settings.projections),
        host=host or settings.host,
        port=port or settings.port,
        log_level="info",
        access_log=False,
    )


@app.command()
def migrate() -> None:
    """Create or upgrade every table."""
    with _migrated():
        console.print("[green]database is up to date[/green]")


@projections_app.command("status")
def projections_status() -> None:
    """Per projection and log: position reached, head of the log, lag."""
    from infra.status import projection_status

    with _migrated() as container, container.pool.connection() as conn:
        statuses = projection_status(conn, container.specs)
    table = Table("projection", "log", "generation", "position", "head", "lag")
    for s in statuses:
        table.add_row(s.name, s.log, str(s.generation), str(s.position), str(s.head), str(s.lag))
    console.print(table)


@projections_app.command("rebuild")
def projections_rebuild(name: str) -> None:
    """Replay from position 0 into a fresh copy and swap it in; the API keeps serving."""
    from infra.rebuild import NotRebuildable, rebuild

    with _migrated() as container:
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(log: str, position: int, head: int) -> None:
                if log not in tasks:
                    tasks[log] = bar.add_task(f"{name} <- {log}", total=head)
                bar.update(tasks[log], completed=position, total=max(head, position))

            try:
                generation = rebuild(container, name, progress)
            except NotRebuildable as error:
                console.print(f"[red]{error}[/red]")
                raise typer.Exit(2) from error
        console.print(f"[green]{name}: generation {generation} is now served[/green]")


@users_app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(prompt=True)],
    name: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Create a verified account with the admin role."""
    from commands.errors import CommandRefused

    with _migrated() as container:
        try:
            written = container.user_commands.create_admin(email, password, name)
        except CommandRefused as error:
            console.print(f"[red]{error.detail}[/red]")
            raise typer.Exit(2) from error
        console.print(f"[green]admin created: {written.id}[/green]")


@app.command()
def mailbox(
    to: Annotated[str | None, typer.Option(help="only mail to this address")] = None,
    limit: int = 10,
) -> None:
    """Show the newest mail in the embedded mailbox."""
    with _migrated() as container:
        messages = container.mailbox.messages(to.lower() if to else None, limit)
    for message in reversed(messages):
        console.rule(f"{message['sent_at']:%Y-%m-%d %H:%M:%S} to {message['recipient']}")
        console.print(f"[bold]{message['subject']}[/bold]\n{message['body']}")
