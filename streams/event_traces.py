"""Spans of work done on a batch of committed events, joined to the traces of the
commands that wrote them (``commands.tracing``): the span is a child of the first
traced event's save, and linked to the saves of the batch's other traced events, so
a request's trace shows each batch its events went through and every batch span
leads back to all of its requests."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind

from commands.tracing import TRACEPARENT, context_of, tracer, tracing_on

MAX_LINKS = 64
"""Links per span at most (the SDK keeps 128): a batch holds up to 500 events."""


def traceparent_of(event: Any) -> str | None:
    """The trace context the event was saved under, if it was saved in a trace."""
    value = getattr(event, TRACEPARENT, None)
    return value if isinstance(value, str) else None


@contextmanager
def batch_span(
    name: str,
    traceparents: Iterable[str | None],
    attributes: dict[str, str | int],
    kind: SpanKind = SpanKind.CONSUMER,
) -> Iterator[Span]:
    """A current span for work on events saved under ``traceparents``."""
    if not tracing_on():
        yield trace.INVALID_SPAN
        return
    parent: Context | None = None
    links: list[Link] = []
    seen: set[str] = set()
    for traceparent in traceparents:
        if traceparent is None or traceparent in seen:
            continue
        seen.add(traceparent)
        context = context_of(traceparent)
        if parent is None:
            parent = context
        elif len(links) < MAX_LINKS:
            links.append(Link(trace.get_current_span(context).get_span_context()))
    with tracer.start_as_current_span(
        name, context=parent, kind=kind, links=links, attributes=attributes
    ) as span:
        yield span
