"""The ``shop`` command line."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeElapsedColumn
from rich.table import Table

from infra.entrypoints import analytics_query_cli, backup_cli
from infra.entrypoints.analytics_cli import analytics_app
from infra.entrypoints.audit_cli import audit_app
from infra.entrypoints.cli_actor import act_as_command_line
from infra.entrypoints.cli_settings import load_settings
from infra.entrypoints.export_cli import export_app
from infra.entrypoints.logs import configure_logging
from infra.entrypoints.metrics_endpoint import MULTIPROCESS_DIR
from infra.entrypoints.notifications_cli import notifications_app
from infra.settings import Settings
from infra.signals import exit_on_sigterm_as_on_ctrl_c
from infra.wiring import tracing
from infra.wiring.process import Container, StoredEventsUnreadable, bootstrap
from streams.embedded import ProjectionPart

app = typer.Typer(help="eventshop: an event-sourced commerce backend", no_args_is_help=True)
app.callback()(act_as_command_line)  # what a command saves names it as actor
projections_app = typer.Typer(help="Inspect and rebuild read models", no_args_is_help=True)
users_app = typer.Typer(help="Manage users from the command line", no_args_is_help=True)
app.add_typer(projections_app, name="projections")
seed_app = typer.Typer(help="Fill the database with generated data", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(seed_app, name="seed")
dlq_app = typer.Typer(help="Dead letters: events a projection failed on", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
app.add_typer(notifications_app, name="notifications")
app.add_typer(audit_app, name="audit")
app.add_typer(analytics_app, name="analytics")
app.command("backup")(backup_cli.backup)
app.command("restore")(backup_cli.restore)
app.add_typer(export_app, name="export")
analytics_app.command("query")(analytics_query_cli.query)
console = Console()
errors = Console(stderr=True)
WORKER_HEALTHCHECK_SECONDS = 60
GRACEFUL_SHUTDOWN_SECONDS = 5
"""How long a stop waits for open requests: an inbox stream stays open until its
client leaves, and would hold a SIGTERM up for as long."""
UVICORN_OPTIONS: dict[str, Any] = {
    "log_level": "info",
    "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
    "log_config": None,  # uvicorn's lines through our handler (logs.py)
    "access_log": False,  # ours: request_metrics
    # Off: uvicorn would believe X-Forwarded-For from any loopback peer (its default
    # FORWARDED_ALLOW_IPS). The app believes SHOP_TRUSTED_PROXIES only (protection.py).
    "proxy_headers": False,
}


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    """``UVICORN_OPTIONS``, the keep-alive, and HTTPS when a certificate is set."""
    options = {**UVICORN_OPTIONS, "timeout_keep_alive": settings.keep_alive_seconds}
    if settings.tls_cert is None or settings.tls_key is None:
        return options
    return {
        **options,
        "ssl_certfile": str(settings.tls_cert),
        "ssl_keyfile": str(settings.tls_key),
    }


def _container(settings: Settings | None = None) -> Container:
    settings = settings or load_settings()
    configure_logging(settings.log_format)
    try:
        return bootstrap(settings)
    except StoredEventsUnreadable as error:
        errors.print(str(error), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _served_settings(host: str | None, port: int | None, **given: Any) -> Settings:
    """The settings with what the command line gives over the environment's, before
    anything is built from them: the public URL's default follows the address served."""
    options = {"host": host, "port": port, **given}
    return load_settings(**{name: value for name, value in options.items() if value is not None})


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
    workers: Annotated[int | None, typer.Option(min=1, help="default: SHOP_WORKERS")] = None,
) -> None:
    """Serve the API with projections in-process (the embedded all-in-one). With
    several workers, each serves HTTP in a process of its own (one GIL each) and this
    process runs the projections beside them."""
    import uvicorn

    from infra.entrypoints.http import create_app

    settings = _served_settings(host, port, workers=workers)
    # A stop then ends in a normal exit (0) once uvicorn has drained, and runs the
    # ``finally`` below; uvicorn re-raises the SIGTERM it caught, which would kill.
    exit_on_sigterm_as_on_ctrl_c()
    tracing.install(settings, "embedded")
    container = _container(settings)
    if settings.workers == 1:
        uvicorn.run(
            create_app(container, run_projections=settings.projections, tune_gc=True),
            host=settings.host,
            port=settings.port,
            **_uvicorn_options(settings),
        )
        return
    if not settings.redis_url:
        container.close()
        console.print("[red]several workers share their rate limits through SHOP_REDIS_URL[/red]")
        raise typer.Exit(2)
    try:
        container.migrate()  # before the workers start: they do no DDL
        if settings.projections:
            container.start_projections()
        # The workers bootstrap from the environment they inherit: give them this
        # process's public URL and database, so that they never become users of an
        # embedded server (only the last user to exit stops it; a worker ended by
        # SIGTERM never says it has left).
        os.environ["SHOP_PUBLIC_URL"] = settings.public_url
        os.environ["SHOP_DATABASE_URL"] = container.conninfo
        # Each worker counts its requests into files there, and a scrape of any
        # worker adds them all up (metrics_endpoint); emptied: counts start at zero.
        metrics_dir = settings.data_dir / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ[MULTIPROCESS_DIR] = str(metrics_dir.resolve())
        uvicorn.run(
            "infra.entrypoints.http:worker_app",
            factory=True,
            workers=settings.workers,
            # Not uvicorn's 5 s: a worker busy at its start (imports, bootstrap) or under
            # load answers the supervisor's ping late, and would be killed for it.
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
            host=settings.host,
            port=settings.port,
            **_uvicorn_options(settings),
        )
    finally:
        container.close()


@app.command()
def migrate() -> None:
    """Create or upgrade every table."""
    with _migrated():
        console.print("[green]database is up to date[/green]")


class Role(StrEnum):
    write_api = "write-api"
    read_api = "read-api"
    relay = "relay"
    worker = "worker"
    all = "all"


@app.command()
def serve(
    role: Annotated[Role, typer.Argument(help="the role of the scaled mode to run")],
    host: Annotated[str | None, typer.Option(help="HTTP roles; default: SHOP_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP roles; default: SHOP_PORT")] = None,
    check: Annotated[
        bool, typer.Option("--check", help="relay, worker: exit 0 if the role beat lately")
    ] = False,
) -> None:
    """Run one role of the scaled mode: the write API (commands), the read API
    (queries), the outbox relay to Kafka, or a stream worker (run several); ``all``
    runs each of them, the relay and a worker as child processes. Projections run
    in the workers, never in the APIs."""
    from infra.entrypoints.heartbeat import heartbeat_file, is_alive

    settings = _served_settings(host, port)
    if check:
        if role not in (Role.relay, Role.worker):
            console.print("[red]--check is for the relay and the worker; APIs: /health/live[/red]")
            raise typer.Exit(2)
        raise typer.Exit(0 if is_alive(heartbeat_file(settings.data_dir, role.value)) else 1)
    from infra.entrypoints import scaled as kafka

    configure_logging(settings.log_format)
    tracing.install(settings, role.value)
    container = kafka.bootstrap_exclusively(settings)
    try:
        if role is Role.relay:
            kafka.serve_relay(container)
        elif role is Role.worker:
            kafka.serve_worker(container)
        else:
            _serve_http(container, role)
    finally:
        container.close()


def _serve_http(container: Container, role: Role) -> None:
    import subprocess
    import sys
    from functools import partial

    import uvicorn

    from infra.entrypoints.health import CHECK_TIMEOUT
    from infra.entrypoints.http import create_app
    from infra.entrypoints.scaled import kafka_answers

    settings = container.settings
    app = create_app(
        container,
        run_projections=False,
        serve_writes=role in (Role.write_api, Role.all),
        serve_reads=role in (Role.read_api, Role.all),
        tune_gc=True,
    )
    if role is Role.all:  # its children relay to Kafka and work from it
        app.state.health.require("kafka", partial(kafka_answers, settings, CHECK_TIMEOUT))
    exit_on_sigterm_as_on_ctrl_c()  # so that the children are stopped below
    # The stream worker sends the mail: its links name the address served here.
    child_env = {**os.environ, "SHOP_PUBLIC_URL": settings.public_url}
    children = (
        [
            subprocess.Popen([sys.argv[0], "serve", child], env=child_env)  # noqa: S603 - our own entry point
            for child in (Role.relay, Role.worker)
        ]
        if role is Role.all
        else []
    )
    try:
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            **_uvicorn_options(settings),
        )
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait()


@projections_app.command("run")
def projections_run(
    part: Annotated[
        ProjectionPart,
        typer.Option(
            help="all; or foreground (the views commands wait for, the checkout saga) "
            "and background (notifications, analytics, the audit chain) in two processes"
        ),
    ] = ProjectionPart.ALL,
) -> None:
    """Keep the projections and policies current, without serving HTTP (beside a
    `shop run` with SHOP_PROJECTIONS=false); stops on Ctrl-C or SIGTERM."""
    import signal
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    tracing.install(load_settings(), "projections")
    with _migrated() as container:
        container.start_projections(part)
        console.print("[green]projections running[/green]")
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass


@dlq_app.command("list")
def dlq_list(
    projection: Annotated[str | None, typer.Option(help="only this projection's")] = None,
) -> None:
    """The open dead letters, with the error each projection raised (or the letter
    its aggregate's event waits behind)."""
    from infra.entrypoints.dlq import open_letters

    with _migrated() as container:
        letters = open_letters(container, projection)
    table = Table()
    for column in ("projection", "log", "position"):
        table.add_column(column, no_wrap=True)  # whole names, even in a narrow terminal
    for column in ("aggregate", "failed at", "error"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        table.add_row(
            letter.projection,
            letter.log,
            str(letter.position),
            str(letter.originator_id),
            f"{letter.failed_at:%Y-%m-%d %H:%M:%S}",
            letter.error,
        )
    console.print(table)
    console.print(f"{len(letters)} open")


@dlq_app.command("replay")
def dlq_replay(
    projection: Annotated[str | None, typer.Option(help="only this projection's")] = None,
) -> None:
    """Apply the open dead letters again (after a fix); each one applied is closed."""
    from infra.entrypoints.dlq import replay_open

    with _migrated() as container:
        outcomes = replay_open(container, projection)
    failed = 0
    for outcome in outcomes:
        letter = outcome.letter
        where = f"{letter.projection} {letter.log}:{letter.position}"
        if outcome.failure is None:
            console.print(f"[green]replayed[/green] {where}")
        else:
            failed += 1
            console.print(f"[red]failed[/red] {where}: {outcome.failure}")
    console.print(f"{len(outcomes) - failed} replayed, {failed} still open")
    if failed:
        raise typer.Exit(1)


@projections_app.command("status")
def projections_status() -> None:
    """Per projection and log: position reached, head of the log, lag."""
    from infra.entrypoints.status import every_status

    with _migrated() as container, container.pool.connection() as conn:
        statuses = every_status(conn, container)
    table = Table("projection", "log", "generation", "position", "head", "lag")
    for s in statuses:
        table.add_row(s.name, s.log, str(s.generation), str(s.position), str(s.head), str(s.lag))
    console.print(table)


@projections_app.command("rebuild")
def projections_rebuild(name: str) -> None:
    """Replay from position 0 into a fresh copy and swap it in; the API keeps serving."""
    from infra.entrypoints.rebuild import NotRebuildable, rebuild

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
    from domain.refusals import Refused

    with _migrated() as container:
        try:
            written = container.user_commands.create_admin(email, password, name)
        except Refused as error:
            console.print(f"[red]{error.detail}[/red]")
            raise typer.Exit(2) from error
        console.print(f"[green]admin created: {written.id}[/green]")


@seed_app.command("catalog")
def seed_catalog(
    products: Annotated[int, typer.Option(help="products wanted in all (existing ones count)")],
    seed: Annotated[int, typer.Option(help="the same seed makes the same catalog")] = 1,
    sellers: int = 40,
    customers: int = 1000,
    password: Annotated[
        str | None, typer.Option(help="of the accounts created; default: random, printed")
    ] = None,
) -> None:
    """Categories, sellers, customers, products, stock and reviews (see ADR 6)."""
    import secrets

    from commands.seeding.catalog import SeedPlan, SeedRefused, seeded_counts
    from commands.users.passwords import PasswordHasher

    try:
        plan = SeedPlan(products, seed, sellers, customers)
    except SeedRefused as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from error
    password = password or secrets.token_urlsafe(12)
    with _migrated() as container:
        seeder = container.seeder(PasswordHasher().hash(password))
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("products", total=products)
            try:
                report = seeder.run(plan, lambda done, _: bar.update(task, completed=done))
            except SeedRefused as error:
                console.print(f"[red]{error}[/red]")
                raise typer.Exit(2) from error
    for label, value in seeded_counts(report):
        console.print(f"{label}: {value:,}")
    if report.accounts:
        console.print(
            f"accounts created now (catalog-admin.seed{seed}@example.com, "
            f"seller0.seed{seed}@example.com, customer0.seed{seed}@example.com...) "
            f"have the password: {password}"
        )


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
