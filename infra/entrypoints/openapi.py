"""The OpenAPI document tells the error answers too: one ``Problem`` schema
(RFC 9457, as ``infra.entrypoints.problems`` writes it) and, on every operation, the problem
statuses it can give. FastAPI documents only its own 422 body, which
``infra.entrypoints.problems`` replaces with a problem: that documentation is replaced here.

Which statuses an operation documents follows from where the errors come from:

- every request passes the request edge and reaches Postgres: 400 (a body that is
  not JSON or nests too deep, a consistency token, cursor or query not ours), 413
  (a body over the limit), 422 (a field the edge or validation refuses) and 503 (a
  dependency down, or a view behind the consistency token asked for);
- every operation of a rate-limited route family (``route_limits``: all but health,
  metrics and webhooks): 429;
- an operation that takes a bearer token, or authenticates (``auth``): 401, 403;
- an operation naming an entity, in its path, in a command's body or by a cart
  token (``GET /cart`` with neither a bearer nor a cart token names no cart): 404;
- a command (any method but GET): 409, a domain rule or a concurrent change.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from infra.entrypoints.problems import MEDIA_TYPE, PROBLEM_BASE
from infra.entrypoints.route_limits import family_of

PROBLEM = "Problem"
_REF = f"#/components/schemas/{PROBLEM}"
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
_AUTH_TAG = "auth"
_CART_TOKEN = "X-Cart-Token"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": PROBLEM,
    "description": "An RFC 9457 problem: ``type`` is stable, ``detail`` is for people.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri", "pattern": f"^{PROBLEM_BASE}[a-z0-9-]+$"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {
            "description": "422 validation-failed: each refused field (never its value)",
            "type": "array",
            "items": {
                "type": "object",
                "required": ["location", "message", "type"],
                "properties": {
                    "location": {
                        "type": "array",
                        "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    },
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
        "changes": {
            "description": "409 prices-changed: the lines whose price or availability changed",
            "type": "array",
            "items": {"type": "object"},
        },
    },
}

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "string"}}}
_RATE_LIMITED = _RETRY_AFTER | {
    field: {"description": what, "schema": {"type": "string"}}
    for field, what in (
        ("RateLimit-Policy", '"<family>";q=<limit>;w=<window seconds>'),
        ("RateLimit", '"<family>";r=<remaining>;t=<seconds until one more is admitted>'),
        ("RateLimit-Limit", "Requests the window admits (earlier drafts)"),
        ("RateLimit-Remaining", "Requests the window still admits (earlier drafts)"),
        ("RateLimit-Reset", "Seconds until one more is admitted (earlier drafts)"),
    )
}
"""draft-ietf-httpapi-ratelimit-headers-10's two fields and the earlier drafts' three;
every answer of a limited family has them."""
_STATUSES: dict[int, tuple[str, dict[str, Any]]] = {
    400: ("Malformed: a body that is not JSON, a token, cursor or query not ours", {}),
    401: (
        "Authentication required, or the session ended",
        {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    ),
    403: ("Not permitted: a role, ownership, an inactive account or unverified email", {}),
    404: ("An entity the request names does not exist", {}),
    409: ("Refused by the current state: a domain rule or a concurrent change", {}),
    413: ("The body is over the size limit", {}),
    422: ("Invalid input: ``errors`` lists the refused fields", {}),
    429: (
        "Too many requests (the route family's or the login and reset attempts' limit)",
        _RATE_LIMITED,
    ),
    503: ("A service the request needs is down, or a view lags behind the token", _RETRY_AFTER),
}


def install(app: FastAPI) -> None:
    """Document the problems in the schema FastAPI generates (once, when first asked)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _document_problems(generate())  # FastAPI keeps it in app.openapi_schema
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


def _document_problems(schema: dict[str, Any]) -> None:
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in _FASTAPI_VALIDATION:
        schemas.pop(unused, None)
    schemas[PROBLEM] = PROBLEM_SCHEMA
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            for status in sorted(_statuses(path, method, operation)):
                description, headers = _STATUSES[status]
                # A route's own documented body for a status stays, except FastAPI's
                # 422, which is never what we answer.
                documented = responses.get(str(status), {})
                if status == 422 or "content" not in documented:
                    responses[str(status)] = _problem_response(status, description, headers)


def _statuses(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    statuses = {400, 413, 422, 503}
    authenticates = _AUTH_TAG in operation.get("tags", ())
    if operation.get("security") or authenticates:
        statuses |= {401, 403}
    if family_of(method.upper(), path) is not None:
        statuses.add(429)
    command = method != "get"
    if command or any(_names_entity(p) for p in operation.get("parameters", ())):
        statuses.add(404)
    if command:
        statuses.add(409)
    return statuses


def _names_entity(parameter: dict[str, Any]) -> bool:
    return parameter.get("in") == "path" or parameter.get("name") == _CART_TOKEN


def _problem_response(status: int, description: str, headers: dict[str, Any]) -> dict[str, Any]:
    # The shared schema, with this answer's status: a body must say the status it came with.
    body = {"allOf": [{"$ref": _REF}, {"properties": {"status": {"const": status}}}]}
    response: dict[str, Any] = {
        "description": description,
        "content": {MEDIA_TYPE: {"schema": body}},
    }
    if headers:
        response["headers"] = headers
    return response
