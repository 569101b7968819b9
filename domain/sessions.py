"""The Session aggregate: one login, and the family of refresh tokens it issues.

Refresh tokens rotate: each refresh issues generation n+1 and retires n. A retired
generation presented again means the token was copied; the whole family is revoked
(OAuth 2.0 Security BCP, refresh token rotation with reuse detection).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import SessionEnded


class Rotation(StrEnum):
    ROTATED = "rotated"
    REUSE_DETECTED = "refresh token reused"
    CREDENTIALS_CHANGED = "password changed"


class Session(Aggregate):
    class Started(Aggregate.Created):
        user_id: UUID
        credentials_version: int
        expires_at: datetime

    class Rotated(Aggregate.Event):
        generation: int

    class Revoked(Aggregate.Event):
        reason: str

    @event(Started)
    def __init__(
        self, id: UUID, user_id: UUID, credentials_version: int, expires_at: datetime
    ) -> None:
        self.user_id = user_id
        self.credentials_version = credentials_version
        self.expires_at = expires_at
        self.generation = 1
        self.revoked = False
        self.revoked_reason: str | None = None

    def rotate(
        self, presented_generation: int, credentials_version: int, now: datetime
    ) -> Rotation:
        """Move to the next refresh generation. A retired generation or changed
        credentials revoke the whole family instead (the caller must save that, then
        refuse). Raises SessionEnded when the session cannot refresh at all."""
        if self.revoked:
            raise SessionEnded("this session has been signed out")
        if now >= self.expires_at:
            raise SessionEnded("this session has expired: log in again")
        if credentials_version != self.credentials_version:
            outcome = Rotation.CREDENTIALS_CHANGED
        elif presented_generation != self.generation:
            outcome = Rotation.REUSE_DETECTED
        else:
            self._rotated(generation=self.generation + 1)
            return Rotation.ROTATED
        self.revoke(outcome.value)
        return outcome

    @event(Rotated)
    def _rotated(self, generation: int) -> None:
        self.generation = generation

    def revoke(self, reason: str) -> None:
        if not self.revoked:
            self._revoked(reason=reason)

    @event(Revoked)
    def _revoked(self, reason: str) -> None:
        self.revoked = True
        self.revoked_reason = reason
