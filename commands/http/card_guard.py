"""The edge of every route that takes payment or order input: a request carrying a
card number or a card security code anywhere (body or query) is refused with 422
``card-data-refused`` before anything reads it, naming where (never what). Nothing
is stored or logged: the body is not kept beyond this check and the handler.
Clients pay with gateway tokens (``pm_...``), never card data (PCI DSS SAQ-A)."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from starlette.types import Message

from commands.card_data import contains_card_number, find_card_data
from commands.errors import CommandRefused
from commands.http.catalog_schemas import ExactNumbersRoute


class CardDataRefused(CommandRefused):
    status = 422
    code = "card-data-refused"


def refuse_card_data(body: bytes, query: list[tuple[str, str]]) -> None:
    try:
        payload: Any = json.loads(body) if body else None
    except ValueError:  # not JSON: the handler answers that; still look at the text
        payload = body.decode("utf-8", errors="replace")
    where = find_card_data(payload)
    where += [f"query {name}" for name, value in query if contains_card_number(value)]
    if where:
        raise CardDataRefused(
            "card numbers and security codes are never accepted: pay with a payment method "
            f"token from the payment provider (found at {', '.join(where[:5])})"
        )


class CardDataGuardRoute(ExactNumbersRoute):
    """``ExactNumbersRoute`` (money as Decimal) that refuses card data first."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            body = await request.body()
            refuse_card_data(body, list(request.query_params.multi_items()))

            async def replay() -> Message:  # hand the body on to the handler
                return {"type": "http.request", "body": body, "more_body": False}

            return await handler(Request(request.scope, replay))

        return guarded
