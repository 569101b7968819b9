"""Payment provider webhooks. ``POST /webhooks/stripe`` verifies the
``Stripe-Signature`` and records what the event reports on the payment, once: the
same webhook delivered twice (or the webhook and our own API call's answer for the
same fact) records nothing the second time. For a payment awaiting 3-D Secure, an
authorization, capture or failure is taken as a prompt to ask Stripe how the
authentication ended (``PaymentCommands.record``). 404 when Stripe is not the
gateway."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from commands.actors import as_webhook
from commands.http.parsed_body import ParsedBodyRoute
from commands.ordering.http.deps import OrderingDeps
from commands.users.http.schemas import WebhookReceipt
from domain.errors import UnknownEntity

router = APIRouter(tags=["payments"], route_class=ParsedBodyRoute)


@router.post("/webhooks/stripe", response_model=WebhookReceipt)
async def stripe_webhook(
    request: Request,
    services: OrderingDeps,
    signature: Annotated[str, Header(alias="Stripe-Signature", max_length=2000)],
) -> JSONResponse:
    webhooks = services.stripe_webhooks
    if webhooks is None:
        raise UnknownEntity("Stripe is not this shop's payment gateway")
    payload = await request.body()

    def record() -> int:
        outcomes = webhooks.outcomes(payload, signature)
        with as_webhook("stripe"):  # the events it records name the webhook as actor
            return sum(services.payments.record(outcome) is not None for outcome in outcomes)

    recorded = await run_in_threadpool(record)
    return JSONResponse({"received": True, "recorded": recorded})
