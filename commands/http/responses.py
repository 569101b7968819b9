"""Answers of the write API: what was written and where, with the position also in
the ``X-Consistency-Token`` header."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel

from commands.application import Written
from commands.idempotency import Idempotency
from commands.ports import StoredResponse
from domain.positions import format_positions

CONSISTENCY_HEADER = "X-Consistency-Token"


def written_body(written: Written) -> dict[str, Any]:
    return {"id": str(written.id), "position": format_positions(written.positions) or None}


def respond(response: StoredResponse, *, replayed: bool = False) -> JSONResponse:
    headers = {}
    if response.body.get("position"):
        headers[CONSISTENCY_HEADER] = str(response.body["position"])
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(response.body, status_code=response.status, headers=headers)


def respond_written(written: Written, status: int = 200) -> JSONResponse:
    return respond(StoredResponse(status, written_body(written)))


def respond_idempotently(
    idempotency: Idempotency, body: BaseModel, write: Callable[[], Written], status: int = 201
) -> JSONResponse:
    """Run ``write`` once per Idempotency-Key: a retry with the same request gets the
    first answer again (marked ``Idempotent-Replayed``)."""
    response, replayed = idempotency.run(
        body.model_dump(mode="json"), lambda: StoredResponse(status, written_body(write()))
    )
    return respond(response, replayed=replayed)
