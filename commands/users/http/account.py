"""A user's own account: profile changes, deactivation and erasure."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from commands.http.deps import CurrentUser
from commands.http.parsed_body import ParsedBodyRoute
from commands.http.responses import respond_written
from commands.users.http.deps import Services
from commands.users.http.schemas import ErasureRequest, ProfileChanges, WrittenOut

router = APIRouter(prefix="/users/me", tags=["users"], route_class=ParsedBodyRoute)


@router.patch("", response_model=WrittenOut)
def update_profile(
    body: ProfileChanges, principal: CurrentUser, services: Services
) -> JSONResponse:
    """Change any of name, phone, addresses (replaced whole) and notification preferences."""
    return respond_written(services.users.update_profile(principal.user_id, body.changes()))


@router.post("/deactivate", response_model=WrittenOut)
def deactivate_self(principal: CurrentUser, services: Services) -> JSONResponse:
    """Close this account: every session ends and it can no longer log in."""
    return respond_written(
        services.users.deactivate(
            principal.user_id, "closed by the account holder", principal.user_id
        )
    )


@router.post("/erasure", response_model=WrittenOut)
def erase_self(body: ErasureRequest, principal: CurrentUser, services: Services) -> JSONResponse:
    """Erase this account's personal data for good (crypto-shredding, ADR 0024): the
    account closes, and name, email, phone and addresses read as erased everywhere;
    orders and payments keep their amounts. Confirmed with the password."""
    return respond_written(
        services.users.erase(principal.user_id, principal.user_id, password=body.password)
    )
