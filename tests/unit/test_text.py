"""The text rule: which characters no text field accepts, and where the first one is."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.text import forbidden_at, header_forbidden_at, single_line

FORBIDDEN = [
    *(chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"),
    "\x7f",
    *(chr(c) for c in range(0x80, 0xA0)),
    "\ud800",
    "\udfff",
    "\ufffe",
    "\uffff",
]
forbidden_characters = st.sampled_from(FORBIDDEN)
# Everything else: letters, marks, spaces, emoji, TAB/LF/CR, the line separators.
allowed_text = st.text(
    st.characters(
        blacklist_categories=["Cs"], blacklist_characters=[c for c in FORBIDDEN if c < "\ud800"]
    )
).filter(lambda t: "\ufffe" not in t and "\uffff" not in t)


class Refused(DomainError):
    pass


@given(allowed_text)
def test_ordinary_text_passes(text: str) -> None:
    assert forbidden_at(text) is None


@given(allowed_text, forbidden_characters, allowed_text)
def test_the_first_forbidden_character_is_found(before: str, character: str, after: str) -> None:
    assert forbidden_at(before + character + after) == len(before)


def test_whitespace_that_text_needs_is_allowed() -> None:
    assert forbidden_at("line one\nline two\r\n\tindented\u2028é€😀") is None


@pytest.mark.parametrize("character", FORBIDDEN)
def test_single_line_fields_refuse_them_too(character: str) -> None:
    with pytest.raises(Refused):
        single_line("name", f"Ev{character}e", 100, Refused)


@pytest.mark.parametrize("character", ["\t", "\n", "\r", "\u2028"])
def test_single_line_fields_refuse_line_breaks_and_tabs(character: str) -> None:
    with pytest.raises(Refused):
        single_line("name", f"Ev{character}e", 100, Refused)


def test_header_values_allow_tab_and_latin_1_but_no_other_control() -> None:
    assert header_forbidden_at(b"Bearer abc\tdef \xe9\x85") is None
    assert header_forbidden_at(b"a\x00b") == 1
    assert header_forbidden_at(b"ab\n") == 2
    assert header_forbidden_at(b"\x7f") == 0
