"""What every route shares: the bearer and consistency headers, and reading an
answer: a write's id and position, or a refusal's problem+json."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

CONSISTENCY = "X-Consistency-Token"
PROBLEM = "application/problem+json"
PROBLEM_BASE = "https://eventshop.example/problems/"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def problem_type(response: httpx.Response) -> str:
    """The problem ``type`` of an error answer, after checking it is problem+json."""
    assert response.headers["content-type"].startswith(PROBLEM), (
        response.status_code,
        response.headers.get("content-type"),
        response.text,
    )
    body = response.json()
    assert body["status"] == response.status_code
    assert isinstance(body["type"], str)
    assert body["type"].startswith(PROBLEM_BASE), body
    return body["type"].removeprefix(PROBLEM_BASE)


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The body of a refusal, after checking its status, its problem type and that
    it says what went wrong."""
    assert response.status_code == status, (response.status_code, response.text)
    assert problem_type(response) == code, response.text
    body: dict[str, Any] = response.json()
    assert body["title"] and body["detail"], body
    return body


def written(response: httpx.Response, status: int = 200, context: str = "catalog") -> str:
    """The id of a write, after checking the answer carries its position (in each
    of the comma-separated logs of ``context``)."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"id", "position"}, body
    if body["position"] is not None:
        expected = ",".join(rf"{log}:\d+" for log in context.split(","))
        assert re.fullmatch(expected, body["position"]), body
        assert response.headers[CONSISTENCY] == body["position"]
    return str(uuid.UUID(body["id"]))
