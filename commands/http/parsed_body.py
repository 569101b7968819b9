"""The route class of every router: a request's JSON body is the one the edge parsed.

The edge middleware (``infra.entrypoints.request_edge``) reads each body once, bounds its size
and depth, refuses control characters and card data in it, and leaves the parsed
value in the ASGI scope under ``PARSED_JSON``; ``ParsedBodyRoute`` hands that value
to FastAPI instead of parsing the bytes a second time.

Money never passes through a float: JSON numbers with a fraction or an exponent are
parsed to ``Decimal`` (``exact_number``), those written with an exponent as
``ExponentDecimal`` so that an amount can refuse them. ``NaN`` and ``Infinity`` are
not JSON and are refused (``no_constants``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

PARSED_JSON = "eventshop.json"
"""The scope key under which the edge leaves a request's parsed JSON body."""


class ExponentDecimal(Decimal):
    """A JSON number written with an exponent (``1e400``): refused as an amount."""


def exact_number(text: str) -> Decimal:
    """``parse_float`` for ``json.loads``."""
    return ExponentDecimal(text) if "e" in text or "E" in text else Decimal(text)


def no_constants(name: str) -> Any:
    """``parse_constant`` for ``json.loads``: NaN and Infinity are not JSON."""
    raise json.JSONDecodeError(f"{name} is not valid JSON", name, 0)


class _ParsedBodyRequest(Request):
    async def json(self) -> Any:
        if PARSED_JSON not in self.scope:
            # FastAPI took the body for JSON where the edge did not (an unusual
            # content type): refuse it as malformed rather than parse it unbounded.
            raise json.JSONDecodeError("the body was not parsed at the edge", "", 0)
        return self.scope[PARSED_JSON]


class ParsedBodyRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:  # nothing to parse: no cost on the hot GET routes
            return handler

        async def parsed(request: Request) -> Response:
            return await handler(_ParsedBodyRequest(request.scope, request.receive))

        return parsed
