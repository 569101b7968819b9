"""The outbox relay: publishes every committed event of each bounded context's log to
that context's Kafka topic, in log order, at least once.

Per log: wait for the log's lease (one active relay per log, ``relay_lease``), then
read notifications after the confirmed position, send them (``kafka_codec``), and
once Kafka has acked a whole batch (acks=all) record its last position as confirmed.
At most ``max_in_flight`` batches await delivery (back-pressure: reading the store
pauses until the oldest is acked). A crash loses only unconfirmed work, which the
next holder of the lease sends again: consumers drop the duplicates by position.

A broker that lost its data (memory storage restarted, a topic deleted) is noticed
when the relay has to create the topic again, or when Kafka hands out an offset at
or below one it handed out before; the relay then republishes the log from the
start (``TopicLost``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from aiokafka.structs import RecordMetadata
from eventsourcing.application import Application
from eventsourcing.persistence import Notification
from opentelemetry.trace import SpanKind

from commands.tracing import tracing_on
from streams.event_traces import batch_span, traceparent_of
from streams.kafka_codec import encode, topic_name
from streams.poison import decoded
from streams.relay_lease import Confirmed, RelayLease
from streams.supervision import backoff

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0


@dataclass(frozen=True)
class RelayConfig:
    topic_prefix: str
    partitions: int
    replication_factor: int
    batch_size: int = 500
    max_in_flight: int = 4
    poll_interval: float = 0.02
    max_failures: int = 5
    """Failed attempts in a row (each bounded by the producer's request timeout)
    before the relay gives up and exits, for its supervisor to restart it."""
    topic_check_interval: float = 2.0


@dataclass(frozen=True)
class KafkaClients:
    producer: Callable[[], AIOKafkaProducer]
    admin: Callable[[], AIOKafkaAdminClient]
    consumer: Callable[[], AIOKafkaConsumer]
    """Without a group: the relay reads high watermarks with it."""


class TopicLost(Exception):
    """The topic was recreated empty since our last confirmed delivery."""


@dataclass
class _Batch:
    last_position: int
    deliveries: list[asyncio.Future[RecordMetadata]]


class LogRelay:
    def __init__(
        self, app: Application[Any], conninfo: str, clients: KafkaClients, config: RelayConfig
    ) -> None:
        self.app = app
        self.log = app.name
        self.topic = topic_name(config.topic_prefix, app.name)
        self.conninfo = conninfo
        self.clients = clients
        self.config = config

    async def run(self, stopping: asyncio.Event) -> None:
        lease = RelayLease(self.conninfo, self.log)
        if not await lease.acquire(stopping):
            return
        log.info("relaying the %s log to %s", self.log, self.topic)
        failures = 0
        try:
            while not stopping.is_set():
                try:
                    await self._relay(lease, stopping)
                except TopicLost:
                    log.warning("topic %s lost its messages: republishing %s", self.topic, self.log)
                    await lease.confirm(Confirmed(0))
                except (KafkaError, OSError, asyncio.CancelledError) as error:
                    if isinstance(error, asyncio.CancelledError) and _cancelling():
                        raise
                    # aiokafka cancels a request's future when its connection drops
                    # (a broker restart): a failure like any other, not our cancellation.
                    failures += 1
                    if failures >= self.config.max_failures:
                        raise
                    pause = backoff(failures, first=1.0, ceiling=MAX_BACKOFF)
                    log.warning("relay %s failed (%r); retrying in %.1fs", self.log, error, pause)
                    await _sleep(stopping, pause)
                else:
                    failures = 0
        finally:
            await lease.release()

    async def _relay(self, lease: RelayLease, stopping: asyncio.Event) -> None:
        """Publish from the confirmed position until stopping (then drain), raising on
        a failed delivery or a lost topic."""
        confirmed = await lease.load()
        admin = self.clients.admin()
        producer = self.clients.producer()
        consumer = self.clients.consumer()
        await admin.start()
        try:
            await producer.start()
            await consumer.start()
            if await self._create_topic(admin) and confirmed.position > 0:
                raise TopicLost
            in_flight: deque[_Batch] = deque()
            prev = confirmed.position
            next_check = time.monotonic() + self.config.topic_check_interval
            while not stopping.is_set():
                notifications = await asyncio.to_thread(
                    self.app.recorder.select_notifications,
                    start=prev,
                    limit=self.config.batch_size,
                    inclusive_of_start=False,
                )
                if notifications:
                    batch = _Batch(notifications[-1].id, [])
                    traceparents = self._traceparents(notifications)
                    with batch_span(
                        f"publish {self.log}",
                        traceparents,
                        {
                            "eventshop.log": self.log,
                            "eventshop.events": len(notifications),
                            "messaging.destination.name": self.topic,
                        },
                        kind=SpanKind.PRODUCER,
                    ):
                        for notification, traceparent in zip(
                            notifications, traceparents, strict=True
                        ):
                            key, value, headers = encode(self.log, notification, prev, traceparent)
                            batch.deliveries.append(
                                await producer.send(self.topic, value, key=key, headers=headers)
                            )
                            prev = notification.id
                    in_flight.append(batch)
                    if len(in_flight) >= self.config.max_in_flight:
                        await self._confirm(lease, confirmed, in_flight.popleft())
                elif in_flight:
                    await self._confirm(lease, confirmed, in_flight.popleft())
                elif time.monotonic() >= next_check:
                    if await self._create_topic(admin) and confirmed.position > 0:
                        raise TopicLost
                    await self._check_offsets(consumer, confirmed)
                    next_check = time.monotonic() + self.config.topic_check_interval
                else:
                    await _sleep(stopping, self.config.poll_interval)
            while in_flight:
                await self._confirm(lease, confirmed, in_flight.popleft())
        finally:
            await consumer.stop()
            await producer.stop()
            await admin.close()

    def _traceparents(self, notifications: Sequence[Notification]) -> list[str | None]:
        """Each event's trace context; decoding the events costs the relay, so only
        when spans are recorded."""
        if not tracing_on():
            return [None] * len(notifications)
        return [traceparent_of(decoded(self.app, n, n.id)[0]) for n in notifications]

    async def _confirm(self, lease: RelayLease, confirmed: Confirmed, batch: _Batch) -> None:
        """Wait until Kafka acked every message of the batch, then confirm it."""
        delivered: Sequence[RecordMetadata] = await asyncio.gather(*batch.deliveries)
        for metadata in delivered:
            partition = str(metadata.partition)
            if metadata.offset <= confirmed.offsets.get(partition, -1):
                raise TopicLost
            confirmed.offsets[partition] = metadata.offset
        confirmed.position = batch.last_position
        await lease.confirm(confirmed)

    async def _check_offsets(self, consumer: AIOKafkaConsumer, confirmed: Confirmed) -> None:
        """Raise ``TopicLost`` when a partition ends before an offset Kafka gave one of
        our deliveries: the topic was recreated (perhaps by a client's metadata
        request, so creating it ourselves is not the only sign). Fetches report the
        high watermark; ListOffsets is not trusted (Tansu answers it wrongly)."""
        tps = {TopicPartition(self.topic, int(p)): o for p, o in confirmed.offsets.items()}
        if set(consumer.assignment()) != set(tps):
            consumer.assign(list(tps))
        for tp, offset in tps.items():
            consumer.seek(tp, offset)
        deadline = time.monotonic() + self.config.topic_check_interval
        while tps and time.monotonic() < deadline:
            await consumer.getmany(*tps, timeout_ms=100)
            ends = {tp: consumer.highwater(tp) for tp in tps}
            if any(end is not None and end <= tps[tp] for tp, end in ends.items()):
                raise TopicLost
            if None not in ends.values():
                return

    async def _create_topic(self, admin: AIOKafkaAdminClient) -> bool:
        """Create the topic if it is missing; True when it was."""
        topic = NewTopic(self.topic, self.config.partitions, self.config.replication_factor)
        response = await admin.create_topics([topic])
        ((_, code, message),) = response.topic_errors
        if code == TopicAlreadyExistsError.errno:
            return False
        if code != 0:
            raise for_code(code)(f"creating {self.topic}: {message}")
        log.info("created topic %s", self.topic)
        return True


class Relay:
    """Every log's relay in one process; another process running the same waits,
    per log, and takes over a log whose relay died."""

    def __init__(
        self,
        apps: Sequence[Application[Any]],
        conninfo: str,
        clients: KafkaClients,
        config: RelayConfig,
    ) -> None:
        self.relays = [LogRelay(app, conninfo, clients, config) for app in apps]

    async def run(self, stopping: asyncio.Event) -> None:
        """Until ``stopping`` is set; a relay that gives up ends the others and raises."""
        async with asyncio.TaskGroup() as group:
            for relay in self.relays:
                group.create_task(relay.run(stopping), name=f"relay-{relay.log}")


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _sleep(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
