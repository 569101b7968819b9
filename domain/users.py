"""The User aggregate: identity, credentials, profile and roles.

Event payloads hold only JSON-friendly primitives (str, int, bool, list, dict,
datetime, UUID): events are a published contract, read by projections, relayed to
Kafka and kept forever, so they must not depend on Python classes that may change.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import (
    AccountInactive,
    DomainError,
    EmailNotVerified,
    InvalidToken,
    NotPermitted,
)
from domain.notifications import merged_preferences
from domain.text import single_line


class Role(StrEnum):
    CUSTOMER = "customer"
    SELLER = "seller"
    ADMIN = "admin"


class TokenPurpose(StrEnum):
    VERIFY_EMAIL = "verify-email"
    RESET_PASSWORD = "reset-password"


ERASED_TEXT = "[erased]"
"""What an erased user's name reads as (ADR 0024)."""


def erased_email(user_id: UUID) -> str:
    """An erased user's email address: unique per account, and undeliverable (the
    ``.invalid`` top-level domain is reserved for that, RFC 2606)."""
    return f"erased-{user_id.hex}@erased.invalid"


PROFILE_FIELDS = frozenset({"name", "phone", "addresses", "notification_preferences"})
MAX_NAME = 200
MAX_PROFILE_TEXT = 200

DEFAULT_NOTIFICATION_PREFERENCES: dict[str, bool] = {
    "order_updates_email": True,
    "order_updates_sms": False,
    "marketing_email": False,
}
"""What a new account stores (the registration event carries no preferences). Every
other key (``domain.notifications.PREFERENCE_KEYS``) takes its default while absent:
``domain.notifications.default_preferences``."""


def normalise_email(email: str) -> str:
    """Email addresses compare case-insensitively (RFC 5321 allows a case-sensitive
    local part, but no mail service in practice treats it so)."""
    return email.strip().lower()


class InvalidProfile(DomainError, ValueError):
    """A name or another profile text is empty, too long, or not a single line."""

    code = "invalid-profile"


def valid_name(name: object) -> str:
    return single_line("name", name, MAX_NAME, InvalidProfile)


def valid_profile_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """``changes`` with their texts checked (and trimmed); other values as given."""
    valid = dict(changes)
    if "name" in valid:
        valid["name"] = valid_name(valid["name"])
    if isinstance(valid.get("phone"), str):
        valid["phone"] = single_line("phone", valid["phone"], 20, InvalidProfile)
    if "addresses" in valid:
        addresses = valid["addresses"]
        if not isinstance(addresses, list):
            raise InvalidProfile("addresses must be a list")
        valid["addresses"] = [_valid_address(address) for address in addresses]
    return valid


def _valid_address(address: object) -> dict[str, str | None]:
    if not isinstance(address, Mapping):
        raise InvalidProfile("an address is an object of text fields")
    return {
        single_line("address field name", key, 40, InvalidProfile): _optional_line(
            f"address field {str(key)[:40]!r}", value
        )
        for key, value in address.items()
    }


def _optional_line(field: str, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and not value.strip():
        return ""  # an optional field left blank
    return single_line(field, value, MAX_PROFILE_TEXT, InvalidProfile)


class User(Aggregate):
    """A shopper, seller or admin account. Created by registration: ``User.register``
    (``__init__`` also replays stored events, so it checks nothing)."""

    erased = False
    """Set by ``Erased``; a class default, so that snapshots taken before it existed
    restore."""

    # Events: facts in the past tense, part of the published contract.

    class Registered(Aggregate.Created):
        email: str
        password_hash: str
        name: str

    class EmailVerified(Aggregate.Event):
        token_id: UUID

    class PasswordReset(Aggregate.Event):
        token_id: UUID
        password_hash: str

    class PasswordChanged(Aggregate.Event):
        password_hash: str

    class PasswordRehashed(Aggregate.Event):
        password_hash: str

    class ProfileUpdated(Aggregate.Event):
        changes: dict[str, Any]

    class RoleGranted(Aggregate.Event):
        role: str
        by: UUID

    class RoleRevoked(Aggregate.Event):
        role: str
        by: UUID

    class Deactivated(Aggregate.Event):
        reason: str
        by: UUID

    class TokenIssued(Aggregate.Event):
        purpose: str
        token_id: UUID
        expires_at: datetime

    class Erased(Aggregate.Event):
        """The account's personal data was erased (its key deleted, ADR 0024): the
        account is closed for good, and its personal attributes read as erased."""

        by: UUID

    @event(Registered)
    def __init__(self, id: UUID, email: str, password_hash: str, name: str) -> None:
        self.email = normalise_email(email)
        self.password_hash = password_hash
        self.name = name
        self.phone: str | None = None
        self.addresses: list[dict[str, Any]] = []
        # None once a profile change cleared them (then every key is its default).
        self.notification_preferences: dict[str, Any] | None = dict(
            DEFAULT_NOTIFICATION_PREFERENCES
        )
        self.roles: list[str] = [Role.CUSTOMER.value]
        self.email_verified = False
        self.active = True
        # Bumped by every password change: sessions started under an older
        # version can no longer refresh.
        self.credentials_version = 1
        # purpose -> {"token_id": UUID, "expires_at": datetime}: plain values, so that
        # snapshots need no custom transcoding.
        self.pending_tokens: dict[str, dict[str, Any]] = {}

    @classmethod
    def register(cls, id: UUID, email: str, password_hash: str, name: str) -> User:
        return cls(id=id, email=email, password_hash=password_hash, name=valid_name(name))

    # --- email verification -------------------------------------------------

    def request_email_verification(self, token_id: UUID, expires_at: datetime) -> None:
        self._require_active()
        if self.email_verified:
            return
        self._issue_token(TokenPurpose.VERIFY_EMAIL.value, token_id, expires_at)

    def verify_email(self, token_id: UUID, now: datetime) -> None:
        self._require_active()
        self._check_token(TokenPurpose.VERIFY_EMAIL, token_id, now)
        self._email_verified(token_id=token_id)

    @event(EmailVerified)
    def _email_verified(self, token_id: UUID) -> None:
        self.email_verified = True
        self.pending_tokens.pop(TokenPurpose.VERIFY_EMAIL.value, None)

    # --- credentials --------------------------------------------------------

    def check_can_log_in(self) -> None:
        self._require_active()
        if not self.email_verified:
            raise EmailNotVerified("verify your email address before logging in")

    def request_password_reset(self, token_id: UUID, expires_at: datetime) -> None:
        self._require_active()
        self._issue_token(TokenPurpose.RESET_PASSWORD.value, token_id, expires_at)

    def reset_password(self, token_id: UUID, password_hash: str, now: datetime) -> None:
        self._require_active()
        self._check_token(TokenPurpose.RESET_PASSWORD, token_id, now)
        self._password_reset(token_id=token_id, password_hash=password_hash)

    @event(PasswordReset)
    def _password_reset(self, token_id: UUID, password_hash: str) -> None:
        self.password_hash = password_hash
        self.credentials_version += 1
        self.pending_tokens.pop(TokenPurpose.RESET_PASSWORD.value, None)
        # Proving control of the mailbox also verifies the address.
        self.email_verified = True

    def change_password(self, password_hash: str) -> None:
        self._require_active()
        self._password_changed(password_hash=password_hash)

    @event(PasswordChanged)
    def _password_changed(self, password_hash: str) -> None:
        self.password_hash = password_hash
        self.credentials_version += 1

    def rehash_password(self, password_hash: str) -> None:
        """Store a stronger hash of the same password (hash parameters were raised).
        Sessions stay valid: the credentials did not change."""
        self._password_rehashed(password_hash=password_hash)

    @event(PasswordRehashed)
    def _password_rehashed(self, password_hash: str) -> None:
        self.password_hash = password_hash

    # --- profile ------------------------------------------------------------

    def update_profile(self, changes: dict[str, Any]) -> None:
        self._require_active()
        unknown = set(changes) - PROFILE_FIELDS
        if unknown:
            raise ValueError(f"not profile fields: {sorted(unknown)}")
        changes = valid_profile_changes(changes)
        if changes.get("notification_preferences") is not None:
            # A partial update: the event carries the whole result, so that replaying
            # it (and the projection, which stores it) needs no earlier state.
            changes["notification_preferences"] = merged_preferences(
                self.notification_preferences, changes["notification_preferences"]
            )
        effective = {k: v for k, v in changes.items() if getattr(self, k) != v}
        if effective:
            self._profile_updated(changes=effective)

    @event(ProfileUpdated)
    def _profile_updated(self, changes: dict[str, Any]) -> None:
        for field, value in changes.items():
            setattr(self, field, value)

    # --- roles and status ---------------------------------------------------

    def grant_role(self, role: Role, by: UUID) -> None:
        self._require_active()
        if role.value not in self.roles:
            self._role_granted(role=role.value, by=by)

    @event(RoleGranted)
    def _role_granted(self, role: str, by: UUID) -> None:
        self.roles = [*self.roles, role]

    def revoke_role(self, role: Role, by: UUID) -> None:
        self._require_active()
        if role is Role.CUSTOMER:
            raise NotPermitted("every account keeps the customer role")
        if role is Role.ADMIN and by == self.id:
            raise NotPermitted("an admin cannot revoke their own admin role")
        if role.value in self.roles:
            self._role_revoked(role=role.value, by=by)

    @event(RoleRevoked)
    def _role_revoked(self, role: str, by: UUID) -> None:
        self.roles = [r for r in self.roles if r != role]

    def deactivate(self, reason: str, by: UUID) -> None:
        if by == self.id and self.has_role(Role.ADMIN):
            raise NotPermitted("an admin cannot deactivate their own account")
        if self.active:
            self._deactivated(reason=reason, by=by)

    @event(Deactivated)
    def _deactivated(self, reason: str, by: UUID) -> None:
        self.active = False
        self.pending_tokens = {}

    def erase(self, by: UUID) -> None:
        """Close the account for good and blank its personal data (the caller
        deletes the subject's key first: ``commands.users.accounts``). Erasing an
        erased account again changes nothing."""
        if self.erased:
            return
        if by == self.id and self.has_role(Role.ADMIN):
            raise NotPermitted("an admin cannot erase their own account: revoke the role first")
        self._erased(by=by)

    @event(Erased)
    def _erased(self, by: UUID) -> None:
        self.email = erased_email(self.id)
        self.name = ERASED_TEXT
        self.phone = None
        self.addresses = []
        self.active = False
        self.pending_tokens = {}
        self.erased = True

    # --- helpers ------------------------------------------------------------

    def has_role(self, role: Role) -> bool:
        return role.value in self.roles

    def _require_active(self) -> None:
        if not self.active:
            raise AccountInactive("this account has been deactivated")

    def _issue_token(self, purpose: str, token_id: UUID, expires_at: datetime) -> None:
        self._token_issued(purpose=purpose, token_id=token_id, expires_at=expires_at)

    @event(TokenIssued)
    def _token_issued(self, purpose: str, token_id: UUID, expires_at: datetime) -> None:
        # A newer token of the same purpose replaces (and so invalidates) the older.
        self.pending_tokens[purpose] = {"token_id": token_id, "expires_at": expires_at}

    def _check_token(self, purpose: TokenPurpose, token_id: UUID, now: datetime) -> None:
        pending = self.pending_tokens.get(purpose.value)
        if pending is None or pending["token_id"] != token_id:
            raise InvalidToken("this link is invalid or has already been used")
        if now >= pending["expires_at"]:
            raise InvalidToken("this link has expired: ask for a new one")


class EmailIndex(Aggregate):
    """Claims an email address for one user. Saved atomically with the User it
    names, its id derived from the address, so a second registration of the same
    address fails on the event store's uniqueness constraint: no read model, no
    race."""

    @staticmethod
    def create_id(email: str) -> UUID:
        return email_index_id(email)

    class Claimed(Aggregate.Created):
        email: str
        user_id: UUID

    @event(Claimed)
    def __init__(self, email: str, user_id: UUID) -> None:
        self.email = normalise_email(email)
        self.user_id = user_id


def email_index_id(email: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"/eventshop/emails/{normalise_email(email)}")
