"""The sandbox gateway's 3-D Secure challenge, standing in for the card issuer's page
that Stripe would show: served only when the sandbox is the payment gateway.

``GET /sandbox/3ds/{reference}`` shows how the payment stands; ``POST`` with
``{"outcome": "approve"}`` or ``{"outcome": "deny"}`` is the shopper's answer (the
first one counts). The shopper then confirms the order's payment
(``POST /orders/{id}/payment/confirm``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict

from commands.http.parsed_body import ParsedBodyRoute
from commands.ordering.payment_gateway import (
    ActionRequired,
    AuthorizationOutcome,
    Authorized,
)
from infra.payments.sandbox import CHALLENGE_PATH, SandboxGateway

router = APIRouter(tags=["sandbox payments"], route_class=ParsedBodyRoute)
Reference = Annotated[str, Path(max_length=255, pattern=r"^[\w-]+$")]


class ChallengeAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["approve", "deny"]


class ChallengeStanding(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reference: str
    status: Literal["awaiting_authentication", "authorized", "failed"]


def _gateway(request: Request) -> SandboxGateway:
    gateway: SandboxGateway = request.app.state.container.ordering.payments.gateway
    return gateway


def _standing(reference: str, outcome: AuthorizationOutcome) -> dict[str, Any]:
    match outcome:
        case ActionRequired():
            status = "awaiting_authentication"
        case Authorized():
            status = "authorized"
        case _:
            status = "failed"
    return {"reference": reference, "status": status}


@router.get(CHALLENGE_PATH + "/{reference}", response_model=ChallengeStanding)
async def challenge(reference: Reference, request: Request) -> dict[str, Any]:
    gateway = _gateway(request)
    return _standing(reference, await run_in_threadpool(gateway.retrieve, reference))


@router.post(CHALLENGE_PATH + "/{reference}", response_model=ChallengeStanding)
async def answer(reference: Reference, body: ChallengeAnswer, request: Request) -> dict[str, Any]:
    gateway = _gateway(request)
    outcome = await run_in_threadpool(gateway.authenticate, reference, body.outcome == "approve")
    return _standing(reference, outcome)
