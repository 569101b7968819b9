"""The OpenAPI document tells the problem answers (``infra.entrypoints.openapi``): one Problem
schema, FastAPI's own 422 shape replaced, and per operation the statuses it can give."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from infra.entrypoints import openapi, problems

Bearer = Annotated[HTTPAuthorizationCredentials, Depends(HTTPBearer())]


class Thing(BaseModel):
    name: str


def _document() -> dict[str, Any]:
    things = APIRouter(prefix="/things", tags=["things"])
    auth = APIRouter(prefix="/auth", tags=["auth"])

    @things.get("")
    def listing(limit: int = 10) -> list[Thing]:
        return []

    @things.get("/{thing_id}")
    def detail(thing_id: str, _: Bearer) -> Thing:
        return Thing(name=thing_id)

    @things.post("", status_code=201)
    def create(body: Thing, _: Bearer) -> Thing:
        return body

    @auth.post("/login")
    def login(body: Thing) -> Thing:
        return body

    app = FastAPI()

    @app.get("/health")
    def health() -> Thing:
        return Thing(name="ok")

    app.include_router(things)
    app.include_router(auth)
    problems.install(app)
    openapi.install(app)
    return app.openapi()


def _problems(operation: dict[str, Any]) -> set[int]:
    return {
        int(s)
        for s, r in operation["responses"].items()
        if problems.MEDIA_TYPE in r.get("content", {})
    }


def test_each_operation_documents_the_problems_it_can_give() -> None:
    paths = _document()["paths"]
    edge = {400, 413, 422, 429, 503}  # 429: every route family is rate limited
    assert _problems(paths["/health"]["get"]) == edge - {429}
    assert _problems(paths["/things"]["get"]) == edge
    assert _problems(paths["/things/{thing_id}"]["get"]) == edge | {401, 403, 404}
    assert _problems(paths["/things"]["post"]) == edge | {401, 403, 404, 409}
    assert _problems(paths["/auth/login"]["post"]) == edge | {401, 403, 404, 409}
    assert set(paths["/things"]["post"]["responses"]) == {"201"} | {
        str(s) for s in edge | {401, 403, 404, 409}
    }


def test_fastapi_validation_shape_is_replaced_by_the_problem() -> None:
    document = _document()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert "HTTPValidationError" not in json.dumps(document)
    unprocessable = document["paths"]["/things"]["post"]["responses"]["422"]
    assert set(unprocessable["content"]) == {problems.MEDIA_TYPE}
    body = unprocessable["content"][problems.MEDIA_TYPE]["schema"]
    assert body == {
        "allOf": [
            {"$ref": "#/components/schemas/Problem"},
            {"properties": {"status": {"const": 422}}},
        ]
    }


def test_the_problem_schema_describes_what_the_handlers_write() -> None:
    schema = _document()["components"]["schemas"]["Problem"]
    errors = [{"location": ["body", "name"], "message": "missing", "type": "missing"}]
    invalid = problems.problem(422, "validation-failed", "not valid", errors=errors)
    conflict = problems.problem(409, "prices-changed", "1 line(s) changed price", changes=[{}])
    validation, prices = (json.loads(bytes(answer.body)) for answer in (invalid, conflict))
    for body in (validation, prices):
        assert set(schema["required"]) <= set(body) <= set(schema["properties"])
        assert re.fullmatch(schema["properties"]["type"]["pattern"], body["type"])
    assert set(validation["errors"][0]) == set(schema["properties"]["errors"]["items"]["required"])


def test_the_document_is_post_processed_once() -> None:
    app = FastAPI()
    openapi.install(app)
    first = app.openapi()
    assert app.openapi() is first
    assert "Problem" in first["components"]["schemas"]
