"""The arithmetic the analytics answers share, kept exact: rates and averages are
the only divisions, each rounded once, in one documented way."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from domain.money import CURRENCY_MINOR_UNITS

RATE_PLACES = Decimal("0.0001")


def rate(part: int, whole: int) -> Decimal | None:
    """``part / whole`` to four places (half to even); None when ``whole`` is 0."""
    if whole == 0:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(RATE_PLACES, ROUND_HALF_EVEN)


def average(amount: Decimal, count: int, currency: str) -> Decimal | None:
    """``amount / count`` to the currency's minor unit (half to even); None for no count."""
    if count == 0:
        return None
    unit = Decimal(1).scaleb(-CURRENCY_MINOR_UNITS.get(currency, 2))
    return (amount / count).quantize(unit, ROUND_HALF_EVEN)


def money(amount: Decimal, currency: str) -> Decimal:
    """``amount`` written to the currency's minor unit (sums of exact amounts stay exact)."""
    return amount.quantize(Decimal(1).scaleb(-CURRENCY_MINOR_UNITS.get(currency, 2)))
