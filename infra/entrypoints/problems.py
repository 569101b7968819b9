"""Every error leaves as RFC 9457 problem+json with a stable ``type``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from domain.carts import PricesChanged
from domain.errors import (
    AccountInactive,
    AuthenticationRequired,
    DomainError,
    EmailNotVerified,
    InvalidToken,
    NotPermitted,
    SessionEnded,
    UnknownEntity,
)
from domain.refusals import Refused
from streams.supervision import TRANSIENT

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://eventshop.example/problems/"
RETRY_AFTER_SECONDS = 2
MEDIA_TYPE = "application/problem+json"

_DOMAIN_STATUS: dict[type[DomainError], int] = {
    InvalidToken: 400,
    AuthenticationRequired: 401,
    SessionEnded: 401,
    AccountInactive: 403,
    EmailNotVerified: 403,
    NotPermitted: 403,
    UnknownEntity: 404,
}
_HTTP_CODES = {
    400: "malformed-body",
    404: "not-found",
    405: "method-not-allowed",
    413: "body-too-large",
}


def problem(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {
        "type": PROBLEM_BASE + code,
        "title": code.replace("-", " ").capitalize(),
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def _domain(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DomainError)
    # A domain error that is also a ValueError is invalid input (422); any other
    # refusal conflicts with the current state (409).
    default = 422 if isinstance(error, ValueError) else 409
    status = next((s for cls, s in _DOMAIN_STATUS.items() if isinstance(error, cls)), default)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return problem(status, error.code, str(error), headers)


def _prices_changed(_: Request, error: Exception) -> JSONResponse:
    """The shopper must see the new prices before paying: they are in ``changes``."""
    assert isinstance(error, PricesChanged)
    return problem(409, error.code, str(error), changes=error.changes)


def _refused(_: Request, error: Exception) -> JSONResponse:
    """Every refusal that is not a domain rule, the write side's, the read side's and
    the projections' queries' alike (``domain.refusals``)."""
    assert isinstance(error, Refused)
    headers = dict(error.headers)
    if error.status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return problem(error.status, error.code, error.detail, headers)


def _validation(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = error.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return problem(400, "malformed-json", "the request body is not valid JSON")
    # Never echo the input back: it may hold a password.
    fields = [
        {"location": list(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type")}
        for e in errors
    ]
    return problem(422, "validation-failed", "the request is not valid", errors=fields)


def _http(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    code = _HTTP_CODES.get(error.status_code, f"http-{error.status_code}")
    return problem(error.status_code, code, str(error.detail), dict(error.headers or {}))


def _unavailable(request: Request, error: Exception) -> JSONResponse:
    """A dependency (the database, Redis) is down or timed out: nothing was done
    that the client cannot retry; say when to."""
    log.warning("%s %s: %r", request.method, request.url.path, error)
    return problem(
        503,
        "service-unavailable",
        "a service this request needs is unavailable; retry shortly",
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error in %s %s", request.method, request.url.path, exc_info=error)
    return problem(500, "internal-error", "something went wrong on our side; it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain)
    app.add_exception_handler(PricesChanged, _prices_changed)
    app.add_exception_handler(Refused, _refused)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    for unavailable in TRANSIENT:
        if not issubclass(unavailable, Refused):  # those answer their own 503
            app.add_exception_handler(unavailable, _unavailable)
    app.add_exception_handler(Exception, _unexpected)
