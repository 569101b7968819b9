"""The shared ports: what more than one area of the write side needs from the outside
world (the clock, rate limits, idempotency keys, waiting for a projection).
An area's own ports sit beside the handlers that need them (the payment gateway in
``commands.ordering.payment_gateway``, the seller lookup in
``commands.catalog.inventory``). Adapters live in infra/; tests run the same
contract suite against each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from domain.positions import Position

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class RateCount:
    """One attempt counted against a sliding window of ``limit`` attempts."""

    admitted: bool
    remaining: int
    """Attempts still admitted in the window after this one."""
    reset_seconds: float
    """Until the oldest attempt counted leaves the window (one more is then admitted);
    the whole window when none is counted. A refused attempt's wait."""


class RateLimiter(Protocol):
    def take(self, key: str, limit: int, window_seconds: float) -> RateCount:
        """Count one attempt against ``key`` unless ``limit`` are already counted
        in the last ``window_seconds`` (then refused, and not counted)."""


class AsyncRateLimiter(Protocol):
    """The same, for the event loop (the HTTP edge limits every request)."""

    async def take(self, key: str, limit: int, window_seconds: float) -> RateCount: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class IdempotencyRecord:
    fingerprint: str
    response: StoredResponse | None  # None while the first request is in progress
    age_seconds: float


class IdempotencyStore(Protocol):
    def claim(self, scope: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
        """Claim the key. None when this call claimed it; otherwise what is stored."""

    def complete(self, scope: str, key: str, response: StoredResponse) -> None: ...

    def release(self, scope: str, key: str) -> None:
        """Forget a claim whose request failed, so a retry may run."""

    def take_over(self, scope: str, key: str, older_than_seconds: float) -> bool:
        """Re-claim a claim abandoned by a crashed request."""


class PersonalDataKeys(Protocol):
    def erase(self, subject: UUID) -> None:
        """Delete the data subject's key for good (idempotent): what was sealed
        under it reads as erased from now on (ADR 0024)."""


class ProjectionWaiter(Protocol):
    def wait(self, projection: str, positions: list[Position], timeout: float) -> bool:
        """Block until the projection has processed every position, or the timeout
        passes (False)."""
