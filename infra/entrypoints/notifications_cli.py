"""``shop notifications``: ``preview`` renders a kind's templates with a sample
context (no database needed: for whoever edits the templates), ``status`` shows the
delivery queue and the latest failures."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from commands.notifications.rendering import Renderer
from commands.notifications.samples import sample_context
from domain.notifications import LOCALES, RULES, Channel, Kind
from infra.entrypoints.cli_settings import load_settings
from infra.entrypoints.notifications_status import render, status_report
from infra.wiring.process import bootstrap

notifications_app = typer.Typer(
    help="Notifications: templates and deliveries", no_args_is_help=True
)
console = Console()


@notifications_app.command()
def preview(
    kind: Kind,
    locale: Annotated[str, typer.Option(help=f"one of {', '.join(LOCALES)}")] = "en",
    channel: Annotated[Channel | None, typer.Option(help="default: every channel of KIND")] = None,
) -> None:
    """Render KIND's templates with a sample context, as the recipient would see them."""
    if locale not in LOCALES:
        raise typer.BadParameter(
            f"no templates for {locale!r}: {', '.join(LOCALES)}", param_hint="--locale"
        )
    channels = [channel] if channel else sorted(RULES[kind].channels, key=list(Channel).index)
    if channel and channel not in RULES[kind].channels:
        raise typer.BadParameter(f"{kind} is never sent by {channel}", param_hint="--channel")
    renderer = Renderer()
    for each in channels:
        content = renderer.render(kind, each, locale, sample_context(kind))
        console.rule(f"{kind} · {each} · {locale}")
        if content.subject:
            console.print(f"[bold]{content.subject}[/bold]", markup=True, highlight=False)
        console.print(content.text, markup=False, highlight=False, soft_wrap=True)
        if content.html:
            console.rule("html", style="dim")
            console.print(content.html, markup=False, highlight=False, soft_wrap=True)


@notifications_app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Deliveries waiting per channel, the last hour's outcomes and the latest failures."""
    container = bootstrap(load_settings())
    try:
        container.migrate()
        with container.pool.connection() as conn:
            report = status_report(conn, container.notifications.queue)
    finally:
        container.close()
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        render(report, console)
