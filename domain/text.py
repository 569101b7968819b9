"""Validation of free text shared by the aggregates."""

from __future__ import annotations

import re

from domain.errors import DomainError

_LINE_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


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
