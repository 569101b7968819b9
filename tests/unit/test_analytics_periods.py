"""The analytics' periods and ranges: every day falls in one period whose start is
a Monday (ISO weeks) or the 1st (months) and whose label names it the ISO way; a
range is whole UTC days, half-open in time, and refuses to end before it starts or
to span more than MAX_DAYS; rates and averages round once, half to even."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.analytics.figures import average, rate
from projections.analytics.periods import (
    EARLIEST,
    LATEST,
    MAX_DAYS,
    BadRange,
    DateRange,
    Grouping,
    ending,
    label,
    period_of,
)

days = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))


@given(day=days)
def test_a_day_falls_in_the_period_its_label_names(day: date) -> None:
    week = period_of(day, Grouping.WEEK)
    assert week.weekday() == 0 and 0 <= (day - week).days < 7
    year, number, _ = day.isocalendar()
    assert label(week, Grouping.WEEK) == f"{year}-W{number:02d}"
    month = period_of(day, Grouping.MONTH)
    assert month == day.replace(day=1)
    assert label(month, Grouping.MONTH) == f"{day:%Y-%m}"
    assert period_of(day, Grouping.DAY) == day
    assert label(day, Grouping.DAY) == day.isoformat()


@given(first=days, length=st.integers(0, MAX_DAYS - 1))
def test_a_range_holds_its_days_as_a_half_open_span_of_time(first: date, length: int) -> None:
    span = DateRange(first, first + timedelta(days=length))
    assert len(span.days) == length + 1
    assert span.days[0] == first and span.days[-1] == span.last
    assert span.start.date() == first and span.end.date() == span.last + timedelta(days=1)
    assert span.start.utcoffset() == timedelta(0)


def test_a_reversed_or_too_long_range_is_refused_as_bad_input() -> None:
    with pytest.raises(BadRange, match="before it starts"):
        DateRange(date(2026, 12, 2), date(2026, 12, 1))
    with pytest.raises(BadRange, match="at most"):
        DateRange(date(2000, 1, 1), date(2000, 1, 1) + timedelta(days=MAX_DAYS))
    with pytest.raises(BadRange, match="between"):
        DateRange(date(1, 1, 1), date(1, 1, 2))
    with pytest.raises(BadRange, match="between"):
        DateRange(date(9999, 12, 30), date(9999, 12, 31))
    assert issubclass(BadRange, ValueError) and BadRange.status == 422


@given(last=st.dates())
def test_the_default_range_ends_on_its_day_or_is_refused_as_bad_input(last: date) -> None:
    try:
        span = ending(last, 30)
    except BadRange:
        assert not EARLIEST <= last <= LATEST
        return
    assert span.last == last and 1 <= len(span.days) <= 30


def test_rates_and_averages_round_once_half_to_even() -> None:
    assert rate(1, 3) == Decimal("0.3333")
    assert rate(0, 0) is None
    assert average(Decimal("10.00"), 4, "EUR") == Decimal("2.50")
    assert average(Decimal("0.05"), 2, "EUR") == Decimal("0.02")  # 0.025: half to even
    assert average(Decimal("7"), 2, "JPY") == Decimal("4")  # 3.5: half to even, no minor unit
    assert average(Decimal("1.000"), 3, "KWD") == Decimal("0.333")
    assert average(Decimal(5), 0, "EUR") is None
