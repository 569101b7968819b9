"""Request and response bodies of the write API. Unknown fields are refused (422):
a typo must not be silently ignored. Text is normalised to Unicode NFC, so that
the same name typed on two keyboards is the same text, except in fields marked
``EXACT`` (secrets and tokens, compared as sent)."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StrictBool,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from domain.notifications import valid_time_zone
from domain.users import Role

EXACT = object()
"""Marks a text field ``Body`` does not normalise: ``Annotated[str, EXACT]``."""

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# Long enough for any real password; the strength policy says why a password is refused.
Password = Annotated[str, Field(min_length=1, max_length=1024), EXACT]
LinkToken = Annotated[str, Field(min_length=1, max_length=300), EXACT]


def _nfc(value: Any) -> Any:
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, list):
        return [_nfc(item) for item in value]
    if isinstance(value, dict):
        return {_nfc(key): _nfc(item) for key, item in value.items()}
    return value  # numbers, ids, nested bodies (normalised by their own validator)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _normalised(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name is not None and EXACT in cls.model_fields[info.field_name].metadata:
            return value
        return _nfc(value)


class Registration(Body):
    email: EmailStr
    password: Password
    name: Name


class LinkTokenBody(Body):
    token: LinkToken


class EmailBody(Body):
    email: EmailStr


class Credentials(Body):
    email: EmailStr
    password: Password


class RefreshBody(Body):
    refresh_token: Annotated[str, Field(min_length=1, max_length=4096), EXACT]


class PasswordResetConfirmation(Body):
    token: LinkToken
    new_password: Password


class PasswordChange(Body):
    current_password: Password
    new_password: Password


class Address(Body):
    label: Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)] | None = None
    line1: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    line2: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    city: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    region: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    postal_code: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)
    ]
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = Field(
        description="ISO 3166-1 alpha-2 code"
    )


HourMinute = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class NotificationPreferences(Body):
    """Any of the keys: a partial update, merged into the stored preferences (a key
    left out keeps its value). Mirrors ``domain.notifications.valid_preferences``,
    which the aggregate applies too: the schema documents it and refuses early.
    Account and security messages are sent whatever these say."""

    order_updates_email: StrictBool = True
    order_updates_sms: StrictBool = False
    order_updates_push: StrictBool = True
    order_updates_in_app: StrictBool = True
    marketing_email: StrictBool = False
    marketing_sms: StrictBool = False
    marketing_push: StrictBool = False
    marketing_in_app: StrictBool = True
    locale: Literal["en", "de"] = "en"
    time_zone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        default="UTC", description="An IANA time zone, e.g. Europe/Berlin"
    )
    quiet_hours_start: HourMinute | None = Field(
        default=None,
        description="HH:MM in time_zone; give both ends or neither (null both: none). "
        "SMS and push that are not urgent wait for the end; they are never dropped",
    )
    quiet_hours_end: HourMinute | None = None

    @field_validator("time_zone", mode="after")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return valid_time_zone(value)  # InvalidPreferences is a ValueError: a 422

    @model_validator(mode="after")
    def _quiet_hours_whole(self) -> NotificationPreferences:
        given = {"quiet_hours_start", "quiet_hours_end"} & self.model_fields_set
        if len(given) == 1:
            raise ValueError("give quiet_hours_start and quiet_hours_end together")
        if (self.quiet_hours_start is None) != (self.quiet_hours_end is None):
            raise ValueError("quiet hours have a start and an end, or neither")
        if self.quiet_hours_start is not None and self.quiet_hours_start == self.quiet_hours_end:
            raise ValueError("quiet hours that start when they end are empty")
        return self


class ProfileChanges(Body):
    name: Name | None = None
    phone: Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")] | None = Field(
        default=None, description="E.164, e.g. +441632960961"
    )
    addresses: Annotated[list[Address], Field(max_length=20)] | None = None
    notification_preferences: NotificationPreferences | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> ProfileChanges:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be removed")
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


class RoleBody(Body):
    role: Role


class ErasureRequest(Body):
    password: Password


class Deactivation(Body):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class WrittenOut(BaseModel):
    id: str
    position: str | None = Field(
        description="Consistency token: pass it to queries as X-Consistency-Token"
    )


class CartLineWrittenOut(WrittenOut):
    cart_token: str | None = Field(
        default=None, description="A guest's only: send it as X-Cart-Token from then on"
    )


class WebhookReceipt(BaseModel):
    received: bool
    recorded: int = Field(description="Facts the event reported that were new to the payment")


class TokensOut(BaseModel):
    user_id: str
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"
    expires_in: int
    position: str | None
