"""Trace context kept with the events a traced save writes, the batch spans that
continue it, and trace ids on log records (the SDK's spans recorded in memory)."""

from __future__ import annotations

import logging
from uuid import uuid4

import pytest
from opentelemetry.sdk.trace import ReadableSpan

from commands.application import ContextApplication
from commands.tracing import TRACEPARENT, tracer
from domain.carts import open_cart
from domain.money import Money
from streams.event_traces import batch_span, traceparent_of
from tests.support.tracing import recorded_spans, trace_id_of

POPO = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


class Store(ContextApplication):
    pass


def traceparent(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"00-{trace_id_of(span)}-{span.context.span_id:016x}-{span.context.trace_flags:02x}"


def saved_under_a_span(store: Store, name: str) -> ReadableSpan:
    """A cart saved inside a root span ``name``: that save's span."""
    with recorded_spans() as spans:
        with tracer.start_as_current_span(name):
            store.save(open_cart(uuid4()))
        (save,) = [s for s in spans.get_finished_spans() if s.name == "save Store"]
    return save


def test_the_events_of_a_traced_save_keep_its_span_and_load_with_it() -> None:
    store = Store(env=POPO)
    with recorded_spans() as spans:
        cart = open_cart(uuid4())
        cart.add_line(uuid4(), "SKU-1", 2, Money.of("3.00", "EUR"))
        with tracer.start_as_current_span("request"):
            store.save(cart)
        (save,) = [s for s in spans.get_finished_spans() if s.name == "save Store"]
    assert save.attributes == {"eventshop.log": "Store", "eventshop.events": 2}
    events = [store.mapper.to_domain_event(n) for n in store.recorder.select_notifications(1, 10)]
    assert [traceparent_of(e) for e in events] == [traceparent(save)] * 2
    assert store.repository.get(cart.id).lines == cart.lines  # the aggregate ignores it


def test_events_saved_outside_a_sampled_span_carry_no_trace() -> None:
    store = Store(env=POPO)
    store.save(open_cart(uuid4()))  # no span at all
    with recorded_spans():
        pass  # the SDK's provider installed, and sampling nothing after this
    with tracer.start_as_current_span("unsampled"):  # the provider samples nothing now
        store.save(open_cart(uuid4()))
    for notification in store.recorder.select_notifications(1, 10):
        assert TRACEPARENT.encode() not in notification.state
        assert traceparent_of(store.mapper.to_domain_event(notification)) is None


def test_a_batch_span_is_the_first_traced_events_child_linked_to_the_others() -> None:
    store = Store(env=POPO)
    first, second = saved_under_a_span(store, "a"), saved_under_a_span(store, "b")
    with recorded_spans() as spans:
        traceparents = [None, traceparent(first), traceparent(second), traceparent(first)]
        with batch_span("apply view", traceparents, {"eventshop.events": 4}):
            pass
        (batch,) = spans.get_finished_spans()
    assert trace_id_of(batch) == trace_id_of(first)
    assert batch.parent is not None and first.context is not None
    assert batch.parent.span_id == first.context.span_id
    assert [link.context.trace_id for link in batch.links] == [int(trace_id_of(second), 16)]


def test_log_records_carry_the_current_trace_and_span(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("tests.tracing")
    with recorded_spans(), caplog.at_level(logging.INFO):
        log.info("outside")
        with tracer.start_as_current_span("work") as span:
            log.info("inside")
    outside, inside = caplog.records
    assert not hasattr(outside, "trace_id")
    context = span.get_span_context()
    assert (vars(inside)["trace_id"], vars(inside)["span_id"]) == (
        f"{context.trace_id:032x}",
        f"{context.span_id:016x}",
    )
