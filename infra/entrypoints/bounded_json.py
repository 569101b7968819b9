"""A request's JSON body, parsed once with a depth bound, and its text screened.

``orjson`` parses first: C, fast, and it refuses what is not JSON (NaN, Infinity,
lone surrogates, invalid UTF-8) and any nesting past 1,024 levels with an error,
never a ``RecursionError``. One iterative walk then bounds the depth far lower,
finds the first string (or key) holding a character no text field accepts, and
notes whether any float appeared. Money never passes through a float: a body with
a fraction or an exponent anywhere (or an integer past 64 bits, which orjson makes
a float) is parsed again by ``json.loads`` with numbers as ``Decimal``, safe from
recursion now that its depth is known.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

from commands.http.parsed_body import exact_number, no_constants
from domain.text import forbidden_at

Location = tuple[str | int, ...]


class MalformedJson(ValueError):
    """The body is not JSON."""


class TooDeep(ValueError):
    """The body nests arrays and objects deeper than the bound."""


@dataclass(frozen=True, slots=True)
class ForbiddenText:
    """Where a body's text first holds a forbidden character; ``in_key``: in the
    name of a member of the object at ``location`` (which is not repeated)."""

    location: Location
    character: str
    index: int
    in_key: bool


@dataclass(frozen=True, slots=True)
class ParsedJson:
    value: Any
    forbidden: ForbiddenText | None


def parse_json(body: bytes, max_depth: int) -> ParsedJson:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        if str(error).startswith("depth limit"):
            raise TooDeep from None
        if not str(error).startswith("number is infinity"):
            raise MalformedJson from None
        # 1e400 is JSON, past a double's range: Decimal keeps it (an amount refuses it).
        value = _exact(body)
    forbidden, floats = _walk(value, max_depth)
    return ParsedJson(_exact(body) if floats else value, forbidden)


def _exact(body: bytes) -> Any:
    try:
        return json.loads(body, parse_float=exact_number, parse_constant=no_constants)
    except RecursionError:  # only on the 1e400 path, where the depth is not known yet
        raise TooDeep from None
    except ValueError:
        raise MalformedJson from None


def _walk(root: Any, max_depth: int) -> tuple[ForbiddenText | None, bool]:
    """Iterative, so that no body can exhaust the stack."""
    forbidden: ForbiddenText | None = None
    floats = False
    # (location, container, depth): the root is the one member of a nameless object.
    stack: list[tuple[Location, Any, int]] = [((), {None: root}, 0)]
    while stack:
        location, container, depth = stack.pop()
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, item in items:
            if isinstance(item, str):
                if forbidden is None and (at := forbidden_at(item)) is not None:
                    forbidden = ForbiddenText(_inside(location, key), item[at], at, in_key=False)
            elif isinstance(item, dict | list):
                if depth >= max_depth:
                    raise TooDeep
                stack.append((_inside(location, key), item, depth + 1))
            elif isinstance(item, float):
                floats = True
            if forbidden is None and isinstance(key, str) and (at := forbidden_at(key)) is not None:
                forbidden = ForbiddenText(location, key[at], at, in_key=True)
    return forbidden, floats


def _inside(location: Location, key: str | int | None) -> Location:
    return location if key is None else (*location, key)
