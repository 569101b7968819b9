"""The ``analytics_payments`` view: it follows the payments log; one row per payment
attempt (one per order) with its method (the gateway: sandbox, stripe, paypal), its
outcome and, for a decline, the gateway's code and reason. The declines per method
and day are counted from it (``projections.analytics.payment_queries``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from psycopg import Cursor
from psycopg.rows import DictRow

from domain.payments import Payment
from projections.engine import View, ViewProjection


class PaymentAttemptsView(View):
    name = "analytics_payments"
    follows = ("payments",)
    tables = {
        "analytics_payment_attempts": """
            payment_id uuid PRIMARY KEY,
            order_id uuid NOT NULL,
            method text NOT NULL,
            currency text NOT NULL,
            amount numeric NOT NULL,
            requested_at timestamptz NOT NULL,
            authorized boolean NOT NULL DEFAULT false,
            declined boolean NOT NULL DEFAULT false,
            decline_code text,
            decline_reason text
        """,
    }
    indexes = [
        "CREATE INDEX IF NOT EXISTS analytics_payments_requested "
        "ON {schema}.analytics_payment_attempts (requested_at, method)",
    ]


class PaymentAttemptsProjection(ViewProjection[PaymentAttemptsView]):
    name = "analytics_payments"

    def apply(self, event: Any, cursor: Cursor[DictRow]) -> None:
        match event:
            case Payment.Requested():
                cursor.execute(
                    "INSERT INTO analytics_payment_attempts (payment_id, order_id, method, "
                    "currency, amount, requested_at) VALUES (%s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (payment_id) DO NOTHING",
                    (
                        event.originator_id,
                        event.order_id,
                        event.gateway,
                        event.amount["currency"],
                        Decimal(event.amount["amount"]),
                        event.timestamp,
                    ),
                )
            case Payment.Authorized():
                cursor.execute(
                    "UPDATE analytics_payment_attempts SET authorized = true WHERE payment_id = %s",
                    (event.originator_id,),
                )
            case Payment.AuthorizationFailed():
                cursor.execute(
                    "UPDATE analytics_payment_attempts SET declined = true, decline_code = %s, "
                    "decline_reason = %s WHERE payment_id = %s",
                    (event.code, event.reason, event.originator_id),
                )
