"""What the users queries answer (``read_api.users``), for the OpenAPI document; each
answer is validated against its model, key by key (no other key is answered).

A profile's addresses are stored as the client sent them: an optional key left out
then is absent from the answer too (the routes answer with
``response_model_exclude_unset``), and its default here says what its absence
means. Notification preferences are answered whole (``ProfileNotifications``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field, model_validator

from domain.notifications import DEFAULT_LOCALE, DEFAULT_TIME_ZONE, default_preferences
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
    """Every preference, the stored ones and, for each key not stored (never set,
    or stored before the key existed), its default: the answer always has them all."""

    order_updates_email: bool = True
    order_updates_sms: bool = False
    order_updates_push: bool = True
    order_updates_in_app: bool = True
    marketing_email: bool = False
    marketing_sms: bool = False
    marketing_push: bool = False
    marketing_in_app: bool = True
    locale: str = Field(default=DEFAULT_LOCALE, description="en or de")
    time_zone: str = Field(default=DEFAULT_TIME_ZONE, description="IANA, e.g. Europe/Berlin")
    quiet_hours_start: str | None = Field(default=None, description="HH:MM; null: none")
    quiet_hours_end: str | None = Field(default=None, description="HH:MM; null: none")

    @model_validator(mode="before")
    @classmethod
    def _every_key(cls, stored: Any) -> Any:
        # Given, not defaulted: so that ``response_model_exclude_unset`` answers them.
        if isinstance(stored, Mapping):
            return {**default_preferences(), **stored}
        return stored


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
