"""Validation of free text shared by the aggregates and the HTTP edge."""

from __future__ import annotations

import re

from domain.errors import DomainError

# No text field accepts these: C0 controls but TAB, LF and CR; DEL; C1 controls;
# lone surrogates (they cannot be encoded, so a store would fail on them forever);
# the noncharacters U+FFFE and U+FFFF.
_NEVER = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff"
_FORBIDDEN = re.compile(f"[{_NEVER}]")
_LINE_FORBIDDEN = re.compile(f"[{_NEVER}\t\n\r\u2028\u2029]")
# Header values are latin-1 bytes: C0 controls but TAB, and DEL (0x80-0xFF is obs-text).
_HEADER_FORBIDDEN = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def forbidden_at(text: str) -> int | None:
    """Where ``text`` first holds a character no text field accepts, or None."""
    match = _FORBIDDEN.search(text)
    return None if match is None else match.start()


def header_forbidden_at(value: bytes) -> int | None:
    """Where a raw header value first holds a control character, or None."""
    match = _HEADER_FORBIDDEN.search(value)
    return None if match is None else match.start()


def single_line(field: str, value: object, max_len: int, error: type[DomainError]) -> str:
    if not isinstance(value, str):
        raise error(f"{field} must be text")
    text = value.strip()
    if not text:
        raise error(f"{field} must not be empty")
    if len(text) > max_len:
        raise error(f"{field} must be at most {max_len:,} characters")
    if _LINE_FORBIDDEN.search(text):
        raise error(f"{field} must be a single line without control characters")
    return text
