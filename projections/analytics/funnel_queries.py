"""The checkout funnel per day (``read.analytics_funnel_steps``): how many subjects
reached each step that day, and the conversion from each step to the next as the
ratio of that day's counts (a period ratio, not a cohort's: an order placed on one
day and confirmed the next counts on each day it moved)."""

from __future__ import annotations

import itertools
from typing import Any

from psycopg import AsyncConnection

from projections.analytics.figures import rate
from projections.analytics.funnel import STEPS
from projections.analytics.periods import DateRange


async def funnel(conn: AsyncConnection[Any], span: DateRange) -> dict[str, Any]:
    """``days``: every day of ``span`` with its step counts and conversions;
    ``total``: the same over the whole span."""
    cursor = conn.cursor()
    await cursor.execute(
        "SELECT day, step, count(*) FROM read.analytics_funnel_steps "
        "WHERE day >= %s AND day <= %s GROUP BY 1, 2",
        (span.first, span.last),
    )
    counts: dict[Any, dict[str, int]] = {day: {s.value: 0 for s in STEPS} for day in span.days}
    for day, step, count in await cursor.fetchall():
        counts[day][step] = int(count)
    total = {step.value: sum(day[step] for day in counts.values()) for step in STEPS}
    return {
        "days": [{"day": day, **_with_conversions(steps)} for day, steps in counts.items()],
        "total": _with_conversions(total),
    }


def _with_conversions(steps: dict[str, int]) -> dict[str, Any]:
    values = [steps[step] for step in STEPS]
    return {
        "steps": {step.value: value for step, value in zip(STEPS, values, strict=True)},
        "conversions": {
            f"{before.value}->{after.value}": rate(values[i + 1], values[i])
            for i, (before, after) in enumerate(itertools.pairwise(STEPS))
        },
    }
