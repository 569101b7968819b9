"""The PAN/CVV guard: card data never enters our system (PCI DSS SAQ-A scope).

Clients pay with gateway tokens; a request that carries a card number or a card
security code anywhere in its payload is refused (the HTTP layer answers 422 naming
where, never echoing what). ``find_card_data`` walks any JSON-like payload and
answers the paths of what it found:

- a card number: a run of 12-19 digits, optionally split by single spaces or dashes
  (``4242 4242 4242 4242``, ``4000-0000-0000-0002``), that passes the Luhn check; in a
  string (anywhere in free text) or given as a JSON number. Runs of more than 19
  digits are not card numbers. UUIDs (dashed, or as 32 hex digits) are skipped: the
  digits of their groups, joined by their dashes or between letters, make a
  Luhn-valid run of 12-19 digits in about 1 random UUID in 300 (a product id was refused
  as card data that way).
- a security code field: a key named like cvv, cvc, cvv2, cvc2, cid, csc or
  security code / card verification (any case, any ``_``/``-``/space), whatever its
  value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

MAX_DEPTH = 32  # deeper payloads are refused elsewhere; stop here rather than recurse on

_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){11,}(?![0-9])")
_HEX = "[0-9a-fA-F]"
_UUID = re.compile(
    rf"(?<![0-9A-Za-z])(?:{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}|{_HEX}{{32}})"
    r"(?![0-9A-Za-z])"
)
_CVV_KEYS = frozenset(
    {
        "cvv",
        "cvc",
        "cvv2",
        "cvc2",
        "cid",
        "csc",
        "securitycode",
        "cardsecuritycode",
        "cardverificationcode",
        "cardverificationvalue",
        "cardcvv",
        "cardcvc",
    }
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def contains_card_number(text: str) -> bool:
    for match in _DIGIT_RUN.finditer(_UUID.sub(" ", text)):
        digits = re.sub(r"[ -]", "", match.group())
        if 12 <= len(digits) <= 19 and luhn_valid(digits):
            return True
    return False


def is_security_code_key(key: str) -> bool:
    return re.sub(r"[\s_-]", "", key).lower() in _CVV_KEYS


def find_card_data(payload: Any) -> list[str]:
    """The paths (``$.payment.card.number``, ``$.lines[0].note``) where ``payload``
    holds a card number or a security code; empty when it holds none."""
    return list(_walk(payload, "$", 0))


def _walk(value: Any, path: str, depth: int) -> Iterator[str]:
    if depth > MAX_DEPTH:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            item_path = f"{path}.{key}"
            if isinstance(key, str) and (is_security_code_key(key) or contains_card_number(key)):
                yield item_path
            else:
                yield from _walk(item, item_path, depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]", depth + 1)
    elif (
        isinstance(value, str | int)
        and not isinstance(value, bool)
        and contains_card_number(str(value))
    ):
        yield path
