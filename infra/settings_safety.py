"""What makes settings unsafe: a weak signing secret, an encryption key the cipher
cannot use, and (in production) anything that would run the shop as a demo: the
sandbox gateway, the local mailbox, no encryption at rest, a database reached
without TLS. Production names every offence at once, so that an operator fixes
them in one deployment rather than one per failed start."""

from __future__ import annotations

import binascii
from base64 import b64decode
from typing import TYPE_CHECKING

from eventsourcing.cipher import AESCipher
from psycopg import ProgrammingError
from psycopg.conninfo import conninfo_to_dict

from streams.audit_chain.heads import private_key

if TYPE_CHECKING:
    from infra.settings import Settings

PLACEHOLDERS = {"changeme", "change-me", "changethis", "secret", "password", "test", "dev"}
MIN_SECRET_LENGTH = 32
MIN_SECRET_DISTINCT = 10
"""Distinct characters a production secret needs: any random key of 32 characters
has them (hex too, nearly always 14 or more), "x" * 40 or "abab..." does not."""
TLS_SSLMODES = ("require", "verify-ca", "verify-full")
_NEW_SECRET = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
_NEW_AUDIT_KEY = "shop audit new-key"
_NEW_KEY = "python -c 'from eventsourcing.cipher import AESCipher; print(AESCipher.create_key(32))'"


def secret_key_problem(secret: str, *, production: bool) -> str | None:
    """Why ``secret`` cannot sign tokens, or None. A placeholder or a short key is
    refused everywhere; production also refuses one of few distinct characters."""
    if (
        secret.lower() in PLACEHOLDERS
        or len(secret) < MIN_SECRET_LENGTH
        or (production and len(set(secret)) < MIN_SECRET_DISTINCT)
    ):
        distinct = f", {MIN_SECRET_DISTINCT} of them distinct" if production else ""
        return (
            f"SHOP_SECRET_KEY must be a random value of at least {MIN_SECRET_LENGTH} "
            f"characters{distinct}, e.g. `{_NEW_SECRET}`"
        )
    return None


def encryption_key_problem(key: str) -> str | None:
    """Why ``key`` is no AES key (16, 24 or 32 bytes in base64), or None."""
    try:
        size = len(b64decode(key, validate=True))
    except (binascii.Error, ValueError):
        size = None
    if size not in AESCipher.KEY_SIZES:
        return f"SHOP_ENCRYPTION_KEY must be 16, 24 or 32 random bytes in base64, e.g. `{_NEW_KEY}`"
    return None


def audit_key_problem(key: str) -> str | None:
    """Why ``key`` is no Ed25519 signing key (32 bytes in base64), or None."""
    try:
        private_key(key)
    except ValueError:
        return f"SHOP_AUDIT_SIGNING_KEY must be 32 random bytes in base64, e.g. `{_NEW_AUDIT_KEY}`"
    return None


def unsafe_in_production(settings: Settings) -> list[str]:
    """Every reason ``settings`` must not run in production (empty: none)."""
    problems = []
    if settings.secret_key is None:
        problems.append(f"SHOP_SECRET_KEY must be set, e.g. `{_NEW_SECRET}`")
    else:
        weak = secret_key_problem(settings.secret_key.get_secret_value(), production=True)
        problems += [weak] if weak else []
    if settings.encryption_key is None:
        problems.append(
            f"SHOP_ENCRYPTION_KEY must be set (event state is encrypted at rest), e.g. `{_NEW_KEY}`"
        )
    else:
        invalid = encryption_key_problem(settings.encryption_key.get_secret_value())
        problems += [invalid] if invalid else []
    if settings.audit_signing_key is None:
        problems.append(
            f"SHOP_AUDIT_SIGNING_KEY must be set (it signs the audit chain's heads), "
            f"e.g. `{_NEW_AUDIT_KEY}`"
        )
    else:
        invalid = audit_key_problem(settings.audit_signing_key.get_secret_value())
        problems += [invalid] if invalid else []
    if not settings.database_url:
        problems.append("SHOP_DATABASE_URL must be set (with sslmode=require or verify-full)")
    elif _sslmode(settings.database_url) not in TLS_SSLMODES:
        problems.append(
            "SHOP_DATABASE_URL must require TLS: sslmode=require, verify-ca or verify-full "
            "(verify-full with sslrootcert also checks the server's name)"
        )
    if settings.payment_gateway == "sandbox":
        problems.append(
            "SHOP_PAYMENT_GATEWAY must be a real gateway (stripe or paypal), not sandbox"
        )
    mailbox = [
        f"SHOP_NOTIFY_{name.upper()}"
        for name in ("email", "sms", "push")
        if getattr(settings, f"notify_{name}") == "mailbox"
    ]
    if mailbox:
        # The local mailbox would keep every reset link where any admin reads it.
        problems.append(
            f"{', '.join(mailbox)} must be a real channel, not the local mailbox "
            "(email: smtp or ses; SMS: sns or off; push: sns or off)"
        )
    return problems


def _sslmode(database_url: str) -> str | None:
    try:
        sslmode = conninfo_to_dict(database_url).get("sslmode")
    except ProgrammingError:  # not a connection string at all: it requires nothing
        return None
    return None if sslmode is None else str(sslmode)
