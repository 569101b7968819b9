"""Production refuses to start with settings that would run the shop as a demo, and
names every one of them at once; outside production only a bad key is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from infra import settings as settings_module
from infra.settings import Settings
from tests.support.production import ENCRYPTION_KEY, PRODUCTION, STRONG_SECRET

UNSAFE: dict[str, tuple[dict[str, Any], str]] = {
    "no secret key": ({"secret_key": None}, "SHOP_SECRET_KEY must be set"),
    "short secret key": ({"secret_key": "Aa1-" * 7}, "SHOP_SECRET_KEY must be a random"),
    "placeholder secret": ({"secret_key": "changeme"}, "SHOP_SECRET_KEY must be a random"),
    "few distinct characters": ({"secret_key": "ab" * 24}, "SHOP_SECRET_KEY must be a random"),
    "no encryption key": ({"encryption_key": None}, "SHOP_ENCRYPTION_KEY must be set"),
    "key not base64": ({"encryption_key": "not a key!"}, "SHOP_ENCRYPTION_KEY must be 16"),
    "key of 20 bytes": ({"encryption_key": "A" * 27 + "="}, "SHOP_ENCRYPTION_KEY must be 16"),
    "no database": ({"database_url": None}, "SHOP_DATABASE_URL must be set"),
    "database in clear": (
        {"database_url": "postgresql://shop@db.internal/shop"},
        "SHOP_DATABASE_URL must require TLS",
    ),
    "database TLS optional": (
        {"database_url": "postgresql://shop@db.internal/shop?sslmode=prefer"},
        "SHOP_DATABASE_URL must require TLS",
    ),
    "sandbox gateway": ({"payment_gateway": "sandbox"}, "SHOP_PAYMENT_GATEWAY must be a real"),
    "mailbox": ({"notify_sms": "mailbox"}, "SHOP_NOTIFY_SMS must be a real channel"),
}


def test_safe_production_settings_are_accepted() -> None:
    Settings(**PRODUCTION)


@pytest.mark.parametrize("case", UNSAFE, ids=list(UNSAFE))
def test_each_unsafe_setting_is_refused(case: str) -> None:
    change, message = UNSAFE[case]
    with pytest.raises(ValidationError, match=message):
        Settings(**PRODUCTION | change)


def test_every_unsafe_setting_is_named_at_once() -> None:
    unsafe = {
        "secret_key": "x" * 40,
        "encryption_key": None,
        "database_url": "postgresql://shop@db.internal/shop?sslmode=disable",
        "payment_gateway": "sandbox",
        "notify_email": "mailbox",
        "notify_push": "mailbox",
    }
    with pytest.raises(ValidationError) as refused:
        Settings(**PRODUCTION | unsafe)
    message = str(refused.value)
    for setting in (
        "SHOP_SECRET_KEY",
        "SHOP_ENCRYPTION_KEY",
        "SHOP_DATABASE_URL",
        "SHOP_PAYMENT_GATEWAY",
        "SHOP_NOTIFY_EMAIL, SHOP_NOTIFY_PUSH",
    ):
        assert setting in message, setting
    assert "SHOP_NOTIFY_SMS" not in message  # sns: nothing wrong with it


@pytest.mark.parametrize(
    "database_url",
    [
        "postgresql://shop@db.internal/shop?sslmode=require",
        "postgresql://shop@db.internal/shop?sslmode=verify-ca&sslrootcert=/etc/ca.pem",
        "host=db.internal dbname=shop sslmode=verify-full",
    ],
)
def test_production_takes_a_database_url_that_requires_tls(database_url: str) -> None:
    Settings(**PRODUCTION | {"database_url": database_url})


@pytest.mark.parametrize("gateway", ["stripe", "paypal"])
def test_production_takes_real_gateways(gateway: str) -> None:
    Settings(**PRODUCTION | {"payment_gateway": gateway})


def test_development_refuses_a_bad_key_alone_and_allows_the_demo() -> None:
    Settings()  # the sandbox, the mailbox, no key, the embedded Postgres: all fine here
    Settings(secret_key=SecretStr("x" * 40))  # distinct characters: production's rule only
    with pytest.raises(ValidationError, match="SHOP_SECRET_KEY must be a random"):
        Settings(secret_key=SecretStr("too-short"))
    with pytest.raises(ValidationError, match="SHOP_ENCRYPTION_KEY must be 16"):
        Settings(encryption_key=SecretStr("A" * 27 + "="))


def test_secrets_come_from_files_under_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Docker's secrets (compose ``secrets:``) are files named as the variables."""
    monkeypatch.setattr(settings_module, "SECRETS_DIR", tmp_path)
    (tmp_path / "shop_secret_key").write_text(STRONG_SECRET + "\n")
    (tmp_path / "shop_encryption_key").write_text(ENCRYPTION_KEY)
    given = Settings()
    assert given.secret_key is not None and given.secret_key.get_secret_value() == STRONG_SECRET
    assert given.encryption_key is not None
    assert given.encryption_key.get_secret_value() == ENCRYPTION_KEY
    monkeypatch.setenv("SHOP_SECRET_KEY", "y" + STRONG_SECRET)
    overridden = Settings().secret_key
    assert overridden is not None and overridden.get_secret_value() == "y" + STRONG_SECRET
