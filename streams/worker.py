"""The stream worker: a faust-streaming app that keeps every read model and policy
current from the relay's topics, in a consumer group (run several; they share the
logs between them). The decisions are in docs/adr/0010-kafka-workers.md.

One agent per log topic (``concurrency=1``); ``WholeTopicAssignor`` gives all of a
topic's partitions to one worker, whose ``LogApplier`` puts the log back in order
and applies it with the embedded runner's projection objects. faust's acks are
held back (``Message.incref``) until every read model has applied an event, so the
group's committed offsets never pass an event still waiting for an earlier one; no
exception escapes an agent with an event unapplied (faust would ack and skip it):
a step that fails (the database away, a poison event not yet dead-lettered) is
retried with backoff; poison events end up in the read models' dead letters
(``streams.poison``), the same ones as the embedded mode's.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import faust
from eventsourcing.application import Application
from faust.streams import Stream

from streams.assignor import WholeTopicAssignor
from streams.embedded import ProjectionSpec
from streams.faust_fetch_wait import FetchWaitApp
from streams.kafka_codec import UndecodableMessage, decode, topic_name
from streams.log_applier import LogApplier
from streams.supervision import backoff

log = logging.getLogger(__name__)

TAKE = 1000
"""Events taken from the stream at most per step."""
TAKE_WITHIN = 0.01
"""The longest a step waits for more events to batch with: the worker's part of the
lag when events are few (a busy log fills the batch sooner)."""
TICK = 1.0
"""Steps run this often even without new events: gaps, new generations."""


@dataclass(frozen=True)
class WorkerConfig:
    group: str
    bootstrap: str
    topic_prefix: str
    session_timeout: float
    gap_timeout: float
    max_held: int
    fetch_wait: float
    ssl_context: ssl.SSLContext | None = None


class _Feeder:
    """Feeds one log's stream to its applier."""

    def __init__(self, applier: LogApplier) -> None:
        self.applier = applier
        self._turn = asyncio.Lock()

    async def consume(self, stream: faust.StreamT[bytes]) -> None:
        # The agent's stream is a faust Stream (StreamT does not declare take_events).
        async for events in cast(Stream[bytes], stream).take_events(TAKE, within=TAKE_WITHIN):
            for event in events:
                # Held: take_events acks the batch, this reference keeps the offset
                # uncommitted until every read model has applied the event.
                event.message.incref()
                try:
                    relayed = decode(event.value)
                except UndecodableMessage as error:
                    # Not ours to read: the event store is the source of truth, and the
                    # gap it leaves is read from it (``LogApplier``).
                    log.error("%s: a message that is no relayed event: %s", self.applier.log, error)
                    event.ack()
                    continue
                for ack in self.applier.offer(relayed, event.ack):
                    ack()
            await self.step()

    async def step(self) -> None:
        async with self._turn:
            failures = 0
            while True:
                try:
                    acks = await asyncio.to_thread(self.applier.step)
                except Exception as error:  # noqa: BLE001 - retried: nothing escapes the agent
                    failures += 1
                    pause = backoff(failures)
                    log.warning("applying %s failed (%r); retrying", self.applier.log, error)
                    await asyncio.sleep(pause)
                    continue
                for ack in acks:
                    ack()
                return


def make_worker_app(
    config: WorkerConfig,
    applications: Sequence[Application[Any]],
    specs: Sequence[ProjectionSpec],
    active_generations: Callable[[], dict[str, int]],
    ensure_generation: Callable[[ProjectionSpec], int],
    conninfo: str,
) -> faust.App:
    app = FetchWaitApp(
        config.group,
        fetch_max_wait_ms=int(config.fetch_wait * 1000),
        broker=[f"kafka://{address}" for address in config.bootstrap.split(",")],
        broker_credentials=faust.SSLCredentials(config.ssl_context) if config.ssl_context else None,
        key_serializer="raw",
        value_serializer="raw",
        PartitionAssignor=WholeTopicAssignor,
        consumer_auto_offset_reset="earliest",  # a lost topic comes back from offset 0
        consumer_metadata_max_age_ms=5000,  # notice topics the relay creates
        broker_session_timeout=config.session_timeout,
        broker_heartbeat_interval=config.session_timeout / 6,
        producer_acks=-1,
        store="memory://",  # no faust tables: read models live in their own stores
        # A rebalance must not wait for every message to be acked: events held behind
        # a gap are acked only once the gap is filled, which the paused consumer can no
        # longer fetch (a deadlock seen after a broker restart). Unacked messages are
        # not committed, so they come again after the rebalance; copies are dropped.
        stream_wait_empty=False,
        web_enabled=False,
    )
    feeders: list[tuple[str, _Feeder]] = []
    for application in applications:
        applier = LogApplier(
            application,
            specs,
            active_generations,
            ensure_generation,
            conninfo,
            config.gap_timeout,
            config.max_held,
        )
        if not applier.specs:
            continue
        topic = topic_name(config.topic_prefix, application.name)
        feeder = _Feeder(applier)
        source = app.topic(topic, key_type=bytes, value_type=bytes, internal=False)
        app.agent(source, name=f"apply-{application.name}", concurrency=1)(feeder.consume)
        feeders.append((topic, feeder))

    async def tick() -> None:
        assigned = {tp.topic for tp in app.consumer.assignment()}
        for topic, feeder in feeders:
            if topic in assigned or feeder.applier.held:
                await feeder.step()

    app.timer(TICK)(tick)

    return app
