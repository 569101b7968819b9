"""What the users queries answer (``read_api.users``), for the OpenAPI document; each
answer is validated against its model, key by key (no other key is answered).

A profile's addresses and notification preferences are stored as the client sent
them: an optional key left out then is absent from the answer too (the routes
answer with ``response_model_exclude_unset``), and its default here says what its
absence means."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from domain.users import Role
from read_api.catalog_models import Answer


class ProfileAddress(Answer):
    label: str | None = None
    line1: str
    line2: str | None = None
    city: str
    region: str | None = None
    postal_code: str
    country: str = Field(description="ISO 3166-1 alpha-2 code")


class ProfileNotifications(Answer):
    order_updates_email: bool = True
    order_updates_sms: bool = False
    marketing_email: bool = False


class Profile(Answer):
    user_id: UUID
    email: str
    name: str
    phone: str | None
    addresses: list[ProfileAddress]
    notification_preferences: ProfileNotifications | None = Field(
        description="Null once a profile change set it to null (PATCH /users/me accepts that)"
    )
    roles: list[Role]
    email_verified: bool
    active: bool
    registered_at: datetime
    updated_at: datetime


class AdminUser(Answer):
    user_id: UUID
    email: str
    name: str
    roles: list[Role]
    email_verified: bool
    active: bool
    deactivation_reason: str | None
    registered_at: datetime
    last_login_at: datetime | None
    login_count: int


class AdminUserPage(Answer):
    items: list[AdminUser]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null: last")
