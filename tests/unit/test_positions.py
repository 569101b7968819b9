"""Consistency tokens: ``log:position`` lists, parsed and formatted."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.positions import MalformedToken, Position, format_positions, parse_positions

logs = st.builds(
    str.__add__,
    st.sampled_from(string.ascii_lowercase),
    st.text(alphabet=string.ascii_lowercase + string.digits + "_", max_size=62),
)
ids = st.integers(0, 10**18 - 1)
positions = st.builds(Position, logs, ids)
spaces = st.sampled_from(["", " ", "  ", "\t", " \n"])


@given(ps=st.lists(positions, min_size=1, max_size=8))
@settings(max_examples=200)
def test_format_then_parse_gives_the_positions_back(ps: list[Position]) -> None:
    assert parse_positions(format_positions(ps)) == ps


@given(ps=st.lists(positions, min_size=1, max_size=5), data=st.data())
@settings(max_examples=100)
def test_whitespace_around_tokens_is_ignored(ps: list[Position], data: st.DataObject) -> None:
    header = ",".join(f"{data.draw(spaces)}{p}{data.draw(spaces)}" for p in ps)
    assert parse_positions(header) == ps
    assert format_positions(parse_positions(header)) == format_positions(ps)


@given(header=st.text(max_size=80))
@settings(max_examples=300)
def test_any_header_parses_or_raises_malformed_token(header: str) -> None:
    try:
        parsed = parse_positions(header)
    except MalformedToken:
        return
    parts = [part.strip().split(":") for part in header.split(",")]
    assert [(p.log, p.id) for p in parsed] == [(log, int(n)) for log, n in parts]
    assert parse_positions(format_positions(parsed)) == parsed


def test_examples() -> None:
    assert parse_positions("users:1042") == [Position("users", 1042)]
    assert parse_positions("users:1, orders:7") == [Position("users", 1), Position("orders", 7)]
    assert parse_positions("users:007") == [Position("users", 7)]
    assert str(Position("users", 1042)) == "users:1042"
    assert format_positions([Position("a", 1), Position("b_2", 0)]) == "a:1,b_2:0"
    assert Position("a", 2) < Position("a", 10) < Position("b", 0)


@pytest.mark.parametrize(
    "header",
    [
        "",
        " ",
        "users",
        "users:",
        ":12",
        "users:-1",
        "users:1.5",
        "users:1e3",
        "users:0x10",
        "Users:1",
        "1users:1",
        "_users:1",
        "us-ers:1",
        "us ers:1",
        "users :1",
        "users: 1",
        "users:1:2",
        "users:1,",
        ",users:1",
        "users:1,,orders:2",
        "users:1;orders:2",
        "users:1234567890123456789",  # 19 digits
        "a" * 64 + ":1",  # log name of 64 characters
        "users:\u0661\u0662",  # Arabic-Indic digits are not ASCII digits
        "users:\uff11\uff12",  # full-width digits
        "üsers:1",
        "users:1\x00",
    ],
)
def test_malformed_tokens_are_refused(header: str) -> None:
    with pytest.raises(MalformedToken):
        parse_positions(header)


def test_the_limits_are_accepted() -> None:
    longest = "a" * 63
    assert parse_positions(f"{longest}:{'9' * 18}") == [Position(longest, 10**18 - 1)]


def test_malformed_token_is_a_value_error_with_a_bounded_message() -> None:
    with pytest.raises(ValueError, match="not a consistency token") as caught:
        parse_positions("x" * 1000)
    assert len(str(caught.value)) < 100
