"""What users see of themselves and what admins list; a user's data export
(``GET /users/me/data-export``, ``GET /admin/users/{id}/data-export``, assembled in
``read_api.data_export``)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from commands.http.parsed_body import ParsedBodyRoute
from domain.errors import UnknownEntity
from domain.users import Role
from projections.users.queries import UserFilter, list_users, user_profile
from read_api.data_export import data_export_response
from read_api.data_export_models import DataExport
from read_api.deps import CurrentAdmin, CurrentUser, Positions, Services, wait_for
from read_api.users_models import AdminUserPage, Profile

router = APIRouter(tags=["users"], route_class=ParsedBodyRoute)


@router.get("/users/me", response_model=Profile, response_model_exclude_unset=True)
async def my_profile(
    principal: CurrentUser, services: Services, positions: Positions
) -> dict[str, Any]:
    return await _profile(principal.user_id, services, positions)


@router.get("/users/me/data-export", response_model=DataExport)
async def my_data_export(
    principal: CurrentUser, services: Services, positions: Positions
) -> StreamingResponse:
    """Everything the shop holds about you, as a JSON download (GDPR art. 15 and 20):
    profile, addresses, orders, payments, reviews, notifications and push devices."""
    return await data_export_response(principal.user_id, services, positions)


@router.get("/users/{user_id}", response_model=Profile, response_model_exclude_unset=True)
async def profile(
    user_id: UUID,
    principal: CurrentUser,
    services: Services,
    positions: Positions,
) -> dict[str, Any]:
    """Your own profile, or anyone's for an admin. Another user's answers 404, as
    for an unknown id: who has an account is not disclosed."""
    if not principal.may_see_user(user_id):
        raise UnknownEntity("no such user")
    return await _profile(user_id, services, positions)


@router.get("/admin/users", response_model=AdminUserPage)
async def admin_user_list(
    _: CurrentAdmin,
    services: Services,
    positions: Positions,
    role: Role | None = None,
    active: bool | None = None,
    email_prefix: Annotated[str | None, Query(max_length=200)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Newest first. Pass ``next_cursor`` back as ``cursor`` for the next page."""
    await wait_for(services, "admin_users", positions)
    where = UserFilter(role=role.value if role else None, active=active, email_prefix=email_prefix)
    async with services.pool.connection() as conn:
        rows, next_cursor = await list_users(conn, where, cursor, limit)
    return {"items": rows, "next_cursor": next_cursor}


@router.get("/admin/users/{user_id}/data-export", response_model=DataExport)
async def admin_data_export(
    user_id: UUID, _: CurrentAdmin, services: Services, positions: Positions
) -> StreamingResponse:
    """A user's data export, for an admin answering their request: the same document
    as ``GET /users/me/data-export`` gives them. An unknown user answers 404."""
    return await data_export_response(user_id, services, positions)


async def _profile(user_id: UUID, services: Services, positions: Positions) -> dict[str, Any]:
    await wait_for(services, "user_profiles", positions)
    async with services.pool.connection() as conn:
        row = await user_profile(conn, user_id)
    if row is None:
        raise UnknownEntity("no such user")
    return row
