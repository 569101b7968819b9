"""Refusals of the write side that are not domain rules: each names its HTTP status
and a stable problem code (the edge turns them into RFC 9457 problem+json)."""

from __future__ import annotations


class CommandRefused(Exception):
    status = 400
    code = "bad-request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class EmailTaken(CommandRefused):
    status = 409
    code = "email-taken"


class InvalidCredentials(CommandRefused):
    status = 401
    code = "invalid-credentials"


class WeakPassword(CommandRefused):
    status = 422
    code = "weak-password"


class ConcurrencyConflict(CommandRefused):
    status = 409
    code = "concurrency-conflict"


class IdempotencyKeyReused(CommandRefused):
    status = 422
    code = "idempotency-key-reused"


class IdempotencyKeyInvalid(CommandRefused):
    code = "idempotency-key-invalid"


class RequestInProgress(CommandRefused):
    status = 409
    code = "request-in-progress"


class RateLimited(CommandRefused):
    status = 429
    code = "rate-limited"

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, round(retry_after + 0.5)))})
