"""What an order's fields may hold (lines aside: ``domain.lines``): the bounds of its
texts, the shipping address, and the error a malformed field raises."""

from __future__ import annotations

from collections.abc import Mapping

from domain.errors import DomainError
from domain.text import single_line

MAX_REASON = 500
MAX_CARRIER = 100
MAX_TRACKING_NUMBER = 100
MAX_ADDRESS_FIELDS = 12
MAX_ADDRESS_FIELD = 200
MAX_URL = 2000


class InvalidOrder(DomainError, ValueError):
    """An order field (lines, address, reason, carrier, amount) is malformed."""

    code = "invalid-order"


def valid_shipment(carrier: object, tracking_number: object) -> tuple[str, str]:
    """The carrier and tracking number as a shipment records them."""
    return (
        single_line("carrier", carrier, MAX_CARRIER, InvalidOrder),
        single_line("tracking number", tracking_number, MAX_TRACKING_NUMBER, InvalidOrder),
    )


def valid_reason(reason: object, what: str = "reason") -> str:
    return single_line(what, reason, MAX_REASON, InvalidOrder)


def readable_reason(text: str) -> str:
    """``text`` (a gateway's or an error's message, not ours to bound) as a reason
    ``valid_reason`` accepts: one line, at most ``MAX_REASON`` characters."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= MAX_REASON else flat[: MAX_REASON - 1] + "\u2026"


def valid_address(address: object) -> dict[str, str]:
    """A shipping address: a flat object of short single-line texts (its fields are
    the storefront's; the order keeps what it was given, for the shipment)."""
    if not isinstance(address, Mapping) or not address or len(address) > MAX_ADDRESS_FIELDS:
        raise InvalidOrder(f"a shipping address is an object of 1-{MAX_ADDRESS_FIELDS} fields")
    return {
        single_line("address field name", key, 40, InvalidOrder): single_line(
            f"address field {str(key)[:40]!r}", value, MAX_ADDRESS_FIELD, InvalidOrder
        )
        for key, value in address.items()
    }
