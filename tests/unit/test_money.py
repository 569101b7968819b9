"""Money and SKUs: what they accept, what they refuse, exact arithmetic, payloads."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.application import Application
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.money import (
    CURRENCY_MINOR_UNITS,
    MAX_AMOUNT,
    CurrencyMismatch,
    InvalidMoney,
    InvalidSku,
    Money,
    normalise_sku,
)

currencies = st.sampled_from(sorted(CURRENCY_MINOR_UNITS))


@st.composite
def money(draw: st.DrawFn, currency: str | None = None) -> Money:
    code = currency or draw(currencies)
    places = CURRENCY_MINOR_UNITS[code]
    minor = draw(st.integers(0, int(MAX_AMOUNT) * 10**places))
    return Money(Decimal(minor).scaleb(-places), code)


# --- what is accepted -------------------------------------------------------------


@given(m=money())
@settings(max_examples=200)
def test_payload_round_trip_is_exact(m: Money) -> None:
    payload = m.to_dict()
    assert set(payload) == {"amount", "currency"}
    assert all(isinstance(v, str) for v in payload.values())
    back = Money.from_dict(payload)
    assert back == m
    assert back.to_dict() == payload
    # The amount string is canonical: exactly the currency's minor digits.
    places = CURRENCY_MINOR_UNITS[m.currency]
    assert -back.amount.as_tuple().exponent == places  # type: ignore[operator]
    assert Decimal(payload["amount"]) == m.amount


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("10", "EUR", "10.00"),
        ("10.5", "eur", "10.50"),
        (" 0.1 ", "USD", "0.10"),
        ("10.500", "USD", "10.50"),  # trailing zeros are not extra precision
        (7, "JPY", "7"),
        (Decimal("1E+3"), "JPY", "1000"),
        ("1.234", "KWD", "1.234"),
        ("0", "GBP", "0.00"),
        ("-0", "GBP", "0.00"),
        ("1000000000", "USD", "1000000000.00"),
    ],
)
def test_amounts_are_normalised_to_the_minor_unit(
    amount: Any, currency: str, expected: str
) -> None:
    m = Money.of(amount, currency)
    assert m.to_dict() == {"amount": expected, "currency": currency.upper()}


def test_equal_amounts_are_equal_and_hash_alike() -> None:
    a, b = Money.of("10", "EUR"), Money.of("10.00", "EUR")
    assert a == b and hash(a) == hash(b)
    assert Money.of("10", "EUR") != Money.of("10", "USD")


def test_minor_units() -> None:
    assert Money.of("12.34", "EUR").minor_units == 1234
    assert Money.of("500", "JPY").minor_units == 500
    assert Money.of("1.005", "BHD").minor_units == 1005


# --- what is refused ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("-0.01", "EUR"),
        ("-1", "USD"),
        ("NaN", "EUR"),
        ("sNaN", "EUR"),
        ("Infinity", "EUR"),
        ("-Infinity", "EUR"),
        ("1.001", "EUR"),
        ("0.5", "JPY"),
        ("1.0001", "KWD"),
        ("1000000000.01", "USD"),
        ("1e10", "USD"),
        ("1e999999", "USD"),
        ("1e-999999", "USD"),
        ("twelve", "EUR"),
        ("", "EUR"),
        ("1" * 41, "EUR"),
        ("10", "XXX"),
        ("10", "EURO"),
        ("10", ""),
        ("10", "BTC"),
        (1.5, "EUR"),
        (True, "EUR"),
        (None, "EUR"),
        ("10", None),
    ],
)
def test_invalid_money_is_refused(amount: Any, currency: Any) -> None:
    with pytest.raises(InvalidMoney):
        Money.of(amount, currency)


def test_money_errors_are_domain_errors_and_value_errors() -> None:
    with pytest.raises(InvalidMoney) as caught:
        Money.of("-1", "EUR")
    assert isinstance(caught.value, DomainError) and isinstance(caught.value, ValueError)
    assert caught.value.code == "invalid-money"


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"amount": "1.00"},
        {"amount": "1.00", "currency": "EUR", "extra": "x"},
        {"amount": "-1.00", "currency": "EUR"},
        "1.00 EUR",
        None,
    ],
)
def test_malformed_payloads_are_refused(payload: Any) -> None:
    with pytest.raises(InvalidMoney):
        Money.from_dict(payload)


def test_the_constructor_validates_too() -> None:
    with pytest.raises(InvalidMoney):
        Money(Decimal("-5"), "EUR")
    with pytest.raises(InvalidMoney):
        Money(Decimal("5"), "ZZZ")


# --- arithmetic -------------------------------------------------------------------------


@given(data=st.data(), currency=currencies)
def test_arithmetic_is_exact_decimal_arithmetic(data: st.DataObject, currency: str) -> None:
    a = data.draw(money(currency))
    b = data.draw(money(currency))
    assume(a.amount + b.amount <= MAX_AMOUNT)
    total = a + b
    assert total.amount == a.amount + b.amount
    assert total == b + a
    assert total - b == a
    assert (a <= b) == (a.amount <= b.amount)
    assert (a < b) == (a.amount < b.amount)
    assert (a > b) == (a.amount > b.amount)
    assert (a >= b) == (a.amount >= b.amount)


@given(m=money(), quantity=st.integers(0, 1000))
def test_multiplying_by_a_quantity(m: Money, quantity: int) -> None:
    if m.amount * quantity > MAX_AMOUNT:
        with pytest.raises(InvalidMoney):
            m * quantity
    else:
        assert (m * quantity).amount == m.amount * quantity
        assert quantity * m == m * quantity


def test_money_never_goes_negative() -> None:
    with pytest.raises(InvalidMoney):
        Money.of("1.00", "EUR") - Money.of("1.01", "EUR")
    assert Money.of("1.00", "EUR") - Money.of("1.00", "EUR") == Money.zero("EUR")


def test_currencies_never_mix() -> None:
    eur, usd = Money.of("1", "EUR"), Money.of("1", "USD")
    for combine in (
        lambda: eur + usd,
        lambda: eur - usd,
        lambda: eur < usd,
        lambda: eur <= usd,
        lambda: eur > usd,
        lambda: eur >= usd,
    ):
        with pytest.raises(CurrencyMismatch):
            combine()


def test_only_whole_quantities_multiply() -> None:
    m = Money.of("2.50", "EUR")
    with pytest.raises(TypeError):
        m * 1.5  # type: ignore[operator]
    with pytest.raises(TypeError):
        m * True
    with pytest.raises(TypeError):
        m + Decimal(1)  # type: ignore[operator]


def test_the_event_store_transcoder_keeps_decimals_and_payloads_exact() -> None:
    """Why payloads hold the amount as a string: exact through any JSON encoder.
    (The library's transcoder would keep a Decimal exact as well.)"""
    app = Application[Any](env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    transcoder = app.mapper.transcoder
    payload = Money.of("19.99", "EUR").to_dict()
    assert transcoder.decode(transcoder.encode(payload)) == payload
    assert transcoder.decode(transcoder.encode(Decimal("19.990"))) == Decimal("19.990")


# --- SKUs -------------------------------------------------------------------------------

skus = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{1,63}", fullmatch=True)


@given(sku=skus)
def test_valid_skus_normalise_to_upper_case_idempotently(sku: str) -> None:
    code = normalise_sku(f"  {sku} ")
    assert code == sku.upper()
    assert normalise_sku(code) == code


@pytest.mark.parametrize(
    "sku",
    [
        "",
        "A",
        "-AB",
        "AB C",
        "AB_C",
        "AB.C",
        "A" * 65,
        "ÄBC",
        "\ufb00\u0031",  # the ligature ff upper-cases to ASCII "FF": still refused
        "A\nB",
        "AB\x00C",
    ],
)
def test_invalid_skus_are_refused(sku: str) -> None:
    with pytest.raises(InvalidSku):
        normalise_sku(sku)


def test_a_sku_of_another_type_is_refused() -> None:
    with pytest.raises(InvalidSku):
        normalise_sku(123)  # type: ignore[arg-type]


@given(
    units=st.integers(0, 10**9),
    currency=st.sampled_from(["EUR", "JPY", "KWD", "usd"]),
)
def test_minor_units_round_trip(units: int, currency: str) -> None:
    money = Money.from_minor_units(units, currency)
    assert money.minor_units == units
    assert money.currency == currency.upper()
    assert Money.from_minor_units(1050, "EUR") == Money.of("10.50", "EUR")
    assert Money.from_minor_units(1050, "JPY") == Money.of("1050", "JPY")
