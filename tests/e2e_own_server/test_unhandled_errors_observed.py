"""A request that fails unexpectedly is counted as a 500 of its route, and the
"unhandled error" line carries its request id (the app in this process, with a route
that raises added, and the process's log handler writing to a buffer)."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from infra.entrypoints import logs
from infra.entrypoints.request_metrics import REQUESTS
from tests.support.in_process import in_process_app

pytestmark = pytest.mark.e2e


def failed(registry: CollectorRegistry) -> float:
    labels = {"method": "GET", "route": "/boom/{part}", "status": "500"}
    return registry.get_sample_value("http_requests_total", labels) or 0.0


def test_an_unhandled_error_is_counted_and_logged_with_its_request_id(
    make_database: Callable[[], str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # the access line's level, as shop run logs
    registry = CollectorRegistry()
    registry.register(REQUESTS)
    buffer = io.StringIO()
    handler = logs.handler("json")
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    logging.root.addHandler(handler)
    try:
        with in_process_app(make_database(), tmp_path) as (app, _):

            @app.get("/boom/{part}")
            def boom(part: str) -> None:
                raise RuntimeError(f"exploded at {part} with password=hunter2-horse")

            before = failed(registry)
            client = TestClient(app, raise_server_exceptions=False)  # no startup needed
            answer = client.get("/boom/x1", headers={"X-Request-ID": "boom-1"})
    finally:
        logging.root.removeHandler(handler)

    assert answer.status_code == 500
    assert failed(registry) == before + 1
    lines = [orjson.loads(line) for line in buffer.getvalue().splitlines()]
    (error,) = [line for line in lines if line["message"].startswith("unhandled error")]
    assert error["request_id"] == "boom-1" and error["level"] == "ERROR"
    assert "RuntimeError" in error["exception"] and "hunter2-horse" not in error["exception"]
    (access,) = [line for line in lines if line["logger"] == "eventshop.access"]
    assert (access["request_id"], access["status"], access["route"]) == (
        "boom-1",
        500,
        "/boom/{part}",
    )
