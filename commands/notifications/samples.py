"""A plausible context for every kind, as the policy would build it: what
``shop notifications preview`` renders, and what the template tests render in every
locale and channel (so a template naming a value the policy does not give fails a
test, not a delivery)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.notifications import Kind

_SHOP = "http://127.0.0.1:8000"
_ORDER = "0b7c6a1e-3f1d-4c7e-9a55-2d8f0f6b1c11"
_ORDER_BASE = {"order_id": _ORDER, "link": f"{_SHOP}/orders/{_ORDER}"}
_COMMON = {"name": "Ada Lovelace", "shop_url": _SHOP, "time_zone": "Europe/Berlin"}
_TOKEN = "eyJhbGciOiJIUzI1NiJ9.sample.token"

SAMPLES: Mapping[Kind, Mapping[str, Any]] = {
    Kind.VERIFY_EMAIL: {
        "link": f"{_SHOP}/verify-email?token={_TOKEN}",
        "token": _TOKEN,
        "expires_at": "2026-12-04T09:30:00+00:00",
    },
    Kind.RESET_PASSWORD: {
        "link": f"{_SHOP}/reset-password?token={_TOKEN}",
        "token": _TOKEN,
        "expires_at": "2026-12-03T10:30:00+00:00",
    },
    Kind.ACCOUNT_DEACTIVATED: {},
    Kind.ROLE_CHANGED: {"role": "seller", "granted": True},
    Kind.ORDER_CONFIRMED: _ORDER_BASE
    | {
        "lines": [
            {
                "sku": "MUG-BLUE",
                "quantity": 2,
                "unit_price": {"amount": "12.50", "currency": "EUR"},
                "line_total": {"amount": "25.00", "currency": "EUR"},
            },
            {
                "sku": "TEA-EARLGREY",
                "quantity": 1,
                "unit_price": {"amount": "1234.00", "currency": "EUR"},
                "line_total": {"amount": "1234.00", "currency": "EUR"},
            },
        ],
        "total": {"amount": "1259.00", "currency": "EUR"},
        "shipping_address": {
            "name": "Ada Lovelace",
            "line1": "12 St James's Square",
            "city": "London",
            "postal_code": "SW1Y 4JH",
            "country": "GB",
        },
    },
    Kind.ORDER_REJECTED: _ORDER_BASE | {"reason": "MUG-BLUE is out of stock"},
    Kind.PAYMENT_FAILED: _ORDER_BASE | {"reason": "card declined"},
    Kind.PAYMENT_AUTHENTICATION: _ORDER_BASE
    | {"link": "https://bank.example/3ds/approve?session=abc"},
    Kind.ORDER_SHIPPED: _ORDER_BASE | {"carrier": "DHL", "tracking_number": "JD014600006281"},
    Kind.ORDER_DELIVERED: _ORDER_BASE,
    Kind.ORDER_CANCELLED: _ORDER_BASE | {"reason": "cancelled at the customer's request"},
    Kind.RETURN_APPROVED: _ORDER_BASE,
    Kind.RETURN_REFUSED: _ORDER_BASE | {"reason": "the return window has closed"},
    Kind.REFUND_ISSUED: _ORDER_BASE | {"amount": {"amount": "25.00", "currency": "EUR"}},
    Kind.LOW_STOCK: {
        "sku": "MUG-BLUE",
        "available": 3,
        "threshold": 5,
        "link": f"{_SHOP}/inventory?sku=MUG-BLUE",
    },
    Kind.REVIEW_REPLY: {
        "product_id": "5d2f3a9b-1c4e-4f6a-8b7d-9e0a1b2c3d4e",
        "reply": "Thank you! The blue glaze is made by hand, so each mug differs a little.",
        "link": f"{_SHOP}/products/5d2f3a9b-1c4e-4f6a-8b7d-9e0a1b2c3d4e/reviews",
    },
}


def sample_context(kind: Kind) -> dict[str, Any]:
    return {**_COMMON, **SAMPLES[kind]}
