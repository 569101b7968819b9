"""Where ``SHOP_OTEL_EXPORTER`` sends a process's spans, through the SDK's exporters:
OTLP/HTTP to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (a local receiver), stdout, or nowhere;
the service is named by the role."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from infra.settings import Settings
from infra.wiring.tracing import tracer_provider
from tests.support.otlp_receiver import ReceivedSpan, otlp_receiver
from tests.support.server import clean_env

pytestmark = pytest.mark.integration


def test_otlp_sends_the_roles_spans_to_the_standard_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with otlp_receiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        provider = tracer_provider(Settings(otel_exporter="otlp"), "write-api")
        assert provider is not None
        provider.get_tracer("test").start_span("POST /checkout").end()
        assert provider.force_flush()
        provider.shutdown()
        (span,) = receiver.received()
    assert span == ReceivedSpan("eventshop-write-api", "POST /checkout", span.trace_id, ())


def test_console_prints_the_spans_of_a_process_it_traces() -> None:
    """In a process of its own: the console exporter writes to the stdout it found."""
    script = (
        "from opentelemetry import trace\n"
        "from infra.settings import Settings\n"
        "from infra.wiring import tracing\n"
        "tracing.install(Settings(), 'worker')\n"
        "trace.get_tracer('test').start_span('apply orders').end()\n"
    )
    env = {**clean_env(), "SHOP_OTEL_EXPORTER": "console"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)  # flushed by the SDK at exit
    assert printed["name"] == "apply orders"
    assert printed["resource"]["attributes"]["service.name"] == "eventshop-worker"


def test_none_makes_no_provider() -> None:
    assert Settings().otel_exporter == "none"
    assert tracer_provider(Settings(), "embedded") is None
