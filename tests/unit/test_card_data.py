"""The PAN/CVV guard finds card numbers and security codes anywhere in a payload,
however formatted, and leaves everything else alone."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands.card_data import contains_card_number, find_card_data, luhn_valid

STRIPE_TEST_CARDS = [
    "4242424242424242",
    "4000056655665556",
    "5555555555554444",
    "2223003122003222",
    "378282246310005",
    "6011111111111117",
    "3056930009020004",
    "36227206271667",
    "3566002020360505",
    "6200000000000005",
    "4000000000000002",
    "4000000000009995",
    "4000002500003155",
]


def with_check_digit(body: str) -> str:
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


pans = st.integers(11, 18).flatmap(
    lambda n: st.text("0123456789", min_size=n, max_size=n).map(with_check_digit)
)


def formatted(pan: str, separator: str, group: int) -> str:
    return separator.join(pan[i : i + group] for i in range(0, len(pan), group))


@pytest.mark.parametrize("pan", STRIPE_TEST_CARDS)
def test_every_public_test_card_is_found(pan: str) -> None:
    assert find_card_data({"card": pan}) == ["$.card"]
    assert find_card_data({"card": formatted(pan, " ", 4)}) == ["$.card"]
    assert find_card_data({"card": formatted(pan, "-", 4)}) == ["$.card"]
    assert find_card_data({"card": int(pan)}) == ["$.card"]


@given(
    pan=pans,
    separator=st.sampled_from(["", " ", "-"]),
    group=st.integers(3, 6),
    prefix=st.text(alphabet=st.characters(blacklist_categories=["Nd"]), max_size=20),
    suffix=st.text(alphabet=st.characters(blacklist_categories=["Nd"]), max_size=20),
    path=st.lists(st.sampled_from(["payment", "note", 0, 1]), max_size=4),
)
def test_a_card_number_is_found_anywhere_however_formatted(
    pan: str, separator: str, group: int, prefix: str, suffix: str, path: list[str | int]
) -> None:
    text = prefix + formatted(pan, separator, group) + suffix
    payload: Any = text
    expected = ""
    for step in reversed(path):
        if isinstance(step, int):
            payload = [None] * step + [payload]
            expected = f"[{step}]" + expected
        else:
            payload = {"other": "x", step: payload}
            expected = f".{step}" + expected
    assert find_card_data({"body": payload}) == [f"$.body{expected}"]


@given(pan=pans)
def test_a_number_that_fails_luhn_is_not_a_card(pan: str) -> None:
    broken = pan[:-1] + str((int(pan[-1]) + 1) % 10)
    assert not contains_card_number(broken)
    assert find_card_data({"n": broken}) == []


@pytest.mark.parametrize(
    "key", ["cvv", "CVC", "cvv2", "card_cvc", "security-code", "Security Code", "cid", "csc"]
)
def test_security_code_fields_are_found_whatever_their_value(key: str) -> None:
    assert find_card_data({"payment": {"token": "tok_visa", key: ""}}) == [f"$.payment.{key}"]


def test_ordinary_payloads_pass() -> None:
    payload = {
        "payment_method_token": "pm_card_visa",
        "lines": [{"product_id": str(uuid.uuid4()), "sku": "SKU-4242", "quantity": 3}],
        "amount": "4242.42",
        "phone": "+33 6 12 34 56 78",
        "address": {"postcode": "75001", "line1": "4 rue de Rivoli"},
        "long_id": "4" * 25,  # a run longer than any card number
        "flag": True,
        "nothing": None,
        "ratio": 0.5,
    }
    assert find_card_data(payload) == []
    assert find_card_data({str(uuid.uuid4()): uuid.uuid4().hex}) == []


@given(st.uuids())
def test_no_uuid_is_taken_for_a_card_number(identifier: uuid.UUID) -> None:
    for text in (str(identifier), identifier.hex, str(identifier).upper()):
        assert not contains_card_number(text), text
    assert find_card_data({"product_id": str(identifier), "note": f"see {identifier}"}) == []


def test_these_uuids_were_taken_for_card_numbers() -> None:
    """Seen in CI: a cart line for one of these products answered 422 card-data-refused."""
    for text in ("5473d3e9-ad9f-4258-a1df-911946413257", "190ab1bf-6103-4f33-9922-555224a23435"):
        assert find_card_data({"product_id": text}) == []


def test_a_card_number_beside_a_uuid_is_still_found() -> None:
    text = f"order {uuid.uuid4()} paid with 4242 4242 4242 4242"
    assert contains_card_number(text)


def test_a_card_number_as_a_key_is_found() -> None:
    assert find_card_data({"4242 4242 4242 4242": "x"}) == ["$.4242 4242 4242 4242"]
