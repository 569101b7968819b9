"""Log lines: what ``redact`` removes (and what it leaves), request ids, and the JSON
line a record becomes with its request's context."""

from __future__ import annotations

import json
import logging

import pytest

from infra.entrypoints.logs import REDACTED, JsonFormatter, RequestLogFilter, redact
from infra.entrypoints.request_context import CURRENT, RequestContext, request_id_from

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (f"headers: {{'authorization': 'Bearer {JWT}'}}", JWT),
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("GET /verify-email?token=abc.DEF-123_x&next=1", "abc.DEF-123_x"),
        ("GET /me/notifications/stream?ticket=t1cket", "t1cket"),
        ("POST /reset-password token=s3cr3t-reset", "s3cr3t-reset"),
        ('body {"email": "a@example.com", "password": "hunter2-horse"}', "hunter2-horse"),
        ("{'new_password': 'orbit-canoe-42'}", "orbit-canoe-42"),
        ('{"refresh_token": "r3fr3sh"}', "r3fr3sh"),
        (f"token was {JWT} here", JWT),
        ("paid with 4242 4242 4242 4242 today", "4242 4242 4242 4242"),
        ("card 4000-0000-0000-0002", "4000-0000-0000-0002"),
    ],
)
def test_secrets_are_redacted(line: str, secret: str) -> None:
    redacted = redact(line)
    assert secret not in redacted
    assert REDACTED in redacted


@pytest.mark.parametrize(
    "line",
    [
        "order 0b6f4c8e-2f7e-4a4e-9d3b-6c1a2f9e8d7c confirmed",
        "GTIN 4006381333931 received",  # 13 digits: no brand issues it
        "1234567890123456 is not Luhn-valid",
        "GET /products/{product_id} 200 3.1 ms",
    ],
)
def test_ordinary_text_is_kept(line: str) -> None:
    assert redact(line) == line


@pytest.mark.parametrize("given", ["req-1", "0b6f4c8e2f7e4a4e", "a" * 128, "trace:abc.1_2"])
def test_a_valid_request_id_is_kept(given: str) -> None:
    assert request_id_from(given.encode()) == given


@pytest.mark.parametrize("given", [b"", b"a" * 129, b"has space", b"semi;colon", b"\xff\xfe"])
def test_an_invalid_request_id_is_replaced(given: bytes) -> None:
    replaced = request_id_from(given)
    assert replaced != given.decode("latin-1")
    assert len(replaced) == 32 and int(replaced, 16) >= 0


def _formatted(record: logging.LogRecord) -> dict[str, object]:
    RequestLogFilter().filter(record)
    line: dict[str, object] = json.loads(JsonFormatter().format(record))
    return line


def test_a_line_in_a_request_carries_its_id_and_principal_and_no_secret() -> None:
    record = logging.LogRecord(
        "eventshop.test", logging.WARNING, __file__, 1, "login with %s", ("password=p4ss",), None
    )
    reset = CURRENT.set(RequestContext("req-42", principal="user-7"))
    try:
        line = _formatted(record)
    finally:
        CURRENT.reset(reset)
    assert line["request_id"] == "req-42" and line["principal"] == "user-7"
    assert line["level"] == "WARNING" and line["logger"] == "eventshop.test"
    assert line["message"] == f"login with password={REDACTED}"
    assert str(line["time"]).endswith("+00:00")


def test_an_exception_is_redacted_too() -> None:
    try:
        raise ValueError(f"bad token {JWT}")
    except ValueError as error:
        record = logging.LogRecord(
            "eventshop.test", logging.ERROR, __file__, 1, "failed", (), (ValueError, error, None)
        )
    line = _formatted(record)
    assert "ValueError" in str(line["exception"]) and JWT not in str(line["exception"])
    assert line["request_id"] is None  # outside a request


def test_a_line_made_under_a_span_carries_its_trace() -> None:
    record = logging.LogRecord("eventshop.test", logging.INFO, __file__, 1, "saved", (), None)
    trace = {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}
    record.__dict__.update(trace)  # as the tracing record factory sets them
    line = _formatted(record)
    assert {name: line[name] for name in trace} == trace
    assert "trace_id" not in _formatted(
        logging.LogRecord("eventshop.test", logging.INFO, __file__, 1, "outside", (), None)
    )
