"""The date ranges and periods the analytics queries take: whole UTC days, from
``first`` to ``last`` inclusive, grouped per day, ISO week (Monday first, labelled
``2026-W49``) or calendar month."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from domain.refusals import BadQuery

MAX_DAYS = 3660
"""The longest range answered (about ten years): a longer one is a typo."""
EARLIEST, LATEST = date(1970, 1, 1), date(9999, 12, 30)
"""The days a range may hold (the shop's events are all after the first; the day
after the last is still a date)."""


class Grouping(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class BadRange(BadQuery, ValueError):
    """A date range that ends before it starts, or spans too long."""

    status = 422
    code = "bad-date-range"


@dataclass(frozen=True)
class DateRange:
    first: date
    last: date

    def __post_init__(self) -> None:
        if not (self.first >= EARLIEST and self.last <= LATEST):
            raise BadRange(f"a range's days are between {EARLIEST} and {LATEST}")
        if self.last < self.first:
            raise BadRange(f"the range ends ({self.last}) before it starts ({self.first})")
        if (self.last - self.first).days >= MAX_DAYS:
            raise BadRange(f"a range spans at most {MAX_DAYS} days")

    @property
    def start(self) -> datetime:
        """The first instant of the range (UTC)."""
        return datetime.combine(self.first, time(), UTC)

    @property
    def end(self) -> datetime:
        """The instant after the range's last day (UTC): ranges are half-open in SQL."""
        return datetime.combine(self.last + timedelta(days=1), time(), UTC)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def ending(last: date, days: int) -> DateRange:
    """The ``days`` days up to ``last`` (fewer when they would start before EARLIEST)."""
    if last < EARLIEST + timedelta(days=days):
        return DateRange(EARLIEST, last)
    return DateRange(last - timedelta(days=days - 1), last)


def period_of(day: date, grouping: Grouping) -> date:
    """The first day of the period ``day`` falls in."""
    if grouping is Grouping.WEEK:
        return day - timedelta(days=day.weekday())
    if grouping is Grouping.MONTH:
        return day.replace(day=1)
    return day


def label(start: date, grouping: Grouping) -> str:
    """``2026-12-07``, ``2026-W50`` (ISO week) or ``2026-12``."""
    if grouping is Grouping.WEEK:
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if grouping is Grouping.MONTH:
        return f"{start:%Y-%m}"
    return start.isoformat()
