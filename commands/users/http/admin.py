"""Admin actions on users: roles, deactivation and erasure."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from commands.http.deps import CurrentAdmin
from commands.http.parsed_body import ParsedBodyRoute
from commands.http.responses import respond_written
from commands.users.http.deps import Services
from commands.users.http.schemas import Deactivation, RoleBody, WrittenOut
from domain.users import Role

router = APIRouter(prefix="/admin/users", tags=["admin"], route_class=ParsedBodyRoute)


@router.post("/{user_id}/roles", response_model=WrittenOut)
def grant_role(
    user_id: UUID, body: RoleBody, admin: CurrentAdmin, services: Services
) -> JSONResponse:
    return respond_written(services.users.grant_role(user_id, body.role, admin.user_id))


@router.delete("/{user_id}/roles/{role}", response_model=WrittenOut)
def revoke_role(user_id: UUID, role: Role, admin: CurrentAdmin, services: Services) -> JSONResponse:
    return respond_written(services.users.revoke_role(user_id, role, admin.user_id))


@router.post("/{user_id}/deactivate", response_model=WrittenOut)
def deactivate(
    user_id: UUID, body: Deactivation, admin: CurrentAdmin, services: Services
) -> JSONResponse:
    return respond_written(services.users.deactivate(user_id, body.reason, admin.user_id))


@router.post("/{user_id}/erasure", response_model=WrittenOut)
def erase(user_id: UUID, admin: CurrentAdmin, services: Services) -> JSONResponse:
    """Erase a user's personal data on their behalf (ADR 0024)."""
    return respond_written(services.users.erase(user_id, admin.user_id))
