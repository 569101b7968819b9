"""``shop analytics report``: the analytics views' figures over a date range, as
tables (sales per period and currency, the best-selling products, cancellations
and rejections, the funnel, payment declines, stock cover) and two SVG charts
(revenue per day, the funnel). It reads the views as they are: the figures are as
fresh as the projections that build them."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from infra.entrypoints.cli_settings import load_settings
from infra.wiring.process import bootstrap
from projections.analytics.funnel import STEPS
from projections.analytics.funnel_queries import funnel
from projections.analytics.payment_queries import payment_declines
from projections.analytics.periods import BadRange, DateRange, Grouping, ending
from projections.analytics.sales_queries import (
    Dimension,
    DimensionQuery,
    sales_by_dimension,
    sales_by_period,
    stop_reasons,
)
from projections.analytics.stock_queries import stock_cover

analytics_app = typer.Typer(
    help="Analytics: sales, funnel, declines, stock; SQL over the export", no_args_is_help=True
)
console = Console()
TOP = 10


async def gather(conninfo: str, span: DateRange, group: Grouping) -> dict[str, Any]:
    """Every figure the report shows, read in one connection."""
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        products = await sales_by_dimension(
            conn, DimensionQuery(Dimension.PRODUCT, span), after=None, limit=TOP
        )
        return {
            "sales": await sales_by_period(conn, span, group),
            "daily": await sales_by_period(conn, span, Grouping.DAY),
            "products": products.items,
            "stops": await stop_reasons(conn, span),
            "funnel": await funnel(conn, span),
            "declines": await payment_declines(conn, span),
            "stock": (await stock_cover(conn, span, seller_id=None, after=None, limit=TOP)).items,
        }


def _text(value: Any) -> str:
    return "-" if value is None else str(value)


def _table(title: str, columns: list[tuple[str, str]], rows: list[dict[str, Any]]) -> Table:
    """``columns``: (heading, key of the row) pairs."""
    table = Table(title=title, title_justify="left")
    for heading, _ in columns:
        table.add_column(heading, overflow="fold")  # a narrow terminal folds, never cuts
    for row in rows:
        table.add_row(*(_text(row[key]) for _, key in columns))
    return table


SALES_COLUMNS = [
    ("period", "period"),
    ("currency", "currency"),
    ("orders", "orders"),
    ("units", "units"),
    ("gross", "gross"),
    ("refunded", "refunded"),
    ("net", "net"),
    ("AOV", "average_order_value"),
]
RATE_COLUMNS = [
    ("period", "period"),
    ("currency", "currency"),
    ("placed", "placed"),
    ("refund rate", "refund_rate"),
    ("return rate", "return_rate"),
    ("cancelled", "cancelled"),
    ("rejected", "rejected"),
]
PRODUCT_COLUMNS = [
    ("product", "key"),
    ("name", "name"),
    ("currency", "currency"),
    ("orders", "orders"),
    ("units", "units"),
    ("gross", "gross"),
    ("returned units", "returned_units"),
]
STOP_COLUMNS = [
    ("kind", "kind"),
    ("by admin", "by_admin"),
    ("reason", "reason"),
    ("orders", "orders"),
]
FUNNEL_COLUMNS = [("step", "step"), ("count", "count"), ("conversion from the step before", "rate")]
DECLINE_COLUMNS = [
    ("day", "day"),
    ("method", "method"),
    ("attempts", "attempts"),
    ("authorized", "authorized"),
    ("declined", "declined"),
    ("decline rate", "decline_rate"),
]
STOCK_COLUMNS = [
    ("sku", "sku"),
    ("available", "available"),
    ("shipped", "shipped"),
    ("days of cover", "days_of_cover"),
    ("stock-outs", "stock_outs"),
    ("low-stock alerts", "low_stock_alerts"),
]


def render(report: dict[str, Any]) -> list[Table]:
    total = report["funnel"]["total"]
    conversions = [None, *total["conversions"].values()]
    steps = [
        {"step": step.value, "count": total["steps"][step.value], "rate": conversion}
        for step, conversion in zip(STEPS, conversions, strict=True)
    ]
    return [
        _table("Sales (orders placed in each period)", SALES_COLUMNS, report["sales"]),
        _table("Refunds, returns, cancellations", RATE_COLUMNS, report["sales"]),
        _table(f"Top {TOP} products by gross", PRODUCT_COLUMNS, report["products"]),
        _table("Cancellations and rejections", STOP_COLUMNS, report["stops"]),
        _table("Checkout funnel (the whole range)", FUNNEL_COLUMNS, steps),
        _table("Payment declines per method and day", DECLINE_COLUMNS, report["declines"]["days"]),
        _table(f"Stock (first {TOP} SKUs)", STOCK_COLUMNS, report["stock"]),
    ]


def write_charts(report: dict[str, Any], span: DateRange, folder: Path) -> list[Path]:
    # pygal is imported here, not by every ``shop`` command.
    from infra.entrypoints.analytics_chart import funnel_chart, revenue_chart

    folder.mkdir(parents=True, exist_ok=True)
    revenue, funnel_path = folder / "revenue-per-day.svg", folder / "funnel.svg"
    revenue_chart(span.days, report["daily"], revenue)
    funnel_chart(report["funnel"]["total"], funnel_path)
    return [revenue, funnel_path]


@analytics_app.command()
def report(
    first: Annotated[
        datetime | None, typer.Option("--from", formats=["%Y-%m-%d"], help="default: 29 days ago")
    ] = None,
    last: Annotated[
        datetime | None, typer.Option("--to", formats=["%Y-%m-%d"], help="default: today (UTC)")
    ] = None,
    group: Annotated[Grouping, typer.Option(help="sales per day, ISO week or month")] = (
        Grouping.DAY
    ),
    charts: Annotated[Path, typer.Option(help="folder the SVG charts are written to")] = Path(
        "analytics-charts"
    ),
) -> None:
    """Print the analytics tables for a range of days and write the charts."""
    try:
        span = _span(first, last)
    except BadRange as error:
        raise typer.BadParameter(str(error), param_hint="--to") from error
    container = bootstrap(load_settings())
    try:
        container.migrate()
        figures = asyncio.run(gather(container.conninfo, span, group))
    finally:
        container.close()
    console.print(f"[bold]Analytics, {span.first} to {span.last} (UTC)[/bold]")
    for table in render(figures):
        console.print(table)
    for path in write_charts(figures, span, charts):
        console.print(f"chart: {path}")


def _span(first: datetime | None, last: datetime | None) -> DateRange:
    end: date = last.date() if last else datetime.now(UTC).date()
    return DateRange(first.date(), end) if first else ending(end, 30)
