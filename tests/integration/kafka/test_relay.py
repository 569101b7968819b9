"""The outbox relay against a real broker: every committed event once, in order per
aggregate, with its headers; a relay killed mid-stream loses nothing when restarted
(duplicates are only copies of what was sent); a waiting relay takes over from a
dead one; a broker that lost its topics gets the whole log again."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import psycopg
import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent

from infra.settings import Settings
from infra.wiring.process import Container
from streams.kafka_codec import topic_name
from tests.integration.kafka.conftest import Broker, Roles
from tests.integration.kafka.topics import Record, read_topic
from tests.integration.kafka.workload import Workload
from tests.support.polling import eventually

pytestmark = pytest.mark.integration


def heads(container: Container) -> dict[str, int]:
    return {app.name: app.recorder.max_notification_id() or 0 for app in container.applications()}


def relayed(container: Container) -> dict[str, int]:
    """Each log's confirmed position (none before a relay has started)."""
    with psycopg.connect(container.conninfo) as conn:
        try:
            rows = conn.execute("SELECT log, position FROM public.stream_relay_positions")
        except psycopg.errors.UndefinedTable:
            return {}
        return {log: position for log, position in rows.fetchall()}


def caught_up(container: Container) -> bool:
    return relayed(container) == heads(container)


def check_topic(
    app: Application[Any], records: list[Record], *, exactly_once: bool, in_order: bool = True
) -> None:
    """Every committed event is on the topic, keyed by its aggregate, with its headers
    and payload; per partition each position first arrives in log order (unless the
    topic was recreated: events sent before the loss was noticed come first there);
    repeats are copies of what was sent before."""
    notifications = {n.id: n for n in app.recorder.select_notifications(start=1, limit=1_000_000)}
    positions = [r.position for r in records]
    assert set(positions) == set(notifications), app.name
    if exactly_once:
        assert len(positions) == len(notifications), app.name
    ordered = sorted(notifications)
    prev = dict(zip(ordered, [0, *ordered], strict=False))  # each id's predecessor
    first: dict[int, Record] = {}
    partition_of: dict[bytes, int] = {}
    last_in_partition: dict[int, int] = defaultdict(int)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        n = notifications[record.position]
        assert record.key == str(n.originator_id).encode()
        assert partition_of.setdefault(record.key, record.partition) == record.partition
        assert record.headers == {
            "position": str(n.id),
            "prev-position": str(prev[n.id]),
            "log": app.name,
            "event-topic": n.topic,
        }
        assert record.event.log == app.name
        assert record.event.prev_position == prev[n.id]
        assert record.event.stored == StoredEvent(
            n.originator_id, n.originator_version, n.topic, n.state
        )
        # The consumer's mapper rebuilds the very domain event the store holds.
        assert record.event.domain_event(app).__dict__ == app.mapper.to_domain_event(n).__dict__
        if record.position in first:
            assert record.event == first[record.position].event  # a repeat is a copy
        else:
            assert record.position > last_in_partition[record.partition] or not in_order
            last_in_partition[record.partition] = record.position
            first[record.position] = record


def check_all_topics(
    container: Container, settings: Settings, *, exactly_once: bool, in_order: bool = True
) -> None:
    for app in container.applications():
        head = app.recorder.max_notification_id() or 0
        topic = topic_name(settings.kafka_topic_prefix, app.name)
        records = read_topic(settings.kafka_bootstrap, topic, until=head)
        check_topic(app, records, exactly_once=exactly_once, in_order=in_order)


def test_every_event_once_in_order_per_key_with_headers(
    container: Container, settings: Settings, roles: Roles
) -> None:
    Workload(container).run(40)
    roles.start("relay")
    Workload(container, seed=2).run(20)  # written while the relay runs
    eventually(lambda: caught_up(container), "the relay to reach every log's head", timeout=60)
    check_all_topics(container, settings, exactly_once=True)


def test_a_relay_killed_mid_stream_loses_nothing(
    container: Container, settings: Settings, roles: Roles
) -> None:
    Workload(container).run(150)
    slow = {"relay_batch_size": 5, "relay_max_in_flight": 1}
    first = roles.start("relay", **slow)
    eventually(lambda: relayed(container).get("catalog", 0) > 20, "the relay to start", timeout=60)
    first.kill()
    assert relayed(container)["catalog"] < heads(container)["catalog"], "killed too late"
    roles.start("relay")
    eventually(lambda: caught_up(container), "the restarted relay to catch up", timeout=60)
    check_all_topics(container, settings, exactly_once=False)


def test_a_waiting_relay_takes_over_when_the_first_dies(
    container: Container, settings: Settings, roles: Roles
) -> None:
    Workload(container).run(20)
    first = roles.start("relay")
    eventually(lambda: caught_up(container), "the first relay", timeout=60)
    second = roles.start("relay")
    Workload(container, seed=2).run(20)
    eventually(lambda: caught_up(container), "the first relay, again", timeout=60)
    assert "relaying the" not in second.log()  # it waits for the lease
    first.kill()
    Workload(container, seed=3).run(20)
    eventually(lambda: caught_up(container), "the second relay to take over", timeout=60)
    assert "relaying the catalog log" in second.log()
    check_all_topics(container, settings, exactly_once=False)


def test_a_broker_that_lost_its_topics_gets_every_log_again(
    container: Container, settings: Settings, roles: Roles, broker: Broker
) -> None:
    Workload(container).run(30)
    roles.start("relay")
    eventually(lambda: caught_up(container), "the relay", timeout=60)
    broker.restart()
    Workload(container, seed=2).run(10)
    eventually(lambda: caught_up(container), "the relay after the broker restart", timeout=60)
    # The new topics hold every event: the relay republished each log from the start.
    check_all_topics(container, settings, exactly_once=False, in_order=False)
