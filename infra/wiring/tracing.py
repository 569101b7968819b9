"""The process's OpenTelemetry tracing, chosen by ``SHOP_OTEL_EXPORTER``: with
``none`` nothing is installed and every span the code opens is the API's no-op one;
otherwise a provider for the service ``eventshop-<role>`` whose spans go, in batches,
to the OTLP/HTTP exporter (which reads the standard ``OTEL_EXPORTER_OTLP_*``
variables) or to stdout, and every log record gets the current ``trace_id`` and
``span_id``."""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from infra.settings import Settings


def tracer_provider(settings: Settings, role: str) -> TracerProvider | None:
    """The provider for a process of ``role`` (``embedded``, ``write-api``, ...), or
    None when tracing is off."""
    if settings.otel_exporter == "none":
        return None
    exporter: SpanExporter = ConsoleSpanExporter()
    if settings.otel_exporter == "otlp":
        # Imported here: the exporter and its protobuf cost every process half a
        # second of start-up, and tracing is off by default.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: f"eventshop-{role}"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def install(settings: Settings, role: str) -> None:
    """Trace this process as ``role``, if the settings say so (once per process: the
    global provider cannot be replaced, and the SDK flushes it at exit)."""
    provider = tracer_provider(settings, role)
    if provider is None:
        return
    trace.set_tracer_provider(provider)
    add_trace_ids_to_log_records()


def add_trace_ids_to_log_records() -> None:
    """Every log record made from now on carries ``trace_id`` and ``span_id`` (hex)
    when a span is current. A record factory rather than a filter on some handlers:
    it reaches the records of every logger and every handler, uvicorn's included,
    however they are configured later."""
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "adds_trace_ids", False):
        return

    def with_trace_ids(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return record

    with_trace_ids.adds_trace_ids = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(with_trace_ids)
