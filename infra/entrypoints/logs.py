"""The process's log lines: JSON (one object per line) or text, every line with the
request it was written for, and nothing secret in any of them.

``configure_logging`` gives the root logger one handler on stderr; uvicorn's own
loggers propagate to it (it is started with ``log_config=None``), and faust's worker
is given the same configuration. Each record gets
``request_id`` and ``principal`` from the request context (``None`` outside a
request), and is redacted (``redact``) before any formatter sees it."""

from __future__ import annotations

import logging
import logging.config
import re
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from commands.card_data import is_card_number
from infra.entrypoints.request_context import CURRENT
from infra.entrypoints.request_metrics import ACCESS_LOGGER

REDACTED = "[redacted]"
_SECRETS = (
    # An Authorization header, however it was written out.
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^'\"\n,}]+"), rf"\1{REDACTED}"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), rf"\1 {REDACTED}"),
    # Tokens in a query string or a form: the mailed links, stream tickets.
    (
        re.compile(
            r"(?i)((?:token|ticket|password|secret|code|key|signature)=)[^&\s'\"]+",
        ),
        rf"\1{REDACTED}",
    ),
    # A password, token or secret as a JSON (or repr'd dict) field.
    (
        re.compile(
            r"(?i)(['\"][a-z_]*(?:password|token|secret)['\"]\s*:\s*['\"])[^'\"]*",
        ),
        rf"\1{REDACTED}",
    ),
    # A JWT (our access tokens) anywhere.
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
)
_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){13,18}(?![0-9])")
_SEPARATORS = re.compile(r"[ -]")


def redact(text: str) -> str:
    """``text`` without what must never be logged: credentials, tokens, links' tokens
    and card numbers (a run of digits some card brand issues, Luhn-valid)."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return _DIGIT_RUN.sub(
        lambda match: (
            REDACTED if is_card_number(_SEPARATORS.sub("", match.group())) else match.group()
        ),
        text,
    )


class RequestLogFilter(logging.Filter):
    """Adds the request's id and principal, and redacts the message and any
    exception text (a handler's filter: it sees every record the handler writes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = CURRENT.get()
        if not hasattr(record, "request_id"):
            record.request_id = context.request_id if context else None
        if not hasattr(record, "principal"):
            record.principal = context.principal if context else None
        if record.name != ACCESS_LOGGER:  # ours: a route template, a method, numbers
            record.msg = redact(record.getMessage())
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_ACCESS_FIELDS = ("route", "method", "status", "duration_ms")
_TRACE_FIELDS = ("trace_id", "span_id")
"""Set on records made under a span (``infra.wiring.tracing``'s record factory)."""


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message,
    request_id, principal; an access line adds route, method, status, duration_ms;
    a line made under a span its trace_id and span_id; an error its exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "principal": getattr(record, "principal", None),
        }
        for name in _ACCESS_FIELDS + _TRACE_FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_text:
            line["exception"] = record.exc_text
        return orjson.dumps(line, default=str).decode()


TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


def handler(log_format: Literal["json", "text"]) -> logging.Handler:
    """To stderr, in ``log_format``, with the request's context and redacted."""
    stream = logging.StreamHandler()
    stream.addFilter(RequestLogFilter())
    stream.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    return stream


def logging_config(log_format: Literal["json", "text"]) -> dict[str, Any]:
    """The root logger at INFO through ``handler`` only, for ``dictConfig``; also
    given to faust's worker, which otherwise replaces it with its own."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"shop": {"()": handler, "log_format": log_format}},
        "root": {"level": "INFO", "handlers": ["shop"]},
    }


def configure_logging(log_format: Literal["json", "text"]) -> None:
    """Replaces any handler configured before (each ``shop`` command calls it).
    Python's warnings go through it too (``py.warnings``): on stderr as they are,
    they would be the one line that is not JSON."""
    logging.config.dictConfig(logging_config(log_format))
    logging.captureWarnings(True)
