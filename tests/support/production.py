"""Settings production accepts: every check of ``infra/settings_safety.py`` passed.
Tests change one of them to see it refused."""

from __future__ import annotations

from typing import Any

STRONG_SECRET = "xe8_jMX1XLp4fAaiP81z2J6vOIQtfdY9zAddT-m-Uv5xmzwaPDX3ryHaQsHhqLL7"
ENCRYPTION_KEY = "XolcgpJcNONFwOlD/cFWNJgdAXpqE9EwpItAkFpH6PQ="
"""A 256-bit AES key in base64 (tests only)."""
AUDIT_SIGNING_KEY = "o2DoS4Hh3ZCr6YlFPq4lsAnp5vNm1Ttr+5FeK8lCKm8="
"""An Ed25519 private key in base64 (tests only)."""

PRODUCTION: dict[str, Any] = {
    "environment": "production",
    "secret_key": STRONG_SECRET,
    "encryption_key": ENCRYPTION_KEY,
    "audit_signing_key": AUDIT_SIGNING_KEY,
    "database_url": "postgresql://shop@db.internal/shop?sslmode=verify-full",
    "payment_gateway": "stripe",
    "stripe_api_key": "sk_live_x",
    "notify_email": "ses",
    "notify_sms": "sns",
    "notify_push": "sns",
}


def as_environment(settings: dict[str, Any]) -> dict[str, str]:
    """``settings`` as the ``SHOP_`` variables a process reads them from."""
    return {f"SHOP_{name.upper()}": str(value) for name, value in settings.items()}
