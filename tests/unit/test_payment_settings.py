"""The gateway a process uses follows the settings; a chosen gateway without its
credentials is refused at startup, not at the first checkout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from infra.payments.paypal import PayPalGateway
from infra.payments.sandbox import SandboxGateway
from infra.payments.stripe import StripeGateway, StripeWebhooks
from infra.settings import Settings
from infra.wiring.ordering import PaymentSettingsMissing, payment_gateway

SECRET = "s" * 48


def settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(data_dir=tmp_path, secret_key=SECRET, **values)  # type: ignore[arg-type]


@pytest.fixture
def pool() -> ConnectionPool[Any]:
    return ConnectionPool("postgresql://nowhere.invalid/none", open=False)  # never opened


def test_the_sandbox_is_the_default(tmp_path: Path, pool: ConnectionPool[Any]) -> None:
    gateway, webhooks = payment_gateway(settings(tmp_path), pool)
    assert isinstance(gateway, SandboxGateway) and webhooks is None


def test_stripe_with_and_without_a_webhook_secret(
    tmp_path: Path, pool: ConnectionPool[Any]
) -> None:
    chosen = settings(tmp_path, payment_gateway="stripe", stripe_api_key="sk_test_x")
    gateway, webhooks = payment_gateway(chosen, pool)
    assert isinstance(gateway, StripeGateway) and webhooks is None
    signed = settings(
        tmp_path, payment_gateway="stripe", stripe_api_key="sk_test_x", stripe_webhook_secret="w"
    )
    assert isinstance(payment_gateway(signed, pool)[1], StripeWebhooks)


def test_paypal(tmp_path: Path, pool: ConnectionPool[Any]) -> None:
    chosen = settings(
        tmp_path, payment_gateway="paypal", paypal_client_id="id", paypal_secret="secret"
    )
    assert isinstance(payment_gateway(chosen, pool)[0], PayPalGateway)


@pytest.mark.parametrize("gateway", ["stripe", "paypal"])
def test_missing_credentials_are_refused(
    tmp_path: Path, pool: ConnectionPool[Any], gateway: str
) -> None:
    with pytest.raises(PaymentSettingsMissing):
        payment_gateway(settings(tmp_path, payment_gateway=gateway), pool)
