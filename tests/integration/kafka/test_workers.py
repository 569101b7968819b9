"""Stream workers against a real broker, each a ``shop serve worker`` process beside a
``shop serve relay``: the read models they build equal a rebuild from the event
store after every fault (a worker killed, the broker restarted and its topics lost,
a batch delivered twice); a poison event is dead-lettered and the log flows on."""

from __future__ import annotations

import asyncio
import operator
import re

import pytest
from aiokafka import AIOKafkaProducer

from infra.settings import Settings
from infra.wiring.process import Container
from streams.kafka_codec import topic_name
from tests.integration.kafka.conftest import Broker, Roles
from tests.integration.kafka.read_models import lagging, mails_and_links_issued, served_and_rebuilt
from tests.integration.kafka.test_relay import caught_up, check_all_topics
from tests.integration.kafka.topics import read_topic
from tests.integration.kafka.workload import Workload
from tests.support.polling import eventually

pytestmark = pytest.mark.integration

SETTLE = 120.0


def check_equal_to_a_rebuild(container: Container) -> None:
    eventually(
        lambda: not lagging(container), "every read model to reach every head", timeout=SETTLE
    )
    served, rebuilt = served_and_rebuilt(container)
    for name in rebuilt:
        assert served[name] == rebuilt[name], name
    assert served["catalog_products"]["catalog_products"], "the workload wrote products"
    # A delivery the killed worker had leased goes out once its lease runs out.
    eventually(
        lambda: operator.eq(*mails_and_links_issued(container)),
        "one mail for each link issued",
        timeout=SETTLE,
    )
    assert mails_and_links_issued(container)[1] > 0


def followed_logs(container: Container) -> set[str]:
    """The logs some projection or policy follows (each has an agent)."""
    return {app.name for spec in container.specs for app in spec.upstream}


def assigned_logs(worker_log: str, prefix: str) -> set[str]:
    """The logs in the last assignment a faust worker logged (aiokafka's line: a set
    of ``TopicPartition(topic='<prefix><log>', partition=N)``)."""
    line = worker_log.rsplit("Setting newly assigned partitions", 1)[-1].split(" for group")[0]
    return set(re.findall(rf"topic='{re.escape(prefix)}(\w+)'", line))


def test_two_workers_build_what_a_rebuild_builds(
    container: Container, settings: Settings, roles: Roles
) -> None:
    Workload(container).run(30)
    roles.start("relay", db_pool_size=1)
    workers = [
        roles.start("worker", db_pool_size=4),
        roles.start("worker", db_pool_size=4),
    ]
    Workload(container, seed=2).run(30)
    check_equal_to_a_rebuild(container)
    # The group shares the logs out, each whole to one worker.
    first, second = (assigned_logs(w.log(), settings.kafka_topic_prefix) for w in workers)
    assert first and second and not first & second
    assert first | second == followed_logs(container)


def test_a_killed_workers_logs_move_to_the_other(
    container: Container, settings: Settings, roles: Roles
) -> None:
    Workload(container).run(20)
    roles.start("relay", db_pool_size=1)
    first, second = (
        roles.start("worker", db_pool_size=4),
        roles.start("worker", db_pool_size=4),
    )
    Workload(container, seed=2).run(20)
    eventually(lambda: not lagging(container), "both workers", timeout=SETTLE)
    assert assigned_logs(first.log(), settings.kafka_topic_prefix)
    first.kill()
    Workload(container, seed=3).run(30)
    check_equal_to_a_rebuild(container)
    assert second.process.poll() is None
    assert assigned_logs(second.log(), settings.kafka_topic_prefix) == followed_logs(container)


def test_after_the_broker_lost_its_topics_the_read_models_still_match(
    container: Container, settings: Settings, roles: Roles, broker: Broker
) -> None:
    Workload(container).run(20)
    roles.start("relay", db_pool_size=1)
    roles.start("worker", db_pool_size=4), roles.start("worker", db_pool_size=4)
    eventually(lambda: not lagging(container), "the workers", timeout=SETTLE)
    broker.restart()
    Workload(container, seed=2).run(30)
    check_equal_to_a_rebuild(container)
    # The workers' metadata requests recreate the topics before the relay does: it
    # still notices (the partitions end before its last deliveries) and republishes.
    eventually(lambda: caught_up(container), "the relay", timeout=SETTLE)
    check_all_topics(container, settings, exactly_once=False, in_order=False)


async def _send_again(settings: Settings, log: str) -> int:
    """Publish every message of the log's topic once more (a redelivered batch)."""
    topic = topic_name(settings.kafka_topic_prefix, log)
    records = await asyncio.to_thread(read_topic, settings.kafka_bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for record in reversed(records):  # out of order, too
            await producer.send(
                topic,
                record.event.encode(),
                key=record.key,
                headers=[(k, v.encode()) for k, v in record.headers.items()],
            )
        await producer.flush()
    finally:
        await producer.stop()
    return len(records)


def test_a_batch_delivered_twice_changes_nothing(
    container: Container, settings: Settings, roles: Roles
) -> None:
    Workload(container).run(30)
    roles.start("relay", db_pool_size=1)
    roles.start("worker", db_pool_size=4), roles.start("worker", db_pool_size=4)
    eventually(lambda: not lagging(container), "the workers", timeout=SETTLE)
    for log in ("catalog", "inventory", "users"):
        assert asyncio.run(_send_again(settings, log)) > 0
    Workload(container, seed=2).run(10)
    check_equal_to_a_rebuild(container)
