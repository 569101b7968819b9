"""The PAN/CVV guard: card data never enters our system (PCI DSS SAQ-A scope).

Clients pay with gateway tokens; a request that carries a card number or a card
security code anywhere in its payload is refused (the HTTP layer answers 422 naming
where, never echoing what). ``find_card_data`` walks any JSON-like payload and
answers the paths of what it found:

- a card number: a run of 14-19 digits, optionally split by single spaces or dashes
  (``4242 4242 4242 4242``, ``4000-0000-0000-0002``), in a string (anywhere in free
  text) or given as a JSON number, that starts with a card brand's IIN prefix, has a
  length that brand issues, and passes the Luhn check (``_BRANDS``, as PCI DLP tools
  match). Luhn alone refused ordinary SKUs: a 13-digit EAN/GTIN barcode passes it
  about 1 time in 10; no brand below issues 12 or 13 digits. Maestro (50, 56-69)
  is matched at 16-19 digits only: its legacy 12-15-digit numbers are rare, while
  12-14-digit GTINs starting with 5 or 6 (the UK, Scandinavia, China) are routine
  SKUs. Diners Club's 14-digit numbers stay matched, so a GTIN-14 starting with
  300-305, 36 or 38 is refused about 1 time in 10. Runs of more than 19 digits are
  not card numbers. UUIDs (dashed, or as 32 hex digits) are skipped: the digits of
  their groups, joined by their dashes or between letters, made a Luhn-valid run in
  about 1 random UUID in 300 (a product id was refused as card data that way).
- a security code field: a key named like cvv, cvc, cvv2, cvc2, cid, csc or
  security code / card verification (any case, any ``_``/``-``/space), whatever its
  value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

MAX_DEPTH = 32  # deeper payloads are refused elsewhere; stop here rather than recurse on

# The lookbehind after the first digit, not before it: the pattern then starts with
# a digit, so the regex engine skips ahead to digits instead of trying the
# lookbehind at every position of free text (bench/README.md#figures-once-quoted-in-code-comments).
_DIGIT_RUN = re.compile(r"[0-9](?<![0-9]{2})(?:[ -]?[0-9]){13,}(?![0-9])")
# (first digits from, to, shortest, longest): the brands' IIN ranges and lengths.
# Discover and UnionPay lie within Maestro's range; they stay listed in their own right.
_BRANDS = (
    ("4", "4", 16, 19),  # Visa
    ("51", "55", 16, 16),  # Mastercard
    ("2221", "2720", 16, 16),  # Mastercard 2-series
    ("34", "34", 15, 15),  # American Express
    ("37", "37", 15, 15),
    ("6011", "6011", 16, 19),  # Discover
    ("644", "649", 16, 19),
    ("65", "65", 16, 19),
    ("3528", "3589", 16, 19),  # JCB
    ("36", "36", 14, 19),  # Diners Club
    ("38", "38", 14, 19),
    ("300", "305", 14, 19),
    ("62", "62", 16, 19),  # UnionPay
    ("50", "50", 16, 19),  # Maestro
    ("56", "69", 16, 19),
)
_HEX = "[0-9a-fA-F]"
_UUID = re.compile(
    rf"(?<![0-9A-Za-z])(?:{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}|{_HEX}{{32}})"
    r"(?![0-9A-Za-z])"
)
_SEPARATORS = re.compile(r"[ -]")
_KEY_SEPARATORS = re.compile(r"[\s_-]")
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


def is_card_number(digits: str) -> bool:
    """``digits`` (digits only) is a number some card brand issues."""
    return any(
        low <= digits[: len(low)] <= high and shortest <= len(digits) <= longest
        for low, high, shortest, longest in _BRANDS
    ) and luhn_valid(digits)


def contains_card_number(text: str) -> bool:
    if _DIGIT_RUN.search(text) is None:  # most text: blanking UUIDs only removes runs
        return False
    for match in _DIGIT_RUN.finditer(_UUID.sub(" ", text)):
        if is_card_number(_SEPARATORS.sub("", match.group())):
            return True
    return False


def is_security_code_key(key: str) -> bool:
    return _KEY_SEPARATORS.sub("", key).lower() in _CVV_KEYS


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
