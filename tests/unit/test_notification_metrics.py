"""The delivery loops' listener (``notification_metrics.on_outcome``) counts each
final outcome in its channel's series, and times the sent ones from the decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from prometheus_client import CollectorRegistry

from commands.notifications.ports import Outcome, Pending
from domain.notifications import Channel, Kind
from infra.entrypoints.notification_metrics import COUNTED, on_outcome


@pytest.fixture
def registry() -> CollectorRegistry:
    """The process's counters (module-wide, shared by every test: compare deltas)."""
    fresh = CollectorRegistry()
    for metric in COUNTED:
        fresh.register(metric)
    return fresh


def pending(channel: Channel, decided_ago: timedelta = timedelta(0)) -> Pending:
    decided_at = datetime.now(UTC) - decided_ago
    return Pending(
        delivery_id=uuid4(),
        notification_id=uuid4(),
        kind=Kind.ORDER_SHIPPED,
        channel=channel,
        user_id=uuid4(),
        address="shopper@example.com",
        locale="en",
        context={},
        state="sending",
        attempts=1,
        not_before=decided_at,
        created_at=decided_at,
    )


def counts(registry: CollectorRegistry) -> dict[str, float]:
    """Every counter and histogram count, as ``name{channel}``."""
    return {
        f"{sample.name}{{{sample.labels['channel']}}}": sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name.endswith(("_total", "_count"))
    }


def changes(registry: CollectorRegistry, *events: tuple[Pending, Outcome]) -> dict[str, float]:
    """What ``events`` told to ``on_outcome`` changed."""
    before = counts(registry)
    for p, outcome in events:
        on_outcome(p, outcome)
    return {k: v - before[k] for k, v in counts(registry).items() if v != before[k]}


def test_each_final_outcome_counts_in_its_channel(registry: CollectorRegistry) -> None:
    email, sms, push = pending(Channel.EMAIL), pending(Channel.SMS), pending(Channel.PUSH)

    assert changes(
        registry,
        (email, Outcome(email.delivery_id, 1, "sent", provider_message_id="m-1")),
        (sms, Outcome(sms.delivery_id, 1, "failed", error="invalid number")),
        (sms, Outcome(sms.delivery_id, 1, "failed", error="invalid number")),
        (push, Outcome(push.delivery_id, 1, "suppressed")),
    ) == {
        "notifications_sent_total{email}": 1,
        "notification_delivery_seconds_count{email}": 1,
        "notifications_failed_total{sms}": 2,
        "notifications_suppressed_total{push}": 1,
    }


def test_a_retry_is_not_an_outcome_yet(registry: CollectorRegistry) -> None:
    email = pending(Channel.EMAIL)
    retry = Outcome(email.delivery_id, 1, "retrying", error="throttled", retry_at=datetime.now(UTC))

    assert changes(registry, (email, retry)) == {}


def test_the_time_from_decision_to_sent(registry: CollectorRegistry) -> None:
    late = pending(Channel.IN_APP, decided_ago=timedelta(seconds=45))
    labels = {"channel": "in_app"}
    in_a_minute = ("notification_delivery_seconds_bucket", {**labels, "le": "60.0"})
    in_half_a_minute = ("notification_delivery_seconds_bucket", {**labels, "le": "30.0"})
    before = [registry.get_sample_value(*b) or 0 for b in (in_a_minute, in_half_a_minute)]
    seconds = registry.get_sample_value("notification_delivery_seconds_sum", labels) or 0

    on_outcome(late, Outcome(late.delivery_id, 1, "sent", provider_message_id="inbox"))

    after = [registry.get_sample_value(*b) or 0 for b in (in_a_minute, in_half_a_minute)]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 0]
    took = (registry.get_sample_value("notification_delivery_seconds_sum", labels) or 0) - seconds
    assert 45 <= took < 50
