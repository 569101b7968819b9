"""Refusals of the write side that are not domain rules: each names its HTTP status
and a stable problem code (``domain.refusals.Refused``: the edge turns them into RFC
9457 problem+json)."""

from __future__ import annotations

from domain.refusals import Refused


class EmailTaken(Refused):
    status = 409
    code = "email-taken"


class InvalidCredentials(Refused):
    status = 401
    code = "invalid-credentials"


class WeakPassword(Refused):
    status = 422
    code = "weak-password"


class ConcurrencyConflict(Refused):
    status = 409
    code = "concurrency-conflict"


class IdempotencyKeyReused(Refused):
    status = 422
    code = "idempotency-key-reused"


class IdempotencyKeyInvalid(Refused):
    code = "idempotency-key-invalid"


class RequestInProgress(Refused):
    status = 409
    code = "request-in-progress"


class RateLimited(Refused):
    status = 429
    code = "rate-limited"

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, round(retry_after + 0.5)))})
