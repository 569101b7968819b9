"""The payment gateway this process uses, chosen by the settings: the sandbox (the
default: no network, no account), Stripe (``SHOP_STRIPE_API_KEY``; webhooks with
``SHOP_STRIPE_WEBHOOK_SECRET``) or PayPal (``SHOP_PAYPAL_CLIENT_ID`` and
``SHOP_PAYPAL_SECRET``). Every one runs over our ``PaymentLedger``."""

from __future__ import annotations

from typing import Any

import httpx
import stripe
from psycopg_pool import ConnectionPool

from commands.ordering.http.deps import Webhooks
from commands.ordering.payment_gateway import PaymentGateway
from infra.payments.ledger import PaymentLedger
from infra.payments.paypal import PayPalGateway
from infra.payments.sandbox import SandboxGateway
from infra.payments.stripe import StripeGateway, StripeWebhooks
from infra.settings import Settings

GATEWAY_TIMEOUT_SECONDS = 20.0


class PaymentSettingsMissing(ValueError):
    """The chosen gateway lacks the settings it needs."""


def payment_gateway(
    settings: Settings, pool: ConnectionPool[Any]
) -> tuple[PaymentGateway, Webhooks | None]:
    """The gateway, and the verifier of its webhooks (Stripe's, when configured)."""
    match settings.payment_gateway:
        case "stripe":
            client = _stripe_client(settings)
            gateway = StripeGateway(
                client, PaymentLedger(pool, "stripe"), settings.stripe_return_url
            )
            secret = settings.stripe_webhook_secret
            webhooks = None if secret is None else StripeWebhooks(client, secret.get_secret_value())
            return gateway, webhooks
        case "paypal":
            if settings.paypal_client_id is None or settings.paypal_secret is None:
                raise PaymentSettingsMissing(
                    "SHOP_PAYMENT_GATEWAY=paypal needs SHOP_PAYPAL_CLIENT_ID and SHOP_PAYPAL_SECRET"
                )
            http = httpx.Client(base_url=settings.paypal_base_url, timeout=GATEWAY_TIMEOUT_SECONDS)
            return PayPalGateway(
                http,
                settings.paypal_client_id,
                settings.paypal_secret.get_secret_value(),
                PaymentLedger(pool, "paypal"),
            ), None
    return SandboxGateway(pool, settings.public_url), None


def _stripe_client(settings: Settings) -> stripe.StripeClient:
    if settings.stripe_api_key is None:
        raise PaymentSettingsMissing("SHOP_PAYMENT_GATEWAY=stripe needs SHOP_STRIPE_API_KEY")
    key = settings.stripe_api_key.get_secret_value()
    if settings.stripe_api_base:  # tests: localstripe
        return stripe.StripeClient(key, base_addresses={"api": settings.stripe_api_base})
    return stripe.StripeClient(key, max_network_retries=2)
