"""A command's trace through Kafka: the event it saved is published by a ``shop serve
relay`` and applied by a ``shop serve worker``, each exporting its spans over OTLP/HTTP
(``SHOP_OTEL_EXPORTER=otlp``, the standard ``OTEL_EXPORTER_OTLP_ENDPOINT``) to a
local receiver; both spans are in the command's trace."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.access import Principal
from infra.wiring.process import Container
from tests.integration.kafka.conftest import Roles
from tests.support.otlp_receiver import ReceivedSpan, otlp_receiver
from tests.support.polling import eventually
from tests.support.tracing import recorded_spans, trace_id_of

pytestmark = pytest.mark.integration

ADMIN = Principal(uuid4(), uuid4(), frozenset({"customer", "admin"}))


def test_the_relay_and_the_worker_continue_the_commands_trace(
    container: Container, roles: Roles, monkeypatch: pytest.MonkeyPatch
) -> None:
    with recorded_spans() as spans:
        container.catalog_commands.create_category(ADMIN, uuid4(), "Shoes")
        (command,) = [
            s for s in spans.get_finished_spans() if s.name == "CatalogCommands.create_category"
        ]
    trace_id = trace_id_of(command)

    with otlp_receiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")  # ms: export soon
        roles.start("relay", db_pool_size=1, otel_exporter="otlp")
        roles.start("worker", db_pool_size=4, otel_exporter="otlp")

        def in_trace(service: str, name: str) -> list[ReceivedSpan]:
            return [
                s
                for s in receiver.received()
                if s.service == service and s.name == name and s.trace_id == trace_id
            ]

        published = eventually(
            lambda: in_trace("eventshop-relay", "publish catalog"),
            "the relay's publish in the trace",
            timeout=60,
        )
        applied = eventually(
            lambda: in_trace("eventshop-worker", "apply catalog_categories"),
            "the worker's apply in the trace",
            timeout=120,
        )
    assert published and applied
