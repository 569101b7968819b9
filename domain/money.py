"""Money and SKUs: the value objects of the catalog and of every price after it.

``Money`` is an exact ``Decimal`` amount with an ISO 4217 currency from an explicit
allow-list. It refuses what a price can never be (negative, NaN, infinite, finer
than the currency's minor unit, more than a billion major units), so anything that
holds a ``Money`` holds a valid one. Amounts are normalised to the currency's minor
unit: ``Money.of("10", "EUR")`` is ``10.00 EUR``, and equal to ``Money.of("10.0",
"EUR")``.

In event payloads a price is ``{"amount": "10.00", "currency": "EUR"}``: the amount
as a string keeps it exact through any JSON encoder (the event store's transcoder
would keep a ``Decimal`` too, but a Kafka relay or a projection serialising with
orjson would not), and a consumer parses it with ``Decimal(amount)``.

Errors subclass ``ValueError`` as well as ``DomainError``: they are bad input, and a
pydantic validator that calls these constructors reports them as validation errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from domain.errors import DomainError

# ISO 4217 currencies we accept, with their minor units (digits after the point).
CURRENCY_MINOR_UNITS: Mapping[str, int] = {
    "AED": 2,
    "AUD": 2,
    "BGN": 2,
    "BHD": 3,
    "BRL": 2,
    "CAD": 2,
    "CHF": 2,
    "CLP": 0,
    "CNY": 2,
    "COP": 2,
    "CZK": 2,
    "DKK": 2,
    "EGP": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "HUF": 2,
    "IDR": 2,
    "ILS": 2,
    "INR": 2,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "MXN": 2,
    "MYR": 2,
    "NOK": 2,
    "NZD": 2,
    "OMR": 3,
    "PHP": 2,
    "PLN": 2,
    "RON": 2,
    "SAR": 2,
    "SEK": 2,
    "SGD": 2,
    "THB": 2,
    "TND": 3,
    "TRY": 2,
    "TWD": 2,
    "UAH": 2,
    "USD": 2,
    "VND": 0,
    "ZAR": 2,
}

MAX_AMOUNT = Decimal(10) ** 9  # in major units; more is a typo or an attack


class InvalidMoney(DomainError, ValueError):
    """Not a valid amount of money: negative, not finite, too precise, too large, or
    in a currency we do not accept."""

    code = "invalid-money"


class CurrencyMismatch(InvalidMoney):
    """Arithmetic or comparison between amounts in different currencies."""

    code = "currency-mismatch"


class InvalidSku(DomainError, ValueError):
    """Not a valid stock-keeping unit code."""

    code = "invalid-sku"


def normalise_currency(currency: str) -> str:
    if not isinstance(currency, str):
        raise InvalidMoney("the currency must be an ISO 4217 code such as EUR")
    code = currency.strip().upper()
    if code not in CURRENCY_MINOR_UNITS:
        raise InvalidMoney(f"unsupported currency: {currency[:8]!r}")
    return code


def _to_decimal(amount: Decimal | int | str) -> Decimal:
    # bool is an int, float is inexact: both are refused rather than guessed at.
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int | str):
        raise InvalidMoney("the amount must be a decimal number, given as a string")
    if isinstance(amount, str) and len(amount) > 40:
        raise InvalidMoney("the amount is too long")
    try:
        return Decimal(amount.strip() if isinstance(amount, str) else amount)
    except InvalidOperation as error:
        raise InvalidMoney(f"not a number: {str(amount)[:40]!r}") from error


@dataclass(frozen=True, slots=True)
class Money:
    """A non-negative amount of one currency, exact to its minor unit."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        currency = normalise_currency(self.currency)
        amount = _to_decimal(self.amount)
        if not amount.is_finite():
            raise InvalidMoney("the amount must be a finite number")
        if amount < 0:
            raise InvalidMoney("the amount must not be negative")
        if amount > MAX_AMOUNT:
            raise InvalidMoney(f"the amount must not exceed {MAX_AMOUNT:,} {currency}")
        quantum = Decimal(1).scaleb(-CURRENCY_MINOR_UNITS[currency])
        exact = amount.quantize(quantum)
        if exact != amount:
            places = CURRENCY_MINOR_UNITS[currency]
            raise InvalidMoney(f"{currency} amounts have at most {places} decimal places")
        object.__setattr__(self, "amount", exact + 0)  # + 0 turns -0.00 into 0.00
        object.__setattr__(self, "currency", currency)

    @classmethod
    def of(cls, amount: Decimal | int | str, currency: str) -> Money:
        """Parse an amount given as a string (the way clients send it), int or Decimal."""
        return cls(_to_decimal(amount), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    @classmethod
    def from_minor_units(cls, units: int, currency: str) -> Money:
        """``from_minor_units(1050, "EUR")`` is ``10.50 EUR`` (how gateways count)."""
        if isinstance(units, bool) or not isinstance(units, int):
            raise InvalidMoney("an amount in minor units is a whole number")
        code = normalise_currency(currency)
        return cls(Decimal(units).scaleb(-CURRENCY_MINOR_UNITS[code]), code)

    @property
    def minor_units(self) -> int:
        """The amount in the currency's smallest unit (cents for EUR, yen for JPY)."""
        return int(self.amount.scaleb(CURRENCY_MINOR_UNITS[self.currency]))

    # --- payloads -------------------------------------------------------------

    def to_dict(self) -> dict[str, str]:
        return {"amount": str(self.amount), "currency": self.currency}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Money:
        if not isinstance(data, Mapping) or set(data) != {"amount", "currency"}:
            raise InvalidMoney("a price is an object with exactly amount and currency")
        return cls.of(data["amount"], data["currency"])

    # --- arithmetic, only within one currency ----------------------------------

    def _same_currency(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}")
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.amount + self._same_currency(other).amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        """Money is never negative: subtracting more than there is is refused."""
        return Money(self.amount - self._same_currency(other).amount, self.currency)

    def __mul__(self, quantity: int) -> Money:
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise TypeError("Money multiplies by a whole quantity only")
        return Money(self.amount * quantity, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        return self.amount < self._same_currency(other).amount

    def __le__(self, other: Money) -> bool:
        return self.amount <= self._same_currency(other).amount

    def __gt__(self, other: Money) -> bool:
        return self.amount > self._same_currency(other).amount

    def __ge__(self, other: Money) -> bool:
        return self.amount >= self._same_currency(other).amount

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


# --- SKUs -------------------------------------------------------------------------

_SKU = re.compile(r"[A-Z0-9][A-Z0-9-]{1,63}")


def normalise_sku(sku: str) -> str:
    """A SKU is 2-64 characters of A-Z, 0-9 and '-', not starting with '-'. Compared
    case-insensitively (stored upper-case), like an email address: ``ab-1`` and
    ``AB-1`` name the same stock."""
    if not isinstance(sku, str) or not sku.isascii():
        raise InvalidSku("a SKU is a string of ASCII letters, digits and '-'")
    code = sku.strip().upper()
    if _SKU.fullmatch(code) is None:
        raise InvalidSku(
            "a SKU is 2-64 characters of letters, digits and '-', starting with a letter "
            f"or digit: {sku[:70]!r}"
        )
    return code
