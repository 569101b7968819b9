"""The charts of ``shop analytics report``, as SVG files (pygal): revenue per day
(gross and net, one line each per currency: amounts of different currencies share a
chart, never a sum) and the funnel over the range. Charts draw floats; the exact
figures are the report's tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pygal
from pygal.style import CleanStyle

from projections.analytics.funnel import STEPS


def revenue_chart(days: Sequence[date], rows: Sequence[dict[str, Any]], path: Path) -> None:
    """``rows``: the report's per-day sales (``sales_queries.sales_by_period``)."""
    chart = pygal.Line(
        title="Revenue per day",
        x_label_rotation=45,
        show_minor_x_labels=False,
        style=CleanStyle,
        width=1000,
        height=500,
        show_dots=len(days) <= 60,
    )
    labels = [day.isoformat() for day in days]
    chart.x_labels = labels
    chart.x_labels_major = labels[:: max(1, len(labels) // 10)]
    for currency in sorted({row["currency"] for row in rows}):
        for figure in ("gross", "net"):
            by_day = {
                row["period_start"]: float(row[figure])
                for row in rows
                if row["currency"] == currency
            }
            chart.add(f"{figure} {currency}", [by_day.get(day, 0.0) for day in days])
    path.write_bytes(chart.render())


def funnel_chart(total: dict[str, Any], path: Path) -> None:
    """``total``: the funnel's totals over the range (``funnel_queries.funnel``)."""
    chart = pygal.HorizontalBar(
        title="Checkout funnel",
        style=CleanStyle,
        width=1000,
        height=500,
        print_values=True,
        show_legend=False,
    )
    steps = list(reversed(STEPS))  # drawn bottom up: the first step on top
    chart.x_labels = [step.value.replace("_", " ") for step in steps]
    chart.add("subjects", [total["steps"][step.value] for step in steps])
    path.write_bytes(chart.render())
