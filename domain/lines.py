"""What carts and orders hold: lines of a product, a SKU, a quantity and a unit price.

Both aggregates keep the same bounds, so a cart that is valid can always be placed
as an order. In event payloads a line is a plain dict (see ``domain.money`` for the
price's shape)::

    {"product_id": UUID, "sku": "AB-1", "quantity": 2,
     "unit_price": {"amount": "9.90", "currency": "EUR"}}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from domain.errors import DomainError
from domain.money import Money, normalise_sku

MAX_LINES = 50
MAX_LINE_QUANTITY = 100


class InvalidLine(DomainError, ValueError):
    """A line's product, SKU, quantity or price is malformed or out of bounds, or a
    cart or order would hold too many lines or mix currencies."""

    code = "invalid-line"


def valid_line_quantity(quantity: object) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidLine("a quantity is a whole number")
    if not 1 <= quantity <= MAX_LINE_QUANTITY:
        raise InvalidLine(f"a quantity is between 1 and {MAX_LINE_QUANTITY} per line")
    return quantity


def line(product_id: UUID, sku: str, quantity: int, unit_price: Money) -> dict[str, Any]:
    """A validated line payload."""
    if not isinstance(product_id, UUID):
        raise InvalidLine("a line names its product by id")
    if not isinstance(unit_price, Money):
        raise InvalidLine("a line's unit price is Money")
    return {
        "product_id": product_id,
        "sku": normalise_sku(sku),
        "quantity": valid_line_quantity(quantity),
        "unit_price": unit_price.to_dict(),
    }


def valid_lines(lines: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Line payloads checked again (they may come from a client or an old event):
    at most ``MAX_LINES``, one per SKU, one currency."""
    checked = []
    for entry in lines:
        try:
            price = Money.from_dict(entry["unit_price"])
            checked.append(line(entry["product_id"], entry["sku"], entry["quantity"], price))
        except (KeyError, TypeError) as error:
            raise InvalidLine("a line has product_id, sku, quantity and unit_price") from error
    if len(checked) > MAX_LINES:
        raise InvalidLine(f"at most {MAX_LINES} lines")
    skus = [entry["sku"] for entry in checked]
    if len(set(skus)) != len(skus):
        raise InvalidLine("each SKU appears on one line only")
    single_currency(checked)
    return checked


def line_total(line: Mapping[str, Any]) -> Money:
    return Money.from_dict(line["unit_price"]) * int(line["quantity"])


def lines_total(lines: Iterable[Mapping[str, Any]], currency: str) -> Money:
    total = Money.zero(currency)
    for entry in lines:
        total += line_total(entry)
    return total


def single_currency(lines: Iterable[Mapping[str, Any]]) -> str | None:
    """The one currency of ``lines`` (None when empty); mixed currencies are refused."""
    currencies = {str(entry["unit_price"]["currency"]) for entry in lines}
    if len(currencies) > 1:
        raise InvalidLine(f"lines must share one currency, not {sorted(currencies)}")
    return next(iter(currencies), None)
