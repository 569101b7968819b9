"""Tracing on the write side: a span per command handler call, and the W3C
``traceparent`` of the span that saves an event, kept in the event's stored state so
that whatever applies the event later (a projection, the saga, the relay, a Kafka
worker) joins the trace of the request that wrote it.

The ``traceparent`` is an extra attribute of the domain event, written only when a
sampled span is current (never with ``SHOP_OTEL_EXPORTER=none``). Event classes do
not declare it: decorated ``@event`` methods take only the attributes they name, and
an event stored without it (every event before this change) simply has none, so no
``class_version`` or upcaster is involved.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
"""The event attribute (and Kafka header) holding the writer's trace context."""

tracer = trace.get_tracer("eventshop")
_propagator = TraceContextTextMapPropagator()
_NO_SDK = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)

C = TypeVar("C", bound=type)


def tracing_on() -> bool:
    """Whether spans go anywhere (``infra.wiring.tracing`` installed the SDK's
    provider). Checked before opening a span: with tracing off, a call pays this
    check rather than a no-op span's context switches."""
    return not isinstance(trace.get_tracer_provider(), _NO_SDK)


def current_traceparent() -> str | None:
    """The current span's ``traceparent``, if a sampled span is current."""
    if not trace.get_current_span().get_span_context().trace_flags.sampled:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT)


def stamp(events: Iterable[object]) -> None:
    """Give each event to be saved the current span's trace context."""
    traceparent = current_traceparent()
    if traceparent is None:
        return
    for event in events:
        # Domain events are frozen dataclasses: the attribute goes in past __setattr__,
        # as eventsourcing's mapper puts attributes in when it loads one.
        vars(event)[TRACEPARENT] = traceparent


def context_of(traceparent: str) -> Context:
    """The trace context a ``traceparent`` names (an empty one if it is malformed)."""
    return _propagator.extract({TRACEPARENT: traceparent})


def traced_commands(cls: C) -> C:
    """A span (``<Class>.<method>``) around each public method the class defines:
    one per command handler call, retries of a conflict included."""
    for name, member in list(vars(cls).items()):
        if name.startswith("_") or not inspect.isfunction(member):
            continue
        setattr(cls, name, _traced(f"{cls.__name__}.{name}", member))
    return cls


def _traced(span_name: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(handler)
    def traced(*args: Any, **kwargs: Any) -> Any:
        if not tracing_on():
            return handler(*args, **kwargs)
        with tracer.start_as_current_span(span_name):
            return handler(*args, **kwargs)

    return traced
